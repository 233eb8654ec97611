//! `entroshard entropy …`: inspect this device's sources, sample them, assess samples offline.

mod assess;
mod models;
mod sample;
mod sources;

use anyhow::{Context, bail};
use peer::config::{SIMULATED_SOURCE_FORMS, SimulatedSourceConfig};
use peer::sources::EntropySource;
use peer::sources::linux::{self, DetectConfig};
use peer::sources::simulated::{SimulatedKind, SimulatedSource};
use std::path::Path;
use std::time::Duration;

/// `entropy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EntropyCommand {
    /// List the sources detected on this device with a live estimate, and those skipped.
    Sources(sources::SourcesArgs),
    /// Read raw samples from one source into a file (one byte per sample) for `assess`.
    Sample(sample::SampleArgs),
    /// Run the SP 800-90B §6.3 estimators on a file of raw samples.
    Assess(assess::AssessArgs),
    /// Show the per-source models a peer stored at its first start (H, estimator, α).
    Models(models::ModelsArgs),
    /// Remove the stored models: every source is assessed again at the next `peer run`.
    Reassess(models::ModelsArgs),
}

/// Runs an `entropy` subcommand.
pub fn run(command: EntropyCommand) -> anyhow::Result<()> {
    match command {
        EntropyCommand::Sources(args) => sources::run(args),
        EntropyCommand::Sample(args) => sample::run(args),
        EntropyCommand::Assess(args) => assess::run(args),
        EntropyCommand::Models(args) => models::show(args),
        EntropyCommand::Reassess(args) => models::reassess(args),
    }
}

/// Detection settings for `root`: every hardware kind plus the CPU jitter source, no feeds.
fn detect_config(root: &Path) -> DetectConfig {
    DetectConfig {
        root: root.to_owned(),
        jitter: true,
        ..DetectConfig::default()
    }
}

/// Opens `name`: a simulated source (`sim:` and one of [`SIMULATED_SOURCE_FORMS`], e.g.
/// `sim:biased:P:SEED` or `sim:walk:BITS:STEP:SEED`) or one that detection under `root` finds.
fn open_source(name: &str, root: &Path) -> anyhow::Result<Box<dyn EntropySource>> {
    if let Some(spec) = name.strip_prefix("sim:") {
        let (kind, seed) =
            parse_simulated(spec).with_context(|| format!("bad simulated source {name:?}"))?;
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let source = SimulatedSource::new(name, kind, seed_bytes)
            .with_context(|| format!("simulated source {name:?}"))?;
        return Ok(Box::new(source));
    }
    let config = DetectConfig {
        // One capture socket for every interface is opt-in: only when asked for by name.
        packets_all_interfaces: name == "packets",
        ..detect_config(root)
    };
    let (found, skipped) = linux::detect(&config);
    let mut names = Vec::new();
    for source in found {
        if source.name() == name {
            return Ok(source);
        }
        names.push(source.name().to_owned());
    }
    if let Some(s) = skipped.iter().find(|s| s.name == name) {
        bail!("source {name} is not available: {}", s.reason);
    }
    bail!(
        "no source named {name:?} under {}; detected: {} (or a simulated one: sim:FORM, FORM \
         one of {SIMULATED_SOURCE_FORMS})",
        root.display(),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// Parses the part after `sim:` into a kind and a seed (the forms `peer init
/// --simulated-source` takes).
fn parse_simulated(spec: &str) -> anyhow::Result<(SimulatedKind, u64)> {
    let config: SimulatedSourceConfig = spec.parse()?;
    Ok(config.kind_and_seed())
}

/// Writes `text` to standard output; a reader that went away (`| head`) ends the process
/// quietly.
fn emit(text: &str) -> anyhow::Result<()> {
    crate::out::write_bytes(text.as_bytes());
    Ok(())
}

/// Largest number of samples asked of a source in one call.
const MAX_CHUNK: usize = 4096;

/// How many samples to ask for next so the call takes about `target`, given that `taken`
/// elapsed over the `read` samples so far (one sample first, to learn the pace).
fn chunk_size(read: u64, taken: Duration, target: Duration) -> usize {
    if read == 0 {
        return 1;
    }
    let per_sample = taken.as_secs_f64() / read as f64;
    if per_sample <= 0.0 {
        return MAX_CHUNK;
    }
    let n = target.as_secs_f64() / per_sample;
    (n as usize).clamp(1, MAX_CHUNK)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn simulated_specs_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_simulated("biased:0.9:1").unwrap(),
            (SimulatedKind::Biased { p_one: 0.9 }, 1)
        );
        assert_eq!(
            parse_simulated("correlated:4:0.5:7").unwrap(),
            (
                SimulatedKind::Correlated {
                    bits: 4,
                    p_repeat: 0.5
                },
                7
            )
        );
        assert_eq!(
            parse_simulated("stuck:3").unwrap(),
            (SimulatedKind::Stuck { value: 3 }, 0)
        );
        assert_eq!(
            parse_simulated("walk:8:16:5").unwrap(),
            (
                SimulatedKind::RandomWalk {
                    bits: 8,
                    step: 16.0
                },
                5
            )
        );
        assert_eq!(
            parse_simulated("periodic:8:10:12:6").unwrap(),
            (
                SimulatedKind::Periodic {
                    bits: 8,
                    period: 10.0,
                    noise: 12.0
                },
                6
            )
        );
        assert_eq!(
            parse_simulated("jitter:8:32:7").unwrap(),
            (
                SimulatedKind::JitterDeltas {
                    bits: 8,
                    spread: 32.0
                },
                7
            )
        );
        assert!(parse_simulated("walk:8:0.25:1").is_err());
        assert!(parse_simulated("biased:1.5:1").is_err());
        assert!(parse_simulated("biased:1:1").is_err());
        assert!(parse_simulated("correlated:9:0.5:1").is_err());
        assert!(parse_simulated("noise").is_err());
    }

    #[test]
    fn chunks_start_with_one_sample_and_follow_the_pace() {
        let target = Duration::from_millis(50);
        assert_eq!(chunk_size(0, Duration::ZERO, target), 1);
        assert_eq!(chunk_size(10, Duration::from_millis(100), target), 5);
        assert_eq!(chunk_size(1, Duration::from_secs(1), target), 1);
        assert_eq!(
            chunk_size(1000, Duration::from_micros(1), target),
            MAX_CHUNK
        );
    }
}
