//! Per-source pipeline (SP 800-90B §3.1): entropy model → health tests at the model's H and a
//! rate-fitted α → HMAC-SHA-256 conditioning → blocks of full-entropy outputs with accounting.

use crate::pace::Pace;
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::assess::{MIN_SAMPLES, assess};
use protocols::entropy::conditioning::samples_per_output;
use protocols::entropy::health::alpha_log2_for_rate;
use protocols::entropy::{
    ConditionedBlock, Conditioner, ConditioningKey, HealthTester, HealthVerdict, SourceModel,
    SourceSpec,
};
use protocols::wire::{SourceAccounting, SourceHealth, SourceState};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples read from a source per pass.
const CHUNK: usize = 4096;
/// Restarts after a persistent health-test failure before a source is cut off for good.
pub const MAX_RESTARTS: u32 = 5;
/// Alarms within [`ALARM_SPAN`] samples that make a failure persistent (the source is cut off);
/// fewer are intermittent: the window is discarded and counted.
pub const PERSISTENT_ALARMS: usize = 3;
/// Samples over which alarms are counted as one failure.
pub const ALARM_SPAN: u64 = 1 << 16;
/// Most samples a second that go through a source's health tests: a fast source (CPU jitter
/// gives a million a second) is paced to this, so α = 2⁻³⁸ keeps its false alarms under one a
/// month. A block of four outputs needs a few thousand samples: pacing costs nothing real.
pub const MAX_TESTED_RATE: f64 = 100_000.0;

/// Samples a second a source with `model` feeds through its health tests (its rate at
/// assessment, paced to [`MAX_TESTED_RATE`]); what α is fitted to.
pub fn tested_rate(model: &SourceModel) -> f64 {
    if model.samples_per_s > 0.0 {
        model.samples_per_s.min(MAX_TESTED_RATE)
    } else {
        0.0
    }
}

/// What one call to [`SourcePipeline::next_block`] produced.
pub enum PipelineOutput {
    /// A full block with its accounting.
    Block(HarvestedBlock),
    /// The source failed its health tests persistently and is now cut off.
    CutOff,
    /// The sample budget ran out before a block was full (a slow source); call again.
    Pending,
}

/// One block of conditioned outputs with the accounting the coordinator credits from.
pub struct HarvestedBlock {
    /// Index of the source within its device.
    pub source_index: u32,
    /// The conditioned outputs.
    pub block: ConditionedBlock,
    /// How they were made.
    pub accounting: SourceAccounting,
}

/// How a source's entropy model is made at first start.
#[derive(Debug, Clone, Copy)]
pub struct AssessPolicy {
    /// Most samples to assess (SP 800-90B asks for 1,000,000).
    pub max_samples: usize,
    /// Longest time spent sampling (a slow source is assessed on what it gave, at least
    /// [`MIN_SAMPLES`]).
    pub max_time: Duration,
}

impl Default for AssessPolicy {
    fn default() -> Self {
        Self {
            max_samples: 1_000_000,
            max_time: Duration::from_secs(5),
        }
    }
}

/// One source with its model, health tester and conditioner.
pub struct SourcePipeline {
    source: Box<dyn EntropySource>,
    model: SourceModel,
    health: HealthTester,
    conditioner: Conditioner,
    key: ConditioningKey,
    alarms: VecDeque<u64>,
    alarms_total: u64,
    pace: Pace,
    cut_off_at: Option<u64>,
    restarts: u32,
    /// Samples and failures counted before the last restart (the tester starts afresh).
    earlier: (u64, u64),
}

/// The model of a source that was not assessed: its declaration (the simulator and unit tests;
/// a real device assesses with [`SourcePipeline::assess`]).
pub fn declared_model(source: &dyn EntropySource) -> SourceModel {
    let spec = source.spec();
    SourceModel {
        source: source.name().to_string(),
        identity: source_identity(source),
        binary_sha256: String::new(),
        bits_per_sample: spec.bits_per_sample(),
        h_per_sample: spec.min_entropy_per_sample(),
        estimator: "declared".into(),
        samples: 0,
        samples_per_s: 0.0,
        assessed_at_ms: 0,
    }
}

