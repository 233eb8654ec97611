//! Per-source pipeline: health tests → min-entropy estimate → Von Neumann → 20,000-bit blocks with claims.

use crate::sources::{EntropySource, SourceError};
use protocols::entropy::{
    BLOCK_BITS, DebiasedBlock, Debiaser, HealthTester, HealthVerdict, SlidingMcv, SourceClaim,
};
use protocols::wire::{SourceHealth, SourceState};

/// Samples read from a source per pass.
const CHUNK: usize = 4096;
/// Restarts after a health-test failure before a source is cut off for good.
pub const MAX_RESTARTS: u32 = 5;
/// Window of the most-common-value estimate.
const MCV_WINDOW: usize = 4096;

/// What one call to [`SourcePipeline::next_block`] produced.
pub enum PipelineOutput {
    /// A full block with the claim for it.
    Block(HarvestedBlock),
    /// The source failed a health test and is now cut off.
    CutOff,
    /// The sample budget ran out before a block was full (a slow source); call again.
    Pending,
}

/// One debiased block with the min-entropy claim the coordinator will weigh.
pub struct HarvestedBlock {
    /// Index of the source within its device.
    pub source_index: u32,
    /// The debiased bits.
    pub block: DebiasedBlock,
    /// Claimed and measured min-entropy per debiased bit.
    pub claim: SourceClaim,
}

/// One source with its health tester, sliding MCV estimate and debiaser.
pub struct SourcePipeline {
    source: Box<dyn EntropySource>,
    health: HealthTester,
    mcv: SlidingMcv,
    debias: Debiaser,
    samples_since_block: u64,
    cut_off_at: Option<u64>,
    restarts: u32,
    /// Samples and failures counted before the last restart (the tester starts afresh).
    earlier: (u64, u64),
}

impl SourcePipeline {
    /// Wraps a source.
    pub fn new(source: Box<dyn EntropySource>) -> Result<Self, PipelineError> {
        let spec = source.spec();
        Ok(Self {
            health: HealthTester::new(spec),
            mcv: SlidingMcv::new(MCV_WINDOW).map_err(|e| PipelineError::Setup(e.to_string()))?,
            debias: Debiaser::new(spec.bits_per_sample())
                .map_err(|e| PipelineError::Setup(e.to_string()))?,
            samples_since_block: 0,
            cut_off_at: None,
            restarts: 0,
            earlier: (0, 0),
            source,
        })
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        self.source.name()
    }

    /// The health tester (cutoffs, counters).
    pub fn health(&self) -> &HealthTester {
        &self.health
    }

