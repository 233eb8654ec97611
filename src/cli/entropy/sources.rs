//! `entropy sources`: what detection finds, with a short live sample of each source.

use super::{chunk_size, detect_config};
use anyhow::bail;
use peer::sources::EntropySource;
use peer::sources::linux;
use protocols::entropy::estimate::mcv_from_counts;
use protocols::entropy::health::STARTUP_SAMPLES;
use protocols::entropy::{HealthFailure, HealthTester, HealthVerdict, SourceSpec};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest `--seconds` accepted.
const MAX_SECONDS: f64 = 600.0;
/// How long one read from a source should take, so every thread notices the deadline soon.
const CHUNK_TIME: Duration = Duration::from_millis(50);
/// How long past the deadline to wait for a source stuck in a read before reporting without it.
const GRACE: Duration = Duration::from_secs(1);

/// Options of `entropy sources`.
#[derive(Debug, clap::Args)]
pub struct SourcesArgs {
    /// Filesystem root under which sys/ and proc/ are probed.
    #[arg(long, default_value = "/")]
    pub system_root: PathBuf,
    /// Seconds to read every source (in parallel) for the live estimate; 0 skips it.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What one source's sampling thread has seen so far.
struct Live {
    counts: [u64; 256],
    samples: u64,
    elapsed: Duration,
    health: HealthTester,
    error: Option<String>,
    done: bool,
}

/// One detected source in the report.
#[derive(Serialize)]
struct SourceReport {
    name: String,
    bits_per_sample: u8,
    claimed_min_entropy_per_sample: f64,
    rct_cutoff: u64,
    apt_cutoff: u32,
    apt_window: u32,
    samples: u64,
    seconds: f64,
    samples_per_second: Option<f64>,
    /// Most-common-value estimate over every sample read (bits per sample).
    mcv_min_entropy_per_sample: Option<f64>,
    /// `startup`, `healthy` or `failed`.
    health: &'static str,
    failure: Option<&'static str>,
    startup_samples: u64,
    rct_failures: u64,
    apt_failures: u64,
    /// The source's read failed, or it was still blocked in a read at the deadline.
    error: Option<String>,
}

#[derive(Serialize)]
struct SkippedReport {
    name: String,
    reason: String,
}

#[derive(Serialize)]
struct Report {
    system_root: String,
    seconds: f64,
    sources: Vec<SourceReport>,
    skipped: Vec<SkippedReport>,
}

/// Runs `entropy sources`.
pub fn run(args: SourcesArgs) -> anyhow::Result<()> {
    if !args.seconds.is_finite() || !(0.0..=MAX_SECONDS).contains(&args.seconds) {
        bail!("--seconds must be between 0 and {MAX_SECONDS}");
    }
    let (found, skipped) = linux::detect(&detect_config(&args.system_root));
    let duration = Duration::from_secs_f64(args.seconds);
    let report = Report {
        system_root: args.system_root.display().to_string(),
        seconds: args.seconds,
        sources: sample_all(found, duration),
        skipped: skipped
            .into_iter()
            .map(|s| SkippedReport {
                name: s.name,
                reason: s.reason,
            })
            .collect(),
    };
    if args.json {
        super::emit(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        super::emit(&table(&report)?)?;
    }
    Ok(())
}

/// Reads every source on its own thread for `duration` and reports what each delivered.
fn sample_all(found: Vec<Box<dyn EntropySource>>, duration: Duration) -> Vec<SourceReport> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut live = Vec::new();
    for source in found {
        let spec = source.spec();
        let state = Arc::new(Mutex::new(Live {
            counts: [0; 256],
            samples: 0,
            elapsed: Duration::ZERO,
            health: HealthTester::new(spec),
            error: None,
            done: false,
        }));
        live.push((source.name().to_owned(), spec, Arc::clone(&state)));
        // Sources block; a thread still stuck in a read at exit is simply abandoned.
        std::thread::spawn(move || read_until(source, &state, start, deadline));
    }
    let give_up = deadline + GRACE;
    loop {
        let all_done = live.iter().all(|(_, _, s)| lock(s).done);
        if all_done || Instant::now() >= give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    live.iter()
        .map(|(name, spec, state)| report_of(name, *spec, &lock(state)))
        .collect()
}

fn lock(state: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The body of a source's thread: reads chunks sized to the source's pace until `deadline`.
fn read_until(
    mut source: Box<dyn EntropySource>,
    state: &Mutex<Live>,
    start: Instant,
    deadline: Instant,
) {
    let mut buf = Vec::with_capacity(super::MAX_CHUNK);
    let (mut read, mut taken) = (0u64, Duration::ZERO);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let target = CHUNK_TIME.min(deadline - now);
        let n = chunk_size(read, taken, target);
        buf.clear();
        let result = source.read_samples(&mut buf, n);
        taken = start.elapsed();
        read += buf.len() as u64;
        let mut live = lock(state);
        for &sample in &buf {
            live.counts[usize::from(sample)] += 1;
            live.health.feed(sample);
        }
        live.samples = read;
        live.elapsed = taken;
        if let Err(e) = result {
            live.error = Some(e.to_string());
            break;
        }
    }
    lock(state).done = true;
}

fn report_of(name: &str, spec: SourceSpec, live: &Live) -> SourceReport {
    let max = live.counts.iter().copied().max().unwrap_or(0);
    let (health, failure) = match live.health.state() {
        HealthVerdict::Startup => ("startup", None),
        HealthVerdict::Healthy => ("healthy", None),
        HealthVerdict::Failed(f) => ("failed", Some(failure_name(f))),
    };
    let counters = live.health.counters();
    let seconds = live.elapsed.as_secs_f64();
    let error = match (&live.error, live.done) {
        (Some(e), _) => Some(e.clone()),
        (None, false) => Some("still blocked in a read at the deadline".to_owned()),
        (None, true) => None,
    };
    SourceReport {
        name: name.to_owned(),
        bits_per_sample: spec.bits_per_sample(),
        claimed_min_entropy_per_sample: spec.min_entropy_per_sample(),
        rct_cutoff: spec.rct_cutoff(),
        apt_cutoff: spec.apt_cutoff(),
        apt_window: spec.apt_window(),
        samples: live.samples,
        seconds,
        samples_per_second: (seconds > 0.0).then(|| live.samples as f64 / seconds),
        // The same estimate `mcv_min_entropy` gives on the samples, from their counts.
        mcv_min_entropy_per_sample: mcv_from_counts(max, live.samples),
        health,
        failure,
        startup_samples: STARTUP_SAMPLES.max(u64::from(spec.apt_window())),
        rct_failures: counters.rct_failures,
        apt_failures: counters.apt_failures,
        error,
    }
}

fn failure_name(failure: HealthFailure) -> &'static str {
    match failure {
        HealthFailure::RepetitionCount => "repetition_count",
        HealthFailure::AdaptiveProportion => "adaptive_proportion",
    }
}

fn table(report: &Report) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    let width = report
        .sources
        .iter()
        .map(|s| s.name.len())
        .chain(["SOURCE".len()])
        .max()
        .unwrap_or(6);
    writeln!(
        out,
        "{} source(s) under {}, each read for {} s:",
        report.sources.len(),
        report.system_root,
        report.seconds
    )?;
    writeln!(
        out,
        "{:<width$}  {:>4}  {:>7}  {:>5}  {:>10}  {:>9}  {:>10}  {:>7}  HEALTH",
        "SOURCE", "BITS", "CLAIMED", "RCT", "APT/WINDOW", "SAMPLES", "SAMPLES/S", "MCV"
    )?;
    for s in &report.sources {
        let rate = s
            .samples_per_second
            .map_or("-".to_owned(), |r| format!("{r:.0}"));
        let mcv = s
            .mcv_min_entropy_per_sample
            .map_or("-".to_owned(), |h| format!("{h:.3}"));
        let mut health = match (s.health, s.failure) {
            ("startup", _) => format!("startup ({}/{})", s.samples, s.startup_samples),
            (_, Some(f)) => format!(
                "FAILED {} (rct {}, apt {} failures)",
                f.replace('_', " "),
                s.rct_failures,
                s.apt_failures
            ),
            (h, None) => h.to_owned(),
        };
        if let Some(e) = &s.error {
            write!(health, "; {e}")?;
        }
        writeln!(
            out,
            "{:<width$}  {:>4}  {:>7.3}  {:>5}  {:>10}  {:>9}  {:>10}  {:>7}  {health}",
            s.name,
            s.bits_per_sample,
            s.claimed_min_entropy_per_sample,
            s.rct_cutoff,
            format!("{}/{}", s.apt_cutoff, s.apt_window),
            s.samples,
            rate,
            mcv,
        )?;
    }
    writeln!(
        out,
        "CLAIMED and MCV are min-entropy in bits per sample; RCT and APT are the health-test cutoffs."
    )?;
    for s in &report.skipped {
        writeln!(out, "skipped: {}: {}", s.name, s.reason)?;
    }
    Ok(out)
}