/// What identifies a source for its model: a model is reused only for the same name, width and
/// declaration.
pub fn source_identity(source: &dyn EntropySource) -> String {
    let spec = source.spec();
    format!(
        "{} bits={} declared={}",
        source.name(),
        spec.bits_per_sample(),
        spec.min_entropy_per_sample()
    )
}

impl SourcePipeline {
    /// Wraps a source under its declared model, conditioning with `key`.
    pub fn new(
        source: Box<dyn EntropySource>,
        key: ConditioningKey,
    ) -> Result<Self, PipelineError> {
        let model = declared_model(source.as_ref());
        Self::with_model(source, model, key)
    }

    /// Wraps a source under `model` (its H sets the health cutoffs and the conditioning rate).
    pub fn with_model(
        source: Box<dyn EntropySource>,
        model: SourceModel,
        key: ConditioningKey,
    ) -> Result<Self, PipelineError> {
        let (health, conditioner) = Self::parts(source.spec(), &model, &key, source.name())?;
        Ok(Self {
            source,
            model,
            health,
            conditioner,
            key,
            alarms: VecDeque::new(),
            alarms_total: 0,
            pace: Pace::default(),
            cut_off_at: None,
            restarts: 0,
            earlier: (0, 0),
        })
    }

    fn parts(
        spec: SourceSpec,
        model: &SourceModel,
        key: &ConditioningKey,
        name: &str,
    ) -> Result<(HealthTester, Conditioner), PipelineError> {
        let spec = spec
            .with_min_entropy(model.h_per_sample)
            .map_err(|e| PipelineError::Setup(format!("{name}: {e}")))?;
        let alpha = alpha_log2_for_rate(tested_rate(model));
        let conditioner =
            Conditioner::new(key.clone(), name, model.h_per_sample).ok_or_else(|| {
                PipelineError::Setup(format!(
                    "{name}: no conditioning at H = {}",
                    model.h_per_sample
                ))
            })?;
        Ok((HealthTester::with_alpha(spec, alpha), conditioner))
    }

    /// Assesses the source (SP 800-90B §6.3, all ten estimators) on up to
    /// `policy.max_samples` fresh samples taken within `policy.max_time` (at least
    /// [`MIN_SAMPLES`], however long that takes), and adopts the result: H = min(assessed,
    /// declared). `now_ms` and `binary_sha256` are recorded in the model.
    pub fn assess(
        &mut self,
        policy: AssessPolicy,
        binary_sha256: &str,
        now_ms: u64,
    ) -> Result<&SourceModel, PipelineError> {
        let started = Instant::now();
        let samples =
            self.read_window(policy.max_samples.max(MIN_SAMPLES), Some(policy.max_time))?;
        let elapsed = started.elapsed().as_secs_f64().max(1e-6);
        let spec = self.source.spec();
        let assessment = assess(&samples, spec.bits_per_sample())
            .map_err(|e| PipelineError::Setup(format!("{}: assessment: {e}", self.name())))?;
        let lowest = assessment.estimates.iter().min_by(|a, b| {
            a.min_entropy_per_sample
                .total_cmp(&b.min_entropy_per_sample)
        });
        let (h, estimator) = match lowest {
            Some(e) if e.min_entropy_per_sample < spec.min_entropy_per_sample() => (
                e.min_entropy_per_sample,
                format!("{} (§{})", e.name, e.section),
            ),
            // The declaration is lower: it is the model (90B's H_submitter); the assessment is
            // kept in the name for the operator.
            Some(e) => (
                spec.min_entropy_per_sample(),
                format!(
                    "declared (assessed {:.3}, {} §{})",
                    e.min_entropy_per_sample, e.name, e.section
                ),
            ),
            None => (spec.min_entropy_per_sample(), "declared".to_string()),
        };
        let model = SourceModel {
            source: self.name().to_string(),
            identity: source_identity(self.source.as_ref()),
            binary_sha256: binary_sha256.to_string(),
            bits_per_sample: spec.bits_per_sample(),
            h_per_sample: h,
            estimator,
            samples: samples.len() as u64,
            samples_per_s: samples.len() as f64 / elapsed,
            assessed_at_ms: now_ms,
        };
        self.adopt(model)?;
        Ok(&self.model)
    }