    /// The sample number at which the source was cut off, if it was.
    pub fn cut_off_at(&self) -> Option<u64> {
        self.cut_off_at
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// After a cut-off: starts the source afresh (new health tests with their start-up phase,
    /// new estimate, the partial block dropped), unless it already had [`MAX_RESTARTS`]; then it
    /// stays cut off and this returns `false`. SP 800-90B §4.3 lets a failed source be restarted
    /// once it passes its start-up tests again; a source that keeps failing is gone for good.
    pub fn restart(&mut self) -> Result<bool, PipelineError> {
        if self.cut_off_at.is_none() {
            return Ok(true);
        }
        if self.restarts >= MAX_RESTARTS {
            return Ok(false);
        }
        let spec = self.source.spec();
        let c = self.health.counters();
        self.earlier.0 = self.earlier.0.saturating_add(c.samples_seen);
        self.earlier.1 = self
            .earlier
            .1
            .saturating_add(c.rct_failures.saturating_add(c.apt_failures));
        self.health = HealthTester::new(spec);
        self.mcv = SlidingMcv::new(MCV_WINDOW).map_err(|e| PipelineError::Setup(e.to_string()))?;
        self.debias = Debiaser::new(spec.bits_per_sample())
            .map_err(|e| PipelineError::Setup(e.to_string()))?;
        self.samples_since_block = 0;
        self.cut_off_at = None;
        self.restarts += 1;
        Ok(true)
    }

    /// Current MCV estimate of min-entropy per sample.
    pub fn measured_min_entropy(&self) -> Option<f64> {
        self.mcv.estimate()
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

    /// Feeds up to `sample_budget` samples through the tests and the debiaser.
    pub fn next_block(
        &mut self,
        source_index: u32,
        sample_budget: u64,
    ) -> Result<PipelineOutput, SourceError> {
        let mut buf = Vec::with_capacity(CHUNK);
        let mut used = 0u64;
        while self.cut_off_at.is_none() && used < sample_budget {
            buf.clear();
            self.source.read_samples(&mut buf, CHUNK)?;
            for &sample in &buf {
                used += 1;
                match self.health.feed(sample) {
                    HealthVerdict::Failed(failure) => {
                        let at = self.health.counters().samples_seen;
                        tracing::warn!(
                            source = self.source.name(),
                            ?failure,
                            at,
                            "source failed a health test and is cut off"
                        );
                        self.cut_off_at = Some(at);
                        return Ok(PipelineOutput::CutOff);
                    }
                    HealthVerdict::Startup => continue,
                    HealthVerdict::Healthy => {}
                }
                self.mcv.push(sample);
                self.samples_since_block += 1;
                if let Some(block) = self.debias.push_sample(sample) {
                    return Ok(PipelineOutput::Block(
                        self.finish_block(source_index, block),
                    ));
                }
            }
        }
        Ok(if self.cut_off_at.is_some() {
            PipelineOutput::CutOff
        } else {
            PipelineOutput::Pending
        })
    }

    fn finish_block(&mut self, source_index: u32, block: DebiasedBlock) -> HarvestedBlock {
        let spec = self.source.spec();
        let raw = self.samples_since_block as f64;
        let per_bit = |h_per_sample: f64| (h_per_sample * raw / BLOCK_BITS as f64).min(1.0);
        let claim = SourceClaim {
            debiased_bits: BLOCK_BITS as u64,
            claimed_min_entropy_per_bit: per_bit(spec.min_entropy_per_sample()),
            measured_min_entropy_per_bit: self.mcv.estimate().map(per_bit),
        };
        self.samples_since_block = 0;
        HarvestedBlock {
            source_index,
            block,
            claim,
        }
    }
}

/// A pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Bad parameters from the source's spec.
    #[error("pipeline setup: {0}")]
    Setup(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sources::simulated::{SimulatedKind, SimulatedSource};

    fn pipeline(kind: SimulatedKind) -> SourcePipeline {
        SourcePipeline::new(Box::new(
            SimulatedSource::new("sim", kind, [3; 32]).unwrap(),
        ))
        .unwrap()
    }

    #[test]
    fn stuck_source_is_cut_off_at_exactly_the_repetition_cutoff() {
        let mut p = pipeline(SimulatedKind::Stuck { value: 0 });
        assert!(matches!(
            p.next_block(0, 1_000_000).unwrap(),
            PipelineOutput::CutOff
        ));
        assert_eq!(p.cut_off_at(), Some(p.health().rct_cutoff()));
        assert_eq!(p.health_report().state, SourceState::CutOff);
    }

    #[test]
    fn biased_source_yields_a_full_block_with_a_bounded_claim() {
        let mut p = pipeline(SimulatedKind::Biased { p_one: 0.7 });
        let PipelineOutput::Block(b) = p.next_block(0, 1_000_000).unwrap() else {
            panic!("no block")
        };
        assert!(b.claim.claimed_min_entropy_per_bit <= 1.0);
        assert!(b.claim.measured_min_entropy_per_bit.unwrap() > 0.0);
        assert_eq!(p.health_report().state, SourceState::Healthy);
    }

    /// A sensor that is stuck for its first `stuck` samples, then healthy.
    struct RecoveringSensor {
        stuck: usize,
        inner: SimulatedSource,
    }

    impl EntropySource for RecoveringSensor {
        fn name(&self) -> &str {
            "recovering"
        }
        fn spec(&self) -> protocols::entropy::SourceSpec {
            self.inner.spec()
        }
        fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
            let stuck = self.stuck.min(max);
            if stuck > 0 {
                out.extend(std::iter::repeat_n(0, stuck));
                self.stuck -= stuck;
                return Ok(());
            }
            self.inner.read_samples(out, max)
        }
    }

    #[test]
    fn a_source_that_recovers_is_restarted_and_delivers_again() {
        let mut p = SourcePipeline::new(Box::new(RecoveringSensor {
            stuck: 1_000,
            inner: SimulatedSource::new("sim", SimulatedKind::Biased { p_one: 0.6 }, [4; 32])
                .unwrap(),
        }))
        .unwrap();
        assert!(matches!(
            p.next_block(0, 1_000_000).unwrap(),
            PipelineOutput::CutOff
        ));
        let failures_before = p.health_report().failures;
        assert!(p.restart().unwrap());
        assert_eq!(p.restarts(), 1);
        // Start-up tests run again before anything is used, and nothing of the stuck run is kept.
        assert_eq!(p.health_report().state, SourceState::Startup);
        assert!(matches!(
            p.next_block(0, 1_000_000).unwrap(),
            PipelineOutput::Block(_)
        ));
        let report = p.health_report();
        assert_eq!(report.state, SourceState::Healthy);
        assert_eq!(
            report.failures, failures_before,
            "counters carry over a restart"
        );
    }

    #[test]
    fn a_source_that_keeps_failing_is_cut_off_for_good_after_the_last_restart() {
        let mut p = pipeline(SimulatedKind::Stuck { value: 7 });
        for _ in 0..MAX_RESTARTS {
            assert!(matches!(
                p.next_block(0, 1_000_000).unwrap(),
                PipelineOutput::CutOff
            ));
            assert!(p.restart().unwrap());
        }
        assert!(matches!(
            p.next_block(0, 1_000_000).unwrap(),
            PipelineOutput::CutOff
        ));
        assert!(!p.restart().unwrap());
        assert_eq!(p.health_report().state, SourceState::CutOff);
        assert_eq!(p.health_report().failures, MAX_RESTARTS + 1);
    }

    #[test]
    fn slow_source_reports_pending_when_the_budget_runs_out() {
        let mut p = pipeline(SimulatedKind::Biased { p_one: 0.5 });
        assert!(matches!(
            p.next_block(0, 100).unwrap(),
            PipelineOutput::Pending
        ));
    }
}
