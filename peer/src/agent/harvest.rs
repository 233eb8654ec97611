//! The harvesting threads: each source is modelled (stored model or a fresh SP 800-90B
//! assessment), then run through its pipeline on its own blocking thread, which also reads the
//! windows the coordinator's entropy audits ask for; blocks go out over a bounded channel.

use super::audit::{AUDIT_READ_TIME, AuditDesk, AuditJob};
use crate::pipeline::{AssessPolicy, HarvestedBlock, PipelineOutput, SourcePipeline};
use crate::sources::models::ModelStore;
use protocols::attestation::HealthCounters;
use protocols::entropy::health::{alpha_log2_for_rate, false_alarm_period_s};
use protocols::wire::SourceHealth;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Samples a source may consume per pass before the thread looks at audits and the channel.
const SAMPLE_BUDGET: u64 = 200_000;

/// Latest health of every source, shared with heartbeats and attestation.
#[derive(Debug, Default, Clone)]
pub struct HealthSnapshot {
    /// One line per source.
    pub sources: Vec<SourceHealth>,
    /// Aggregated counters.
    pub counters: HealthCounters,
}

/// A block with its source's name, ready to contribute.
pub struct ReadyBlock {
    /// The block and its accounting.
    pub harvested: HarvestedBlock,
    /// Name of the source it came from.
    pub source: String,
}

/// How each source gets its entropy model before it harvests.
#[derive(Debug, Clone)]
pub struct Modelling {
    /// Where models are kept (`None`: assess every start, keep nothing).
    pub store: Option<ModelStore>,
    /// SHA-256 of the running binary, hex: a model made by another binary is not reused.
    pub binary_sha256: String,
    /// How a fresh assessment samples.
    pub policy: AssessPolicy,
}