    /// Adopts a model (a stored one, or a fresh assessment): new health tests and conditioner.
    pub fn adopt(&mut self, model: SourceModel) -> Result<(), PipelineError> {
        if model.h_per_sample <= 0.0 || !model.h_per_sample.is_finite() {
            return Err(PipelineError::NoEntropy {
                source_name: self.name().to_string(),
                estimator: model.estimator,
            });
        }
        let (health, conditioner) =
            Self::parts(self.source.spec(), &model, &self.key, self.name())?;
        self.health = health;
        self.conditioner = conditioner;
        self.model = model;
        Ok(())
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        self.source.name()
    }

    /// What identifies the source for its stored model.
    pub fn identity(&self) -> String {
        source_identity(self.source.as_ref())
    }

    /// The entropy model in force.
    pub fn model(&self) -> &SourceModel {
        &self.model
    }

    /// The health tester (cutoffs, counters).
    pub fn health(&self) -> &HealthTester {
        &self.health
    }

    /// Intermittent alarms since start (windows discarded).
    pub fn alarms(&self) -> u64 {
        self.alarms_total
    }

    /// The sample number at which the source was cut off, if it was.
    pub fn cut_off_at(&self) -> Option<u64> {
        self.cut_off_at
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Up to `samples` fresh raw samples, masked to the source's width, read within `max_time`
    /// (`None`: until they are all there). Never used for a contribution: entropy audits and the
    /// assessment read through here.
    pub fn read_window(
        &mut self,
        samples: usize,
        max_time: Option<Duration>,
    ) -> Result<Vec<u8>, SourceError> {
        let mask = self.source.spec().sample_mask();
        let started = Instant::now();
        let mut out = Vec::with_capacity(samples.min(1 << 20));
        while out.len() < samples {
            let before = out.len();
            self.source
                .read_samples(&mut out, (samples - before).min(CHUNK))?;
            out.truncate(samples);
            if let Some(limit) = max_time
                && started.elapsed() >= limit
                && out.len() >= MIN_SAMPLES.min(samples)
            {
                break;
            }
        }
        for s in &mut out {
            *s &= mask;
        }
        Ok(out)
    }

    /// After a cut-off: starts the source afresh (new health tests with their start-up phase,
    /// the partial block dropped), unless it already had [`MAX_RESTARTS`]; then it stays cut off
    /// and this returns `false`. SP 800-90B §4.3 lets a failed source be restarted once it passes
    /// its start-up tests again; a source that keeps failing is gone for good.
    pub fn restart(&mut self) -> Result<bool, PipelineError> {
        if self.cut_off_at.is_none() {
            return Ok(true);
        }
        if self.restarts >= MAX_RESTARTS {
            return Ok(false);
        }
        let c = self.health.counters();
        self.earlier.0 = self.earlier.0.saturating_add(c.samples_seen);
        self.earlier.1 = self
            .earlier
            .1
            .saturating_add(c.rct_failures.saturating_add(c.apt_failures));
        let (health, conditioner) =
            Self::parts(self.source.spec(), &self.model, &self.key, self.name())?;
        self.health = health;
        self.conditioner = conditioner;
        self.alarms.clear();
        self.cut_off_at = None;
        self.restarts += 1;
        Ok(true)
    }

    /// Health line for heartbeats.
    pub fn health_report(&self) -> SourceHealth {
        let c = self.health.counters();
        let state = match (self.cut_off_at, self.health.state()) {
            (Some(_), _) => SourceState::CutOff,
            (None, HealthVerdict::Startup) => SourceState::Startup,
            _ => SourceState::Healthy,
        };
        SourceHealth {
            source: self.source.name().to_string(),
            state,
            samples: self.earlier.0.saturating_add(c.samples_seen),
            failures: u32::try_from(
                self.earlier
                    .1
                    .saturating_add(c.rct_failures.saturating_add(c.apt_failures)),
            )
            .unwrap_or(u32::MAX),
        }
    }

    /// Samples one block needs under the current model.
    pub fn samples_per_block(&self) -> u64 {
        samples_per_output(self.model.h_per_sample)
            .unwrap_or(u64::MAX)
            .saturating_mul(protocols::entropy::conditioning::OUTPUTS_PER_BLOCK as u64)
    }

    /// Feeds up to `sample_budget` samples through the health tests and the conditioner.
    pub fn next_block(
        &mut self,
        source_index: u32,
        sample_budget: u64,
    ) -> Result<PipelineOutput, SourceError> {
        let mut buf = Vec::with_capacity(CHUNK);
        let mut used = 0u64;
        while self.cut_off_at.is_none() && used < sample_budget {
            buf.clear();
            let want = (sample_budget - used).min(CHUNK as u64) as usize;
            self.pace.wait_for(want as u64);
            self.source.read_samples(&mut buf, want)?;
            for &sample in &buf {
                used += 1;
                match self.health.feed(sample) {
                    HealthVerdict::Failed(failure) => {
                        if self.on_alarm(failure) {
                            return Ok(PipelineOutput::CutOff);
                        }
                    }
                    HealthVerdict::Startup => {}
                    HealthVerdict::Healthy => {
                        if let Some(block) = self.conditioner.push(sample) {
                            return Ok(PipelineOutput::Block(self.finish(source_index, block)));
                        }
                    }
                }
            }
            if buf.is_empty() {
                break;
            }
        }
        Ok(if self.cut_off_at.is_some() {
            PipelineOutput::CutOff
        } else {
            PipelineOutput::Pending
        })
    }

    /// An alarm: the window being conditioned is discarded; `true` when alarms within
    /// [`ALARM_SPAN`] samples make it persistent and the source is cut off.
    fn on_alarm(&mut self, failure: protocols::entropy::HealthFailure) -> bool {
        let at = self.health.counters().samples_seen;
        self.alarms_total += 1;
        self.alarms.push_back(at);
        while self
            .alarms
            .front()
            .is_some_and(|first| at.saturating_sub(*first) > ALARM_SPAN)
        {
            self.alarms.pop_front();
        }
        self.conditioner.discard_window();
        if self.alarms.len() >= PERSISTENT_ALARMS {
            tracing::warn!(
                source = self.source.name(),
                ?failure,
                at,
                alarms = self.alarms.len(),
                "source failed its health tests persistently and is cut off"
            );
            self.cut_off_at = Some(at);
            return true;
        }
        tracing::info!(
            source = self.source.name(),
            ?failure,
            at,
            "intermittent health-test alarm: window discarded"
        );
        self.health.clear_alarm();
        false
    }

    fn finish(&self, source_index: u32, block: ConditionedBlock) -> HarvestedBlock {
        let accounting = SourceAccounting {
            source: self.model.source.clone(),
            bits_per_sample: self.model.bits_per_sample,
            raw_samples: block.raw_samples(),
            h_millibits: (self.model.h_per_sample * 1000.0).floor() as u32,
            estimator: self.model.estimator.clone(),
        };
        HarvestedBlock {
            source_index,
            block,
            accounting,
        }
    }
}

/// A pipeline could not be built or assessed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Bad parameters from the source's spec or model.
    #[error("pipeline setup: {0}")]
    Setup(String),
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The assessment found no entropy at all.
    #[error("source {source_name} assessed at 0 bits per sample ({estimator}): not used")]
    NoEntropy {
        /// The source.
        source_name: String,
        /// The estimator that said so.
        estimator: String,
    },
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
