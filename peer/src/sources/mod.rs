//! Entropy sources: one trait, real Linux implementations and simulated ones for tests and the simulator.

pub mod feed;
pub mod linux;
pub mod models;
pub mod simulated;

use protocols::entropy::SourceSpec;
use thiserror::Error;

/// Why a source could not deliver samples.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The hardware or kernel interface went away.
    #[error("source {source_name} is unavailable: {reason}")]
    Unavailable {
        /// Source name.
        source_name: String,
        /// What happened.
        reason: String,
    },
}

/// A producer of raw samples (one symbol per byte, low `bits_per_sample` bits significant).
pub trait EntropySource: Send {
    /// Stable name, e.g. `thermal:zone0` or `sim:biased-0.60`.
    fn name(&self) -> &str;
    /// Sample width and the min-entropy per sample this source claims.
    fn spec(&self) -> SourceSpec;
    /// Appends up to `max` fresh samples to `out`.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError>;
}

#[cfg(test)]
#[test]
fn only_chooses_sources_by_name_or_kind() {
    let only = vec!["jitter".to_string(), "hwrng".to_string()];
    assert!(is_chosen("jitter", &only));
    assert!(is_chosen("hwrng:virtio_rng.0", &only));
    assert!(!is_chosen("net:eth0", &only));
    assert!(is_chosen("net:eth0", &[]));
}

/// Builds the pipelines of every configured source: detected hardware, simulated sources and
/// the external feed. Hardware that is absent is skipped with a log line, never faked.
pub fn build(
    config: &crate::config::SourcesConfig,
) -> Result<Vec<crate::pipeline::SourcePipeline>, String> {
    use simulated::SimulatedSource;
    let mut sources: Vec<Box<dyn EntropySource>> = Vec::new();
    for (i, sim) in config.simulated.iter().enumerate() {
        let (kind, seed) = sim.kind_and_seed();
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[8] = i as u8;
        let source = SimulatedSource::new(format!("sim:{i}"), kind, seed_bytes)
            .map_err(|e| format!("simulated source {i}: {e}"))?;
        sources.push(Box::new(source));
    }
    sources.extend(hardware(config)?);
    if sources.is_empty() {
        return Err("no entropy source available: configure a simulated source or a feed, or run on hardware with sensors".into());
    }
    let key = device_conditioning_key();
    sources
        .into_iter()
        .map(|s| crate::pipeline::SourcePipeline::new(s, key.clone()).map_err(|e| e.to_string()))
        .collect()
}

/// The device's conditioning key for this run, from the OS generator (SP 800-90B §3.1.5.1.1
/// HMAC keyed per device; it never leaves the process).
pub fn device_conditioning_key() -> protocols::entropy::ConditioningKey {
    use rand_core::Rng;
    let mut key = [0u8; 32];
    rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut key);
    protocols::entropy::ConditioningKey::from_random(key)
}

fn hardware(config: &crate::config::SourcesConfig) -> Result<Vec<Box<dyn EntropySource>>, String> {
    let detect = linux::DetectConfig {
        root: config.system_root.clone(),
        jitter: config.detect_hardware,
        feeds: config.feed.iter().cloned().collect(),
        ..linux::DetectConfig::default()
    };
    if !config.detect_hardware {
        // Only the feed: open it directly so a broken feed is an error, not a skip.
        return match &config.feed {
            Some(feed) => Ok(vec![Box::new(
                feed::FeedSource::open(feed)
                    .map_err(|e| format!("feed {}: {e}", feed.path.display()))?,
            )]),
            None => Ok(Vec::new()),
        };
    }
    let (found, skipped) = linux::detect(&detect);
    for s in &skipped {
        tracing::info!(source = %s.name, reason = %s.reason, "source skipped");
    }
    Ok(found
        .into_iter()
        .filter(|s| {
            let chosen = is_chosen(s.name(), &config.only);
            if !chosen {
                tracing::info!(
                    source = s.name(),
                    "source skipped: not among the configured `only` sources"
                );
            }
            chosen
        })
        .collect())
}

/// Whether `name` is among `only` (empty: every source): the exact name, or its kind before
/// the first `:` (`hwrng` chooses `hwrng:virtio_rng.0`).
pub fn is_chosen(name: &str, only: &[String]) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|o| o == name || name.split(':').next() == Some(o.as_str()))
}
