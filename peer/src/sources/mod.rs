//! Entropy sources: one trait, real Linux implementations and simulated ones for tests and the simulator.

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
