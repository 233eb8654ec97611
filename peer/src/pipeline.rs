//! Per-source pipeline: health tests → min-entropy estimate → Von Neumann → 20,000-bit blocks with claims.

use crate::sources::{EntropySource, SourceError};
use protocols::entropy::{
    BLOCK_BITS, DebiasedBlock, Debiaser, HealthTester, HealthVerdict, SlidingMcv, SourceClaim,
};
use protocols::wire::{SourceHealth, SourceState};

/// Samples read from a source per pass.
const CHUNK: usize = 4096;
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
            samples: c.samples_seen,
            failures: u32::try_from(c.rct_failures.saturating_add(c.apt_failures))
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

    #[test]
    fn slow_source_reports_pending_when_the_budget_runs_out() {
        let mut p = pipeline(SimulatedKind::Biased { p_one: 0.5 });
        assert!(matches!(
            p.next_block(0, 100).unwrap(),
            PipelineOutput::Pending
        ));
    }
}
