//! The harvesting thread: runs every source pipeline on a blocking thread and hands blocks over a bounded channel.

use crate::pipeline::{HarvestedBlock, PipelineOutput, SourcePipeline};
use protocols::attestation::HealthCounters;
use protocols::wire::SourceHealth;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Samples a source may consume per pass before the thread moves to the next source.
const SAMPLE_BUDGET: u64 = 200_000;

/// Latest health of every source, shared with heartbeats and attestation.
#[derive(Debug, Default, Clone)]
pub struct HealthSnapshot {
    /// One line per source.
    pub sources: Vec<SourceHealth>,
    /// Aggregated counters.
    pub counters: HealthCounters,
}

/// A block with the sources' names and estimates, ready to contribute.
pub struct ReadyBlock {
    /// The block and its claim.
    pub harvested: HarvestedBlock,
    /// Name of the source it came from.
    pub source: String,
    /// MCV min-entropy per sample when the block was cut.
    pub measured_per_sample: Option<f64>,
}

/// Runs each pipeline on its own thread (slow sensors must not starve fast sources) until
/// the receiver is dropped. A thread blocks when the consumer is behind. Returns the threads.
pub fn spawn(
    pipelines: Vec<SourcePipeline>,
    blocks: mpsc::Sender<ReadyBlock>,
    health: Arc<Mutex<HealthSnapshot>>,
    idle: Duration,
) -> Vec<std::thread::JoinHandle<()>> {
    let count = pipelines.len();
    let lines: Lines = Arc::new(Mutex::new(vec![None; count]));
    pipelines
        .into_iter()
        .enumerate()
        .filter_map(|(index, pipeline)| {
            let (blocks, health, lines) = (blocks.clone(), health.clone(), lines.clone());
            std::thread::Builder::new()
                .name(format!("harvest-{index}"))
                .spawn(move || run_one(index, pipeline, blocks, health, lines, idle))
                .map_err(|e| tracing::error!(error = %e, "could not start a harvest thread"))
                .ok()
        })
        .collect()
}

/// Per-source counters kept for aggregation.
#[derive(Debug, Clone, Copy, Default)]
struct CountersPart {
    samples: u64,
    rct: u64,
    apt: u64,
    cut_off: bool,
}

type Lines = Arc<Mutex<Vec<Option<(SourceHealth, CountersPart)>>>>;

fn run_one(
    index: usize,
    mut pipeline: SourcePipeline,
    blocks: mpsc::Sender<ReadyBlock>,
    health: Arc<Mutex<HealthSnapshot>>,
    lines: Lines,
    idle: Duration,
) {
    loop {
        let out = match pipeline.next_block(index as u32, SAMPLE_BUDGET) {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(source = pipeline.name(), error = %e, "source read failed; retrying later");
                std::thread::sleep(idle * 10);
                PipelineOutput::Pending
            }
        };
        publish(index, &pipeline, &health, &lines);
        match out {
            PipelineOutput::Block(harvested) => {
                let ready = ReadyBlock {
                    source: pipeline.name().to_string(),
                    measured_per_sample: pipeline.measured_min_entropy(),
                    harvested,
                };
                if blocks.blocking_send(ready).is_err() {
                    return;
                }
            }
            PipelineOutput::CutOff => {
                if !rest_then_restart(&mut pipeline, &blocks) {
                    return;
                }
                publish(index, &pipeline, &health, &lines);
            }
            PipelineOutput::Pending => {
                if blocks.is_closed() {
                    return;
                }
                std::thread::sleep(idle);
            }
        }
    }
}

/// First wait after a cut-off; doubled after each restart that fails again, up to [`MAX_REST`].
const FIRST_REST: Duration = Duration::from_secs(60);
/// Longest wait before a restart.
const MAX_REST: Duration = Duration::from_secs(3600);

/// Waits (longer after each restart) and restarts a cut-off source; `false` when it is cut off for
/// good or the agent is stopping.
fn rest_then_restart(pipeline: &mut SourcePipeline, blocks: &mpsc::Sender<ReadyBlock>) -> bool {
    let rest = FIRST_REST
        .saturating_mul(1u32 << pipeline.restarts().min(10))
        .min(MAX_REST);
    let until = std::time::Instant::now() + rest;
    while std::time::Instant::now() < until {
        if blocks.is_closed() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    match pipeline.restart() {
        Ok(true) => {
            tracing::info!(
                source = pipeline.name(),
                restart = pipeline.restarts(),
                "restarting a cut-off source: start-up health tests again"
            );
            true
        }
        Ok(false) => {
            tracing::warn!(
                source = pipeline.name(),
                restarts = pipeline.restarts(),
                "source failed its health tests after every restart: cut off for good"
            );
            false
        }
        Err(e) => {
            tracing::warn!(source = pipeline.name(), error = %e, "source could not be restarted");
            false
        }
    }
}

fn publish(
    index: usize,
    pipeline: &SourcePipeline,
    health: &Arc<Mutex<HealthSnapshot>>,
    lines: &Lines,
) {
    let c = pipeline.health().counters();
    let part = CountersPart {
        samples: c.samples_seen,
        rct: c.rct_failures,
        apt: c.apt_failures,
        cut_off: pipeline.cut_off_at().is_some(),
    };
    let Ok(mut all) = lines.lock() else { return };
    if let Some(slot) = all.get_mut(index) {
        *slot = Some((pipeline.health_report(), part));
    }
    let mut counters = HealthCounters::default();
    let mut sources = Vec::with_capacity(all.len());
    for (line, part) in all.iter().flatten() {
        counters.samples = counters.samples.saturating_add(part.samples);
        counters.rct_failures = counters
            .rct_failures
            .saturating_add(u32::try_from(part.rct).unwrap_or(u32::MAX));
        counters.apt_failures = counters
            .apt_failures
            .saturating_add(u32::try_from(part.apt).unwrap_or(u32::MAX));
        if part.cut_off {
            counters.sources_cut_off = counters.sources_cut_off.saturating_add(1);
        } else {
            counters.sources_active = counters.sources_active.saturating_add(1);
        }
        sources.push(line.clone());
    }
    drop(all);
    if let Ok(mut snap) = health.lock() {
        snap.sources = sources;
        snap.counters = counters;
    }
}

/// Recomputes the aggregated counters from every pipeline.
pub fn refresh_all(pipelines: &[SourcePipeline], health: &Arc<Mutex<HealthSnapshot>>) {
    let mut counters = HealthCounters::default();
    let mut lines = Vec::with_capacity(pipelines.len());
    for p in pipelines {
        let c = p.health().counters();
        counters.samples = counters.samples.saturating_add(c.samples_seen);
        counters.rct_failures = counters
            .rct_failures
            .saturating_add(u32::try_from(c.rct_failures).unwrap_or(u32::MAX));
        counters.apt_failures = counters
            .apt_failures
            .saturating_add(u32::try_from(c.apt_failures).unwrap_or(u32::MAX));
        if p.cut_off_at().is_some() {
            counters.sources_cut_off = counters.sources_cut_off.saturating_add(1);
        } else {
            counters.sources_active = counters.sources_active.saturating_add(1);
        }
        lines.push(p.health_report());
    }
    if let Ok(mut snap) = health.lock() {
        snap.sources = lines;
        snap.counters = counters;
    }
}