/// Runs each pipeline on its own thread (slow sensors must not starve fast sources) until
/// the receiver is dropped: first its model (stored, or assessed and stored), then harvesting.
/// Each source is registered on `audits`. A thread waits when the consumer is behind. Returns
/// the threads.
pub fn spawn(
    pipelines: Vec<SourcePipeline>,
    blocks: mpsc::Sender<ReadyBlock>,
    health: Arc<Mutex<HealthSnapshot>>,
    idle: Duration,
    modelling: Option<Modelling>,
    audits: &AuditDesk,
) -> Vec<std::thread::JoinHandle<()>> {
    let count = pipelines.len();
    let lines: Lines = Arc::new(Mutex::new(vec![None; count]));
    pipelines
        .into_iter()
        .enumerate()
        .filter_map(|(index, pipeline)| {
            let (blocks, health, lines) = (blocks.clone(), health.clone(), lines.clone());
            let (jobs_tx, jobs) = std::sync::mpsc::sync_channel(1);
            audits.register(pipeline.name(), pipeline.model().bits_per_sample, jobs_tx);
            let modelling = modelling.clone();
            std::thread::Builder::new()
                .name(format!("harvest-{index}"))
                .spawn(move || {
                    let thread = Thread {
                        index,
                        blocks,
                        health,
                        lines,
                        idle,
                        jobs,
                    };
                    thread.run(pipeline, modelling)
                })
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

/// One source's thread.
struct Thread {
    index: usize,
    blocks: mpsc::Sender<ReadyBlock>,
    health: Arc<Mutex<HealthSnapshot>>,
    lines: Lines,
    idle: Duration,
    jobs: Receiver<AuditJob>,
}

/// Gives `pipeline` its model: the stored one when the binary and source are unchanged, else a
/// fresh assessment (stored). `false` when the source cannot be used.
pub fn model_source(pipeline: &mut SourcePipeline, modelling: &Modelling) -> bool {
    let name = pipeline.name().to_string();
    let identity = pipeline.identity();
    if let Some(store) = &modelling.store
        && let Some(model) = store.load(&name, &identity, &modelling.binary_sha256)
    {
        match pipeline.adopt(model) {
            Ok(()) => {
                log_model(pipeline, "stored");
                return true;
            }
            Err(e) => {
                tracing::warn!(source = %name, error = %e, "stored model refused; assessing again")
            }
        }
    }
    tracing::info!(source = %name, max_samples = modelling.policy.max_samples, max_s = modelling.policy.max_time.as_secs_f64(), "assessing source (SP 800-90B §6.3, ten estimators)");
    let now = super::now_ms();
    let assessed = pipeline.assess(modelling.policy, &modelling.binary_sha256, now);
    // The window and the estimators' tables are freed: hand their pages back (crate::heap).
    let released = crate::heap::release_freed();
    tracing::debug!(source = %name, released, "heap pages freed by the assessment handed back");
    match assessed {
        Ok(model) => {
            if let Some(store) = &modelling.store
                && let Err(e) = store.save(model)
            {
                tracing::warn!(source = %name, error = %e, "could not store the source's model; it is assessed again at the next start");
            }
            log_model(pipeline, "assessed");
            true
        }
        Err(e) => {
            tracing::warn!(source = %name, error = %e, "source not used: its assessment failed");
            false
        }
    }
}

fn log_model(pipeline: &SourcePipeline, how: &str) {
    let m = pipeline.model();
    let rate = crate::pipeline::tested_rate(m);
    let alpha = alpha_log2_for_rate(rate);
    tracing::info!(
        source = %m.source,
        how,
        h_per_sample = m.h_per_sample,
        estimator = %m.estimator,
        samples = m.samples,
        samples_per_s = m.samples_per_s.round(),
        alpha = %format!("2^-{alpha}"),
        rct_cutoff = pipeline.health().rct_cutoff(),
        apt_cutoff = pipeline.health().apt_cutoff(),
        tested_per_s = rate.round(),
        false_alarm_every_days = false_alarm_period_s(rate, alpha) / 86_400.0,
        "source model"
    );
}

impl Thread {
    fn run(self, mut pipeline: SourcePipeline, modelling: Option<Modelling>) {
        if let Some(modelling) = &modelling
            && !model_source(&mut pipeline, modelling)
        {
            self.refuse_audits("its assessment failed");
            return;
        }
        loop {
            self.serve_audits(&mut pipeline);
            // About a second of the source per pass, so a slow sensor still answers audits and
            // reports its health promptly.
            let budget =
                (crate::pipeline::tested_rate(pipeline.model()) as u64).clamp(64, SAMPLE_BUDGET);
            let out = match pipeline.next_block(self.index as u32, budget) {
                Ok(out) => out,
                Err(e) => {
                    tracing::warn!(source = pipeline.name(), error = %e, "source read failed; retrying later");
                    std::thread::sleep(self.idle * 10);
                    PipelineOutput::Pending
                }
            };
            publish(self.index, &pipeline, &self.health, &self.lines);
            match out {
                PipelineOutput::Block(harvested) => {
                    let ready = ReadyBlock {
                        source: pipeline.name().to_string(),
                        harvested,
                    };
                    if !self.hand_over(ready, &mut pipeline) {
                        return;
                    }
                }
                PipelineOutput::CutOff => {
                    if !self.rest_then_restart(&mut pipeline) {
                        self.refuse_audits("it is cut off for good");
                        return;
                    }
                    publish(self.index, &pipeline, &self.health, &self.lines);
                }
                PipelineOutput::Pending => {
                    if self.blocks.is_closed() {
                        return;
                    }
                    std::thread::sleep(self.idle);
                }
            }
        }
    }

    /// Sends a block, answering audits while the consumer is behind; `false` once it is gone.
    fn hand_over(&self, mut ready: ReadyBlock, pipeline: &mut SourcePipeline) -> bool {
        loop {
            match self.blocks.try_send(ready) {
                Ok(()) => return true,
                Err(TrySendError::Closed(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    ready = back;
                    if let Ok(job) = self.jobs.recv_timeout(Duration::from_millis(200)) {
                        answer_audit(job, pipeline);
                    }
                }
            }
        }
    }

    fn serve_audits(&self, pipeline: &mut SourcePipeline) {
        loop {
            match self.jobs.try_recv() {
                Ok(job) => answer_audit(job, pipeline),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Answers audits that arrive after the source stopped (until the agent stops).
    fn refuse_audits(&self, why: &str) {
        while !self.blocks.is_closed() {
            if let Ok(job) = self.jobs.recv_timeout(Duration::from_millis(500)) {
                let _ = job.reply.send(Err(format!("source not harvested: {why}")));
            }
        }
    }

    /// Waits (longer after each restart) and restarts a cut-off source; `false` when it is cut
    /// off for good or the agent is stopping.
    fn rest_then_restart(&self, pipeline: &mut SourcePipeline) -> bool {
        rest_then_restart(pipeline, &self.blocks, &self.jobs)
    }
}

/// Reads an audit window from the source and hands it back.
fn answer_audit(job: AuditJob, pipeline: &mut SourcePipeline) {
    let window = pipeline
        .read_window(job.samples, Some(AUDIT_READ_TIME))
        .map_err(|e| e.to_string());
    tracing::info!(
        source = pipeline.name(),
        samples = window.as_ref().map_or(0, Vec::len),
        "entropy audit window read"
    );
    let _ = job.reply.send(window);
}

/// First wait after a cut-off; doubled after each restart that fails again, up to [`MAX_REST`].
const FIRST_REST: Duration = Duration::from_secs(60);
/// Longest wait before a restart.
const MAX_REST: Duration = Duration::from_secs(3600);

/// Waits (longer after each restart) and restarts a cut-off source; `false` when it is cut off for
/// good or the agent is stopping.
fn rest_then_restart(
    pipeline: &mut SourcePipeline,
    blocks: &mpsc::Sender<ReadyBlock>,
    jobs: &Receiver<AuditJob>,
) -> bool {
    let rest = FIRST_REST
        .saturating_mul(1u32 << pipeline.restarts().min(10))
        .min(MAX_REST);
    let until = std::time::Instant::now() + rest;
    while std::time::Instant::now() < until {
        if blocks.is_closed() {
            return false;
        }
        if let Ok(job) = jobs.recv_timeout(Duration::from_millis(500)) {
            let _ = job
                .reply
                .send(Err("source cut off by its health tests, resting".into()));
        }
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
