//! SP 800-90B (January 2018) §6.3 non-IID min-entropy estimators and the §3.1.3 combination rule.
//!
//! # What [`assess`] computes
//!
//! The ten estimators of NIST SP 800-90B §6.3 — Most Common Value (6.3.1), Collision (6.3.2),
//! Markov (6.3.3), Compression (6.3.4), t-Tuple (6.3.5), Longest Repeated Substring (6.3.6),
//! MultiMCW (6.3.7), Lag (6.3.8), MultiMMC (6.3.9) and LZ78Y (6.3.10) prediction — combined
//! as §3.1.3 prescribes for the initial entropy estimate of a non-IID source:
//!
//! * `bits_per_sample == 1` (binary data): all ten estimators run on the samples and
//!   `H_original` is their minimum.
//! * `bits_per_sample > 1`: Collision, Markov and Compression are defined for binary inputs
//!   only (§6.3.2–§6.3.4), so the seven other estimators run on the samples themselves
//!   (`H_original`, bits per sample), and all ten run on the bit string obtained by
//!   concatenating the `bits_per_sample` low bits of every sample, most significant bit first
//!   (`H_bitstring`, bits per bit). The assessment is
//!   `min(H_original, bits_per_sample × H_bitstring)`; `H_submitter` is not known here and is
//!   left to the caller.
//!
//! Every [`EstimatorResult`] therefore carries a per-sample value: a bit-string estimate is
//! multiplied by `bits_per_sample`. Each estimate is clamped to `[0, bits_per_sample]`
//! (`[0, 1]` per bit before scaling), the largest min-entropy a sample can hold; a NaN (which
//! the estimators are written never to produce) would be mapped to 0.
//!
//! The individual estimators are public too. They take the symbols of one sequence and
//! return bits per symbol, or `None` when the sequence is too short for the estimator to be
//! defined (or, for the binary-only three, contains a symbol other than 0 and 1).
//!
//! # Interpretation choices, all documented at the code
//!
//! * The declared `bits_per_sample` decides the binary path; symbols are not translated (the
//!   NIST tool instead maps the observed values to `0..k` and treats `k = 2` as binary).
//! * The 99% normal quantile is 2.576, as written in 90B (the NIST tool uses 2.5758293…).
//! * `k`, the alphabet size in the prediction estimators' `max(P_global', P_local, 1/k)`, is
//!   the number of distinct symbols present in the sequence (as the NIST tool does after its
//!   symbol translation); a smaller `k` only makes the estimate more conservative.
//! * Ties among most-frequent followers in MultiMMC and LZ78Y go to the larger symbol value
//!   (90B leaves this open; the NIST tool does the same). MultiMCW ties go to the most
//!   recently seen value, as 90B says.
//! * `P_local` uses `x = x_10` of the recurrence of §6.3.7 step 9 exactly as written (the
//!   NIST tool iterates the recurrence to convergence; the two agree on ordinary data).
//! * "Solve for p" (Collision step 7, Compression step 6, `P_local`) is bisection on a
//!   monotone function, run to the resolution of `f64`. When the target lies below the
//!   function's range (the data are more predictable than any parameter allows), `p` is the
//!   upper end of the domain (0 bits), as the NIST tool does; when it lies above, 90B's "no
//!   solution" rule applies (full entropy).
//!
//! # Agreement with the NIST tool
//!
//! On the NIST tool's eleven self-test data sets (1-, 4- and 8-bit, random, biased, ring
//! oscillator, normal, digits of π) every estimate, `H_original`, `H_bitstring` and the
//! assessment agree with the reference outputs the tool publishes (`cpp/selftest/refdata`)
//! to within 1e-4 bits (observed at most 2.7e-5 per estimate, 5.5e-5 for the assessment of a
//! 4-bit set, which is 4 × `H_bitstring`), and are never above them: that residue is the z
//! value alone. With the tool's z substituted they agree to within 1e-9 (observed at most
//! 5e-10, from `P_local` and rounding). `nist_vectors.rs` pins both on seven of the sets,
//! whose data are in `entropy/tests/data/nist/`; the other four (`biased-random-bytes`,
//! `normal`, `truerand_4bit`, `truerand_8bit`, 1 MB each) were compared by hand against a
//! checkout of the tool's repository when this was written and are not in the suite.
//!
//! # Cost
//!
//! All estimators are `O(n)` in time and memory except as noted. t-Tuple and LRS share one
//! sorted LCP array, built in a single `u32` per symbol — a sort of 64-bit windows for bit
//! strings whose repeats are all shorter than 64 bits (`O(n log n)` at worst), SA-IS with a
//! sampled permuted LCP otherwise (`O(n)`) — and derive every tuple count from its LCP
//! intervals in `O(n)` more. Compression's `G` costs `O(n)` per evaluation and its bisection
//! makes about 110 of them (mostly cut short once the powers underflow). Lag is `O(128 n)`,
//! MultiMMC and LZ78Y `O(16 n)` table operations. One million 8-bit samples (8 million bits
//! for the bit-string pass) take about 4 CPU seconds in a release build and peak at 52 to
//! 61 MiB resident on random or random-walk bytes, 78 MiB on a stuck all-zero source
//! (`entroshard entropy assess FILE --bits 8`; 151, 178 and 573 MiB before the LCP arrays
//! were built in place).

mod common;
mod compression;
mod context_predictors;
mod context_tables;
mod mcv_collision_markov;
mod predictors;
mod suffix;
mod t_tuple_lrs;

pub use compression::compression;
pub use context_predictors::{lz78y_prediction, multi_mmc_prediction};
pub use mcv_collision_markov::{collision, markov, most_common_value};
pub use predictors::{lag_prediction, multi_mcw_prediction};
pub use t_tuple_lrs::{longest_repeated_substring, t_tuple};

use common::{clamp_entropy, to_bitstring};
use serde::Serialize;
use thiserror::Error;

/// The 99% upper-bound z value written in SP 800-90B §6.3.
pub const Z_ALPHA: f64 = 2.576;
/// Fewest samples [`assess`] accepts (90B validation wants 1,000,000; the estimators need far
/// fewer to be defined, and some still report nothing on short data).
pub const MIN_SAMPLES: usize = 1000;
/// Most samples [`assess`] accepts (16 Mi; bounds memory to a few GiB for 8-bit samples,
/// whose 134-million-bit string goes through the suffix sorting).
pub const MAX_SAMPLES: usize = 1 << 24;
/// Longest sequence an individual estimator accepts; longer inputs yield `None`.
pub const MAX_SEQUENCE_LEN: usize = (u32::MAX - 1) as usize;

/// Which sequence an estimator ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AppliedTo {
    /// The samples themselves.
    Samples,
    /// The concatenated bits of the samples (its per-bit result is scaled to per sample).
    Bitstring,
}

/// One estimator's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimatorResult {
    /// Estimator name, e.g. `"Most Common Value"`.
    pub name: &'static str,
    /// SP 800-90B section, e.g. `"6.3.1"`.
    pub section: &'static str,
    /// Min-entropy in bits per sample (a bit-string result times `bits_per_sample`).
    pub min_entropy_per_sample: f64,
    /// The estimator's own output: bits per symbol of the sequence it ran on (per bit for
    /// [`AppliedTo::Bitstring`]).
    pub estimate: f64,
    /// Which sequence the estimator ran on.
    pub applied_to: AppliedTo,
}

/// An estimator that produced no value because the data are too short for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEstimator {
    /// Estimator name.
    pub name: &'static str,
    /// SP 800-90B section.
    pub section: &'static str,
    /// Which sequence it would have run on.
    pub applied_to: AppliedTo,
}

/// The outcome of [`assess`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Every estimate that could be computed.
    pub estimates: Vec<EstimatorResult>,
    /// Estimators that were not defined for this much data.
    pub skipped: Vec<SkippedEstimator>,
    /// `H_original`: minimum of the estimates on the samples (bits per sample).
    pub h_original: f64,
    /// `H_bitstring`: minimum of the estimates on the bit string (bits per bit), for
    /// `bits_per_sample > 1`.
    pub h_bitstring: Option<f64>,
    /// The assessed min-entropy: the minimum of `estimates` (bits per sample).
    pub min_entropy_per_sample: f64,
    /// Number of samples assessed.
    pub samples: usize,
    /// Declared sample width.
    pub bits_per_sample: u8,
}

/// Why [`assess`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AssessError {
    /// `bits_per_sample` must be in `1..=8`.
    #[error("bits_per_sample {0} is not in 1..=8")]
    BitsPerSample(u8),
    /// Too few samples for a meaningful assessment.
    #[error("{got} samples given, at least {min} needed")]
    TooFewSamples {
        /// Samples given.
        got: usize,
        /// Minimum accepted.
        min: usize,
    },
    /// Too many samples.
    #[error("{got} samples given, at most {max} accepted")]
    TooManySamples {
        /// Samples given.
        got: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// A sample does not fit in `bits_per_sample` bits.
    #[error("sample {index} has value {value}, which does not fit in {bits} bits")]
    SampleOutOfRange {
        /// Position of the first offending sample.
        index: usize,
        /// Its value.
        value: u8,
        /// Declared width.
        bits: u8,
    },
}

/// The ten estimators, in 90B order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Estimator {
    Mcv,
    Collision,
    Markov,
    Compression,
    TTuple,
    Lrs,
    MultiMcw,
    Lag,
    MultiMmc,
    Lz78y,
}

impl Estimator {
    const ALL: [Estimator; 10] = [
        Estimator::Mcv,
        Estimator::Collision,
        Estimator::Markov,
        Estimator::Compression,
        Estimator::TTuple,
        Estimator::Lrs,
        Estimator::MultiMcw,
        Estimator::Lag,
        Estimator::MultiMmc,
        Estimator::Lz78y,
    ];

    fn name_and_section(self) -> (&'static str, &'static str) {
        match self {
            Estimator::Mcv => ("Most Common Value", "6.3.1"),
            Estimator::Collision => ("Collision", "6.3.2"),
            Estimator::Markov => ("Markov", "6.3.3"),
            Estimator::Compression => ("Compression", "6.3.4"),
            Estimator::TTuple => ("t-Tuple", "6.3.5"),
            Estimator::Lrs => ("Longest Repeated Substring", "6.3.6"),
            Estimator::MultiMcw => ("MultiMCW Prediction", "6.3.7"),
            Estimator::Lag => ("Lag Prediction", "6.3.8"),
            Estimator::MultiMmc => ("MultiMMC Prediction", "6.3.9"),
            Estimator::Lz78y => ("LZ78Y Prediction", "6.3.10"),
        }
    }

    /// §6.3.2–§6.3.4 apply to binary data only.
    fn binary_only(self) -> bool {
        matches!(
            self,
            Estimator::Collision | Estimator::Markov | Estimator::Compression
        )
    }
}

/// Runs the §6.3 estimators on `samples` of width `bits_per_sample` and combines them as
/// §3.1.3 prescribes (see the module documentation).
pub fn assess(samples: &[u8], bits_per_sample: u8) -> Result<Assessment, AssessError> {
    if !(1..=8).contains(&bits_per_sample) {
        return Err(AssessError::BitsPerSample(bits_per_sample));
    }
    if samples.len() < MIN_SAMPLES {
        return Err(AssessError::TooFewSamples {
            got: samples.len(),
            min: MIN_SAMPLES,
        });
    }
    if samples.len() > MAX_SAMPLES {
        return Err(AssessError::TooManySamples {
            got: samples.len(),
            max: MAX_SAMPLES,
        });
    }
    let limit = 1u16 << bits_per_sample;
    if let Some((index, &value)) = samples
        .iter()
        .enumerate()
        .find(|(_, v)| u16::from(**v) >= limit)
    {
        return Err(AssessError::SampleOutOfRange {
            index,
            value,
            bits: bits_per_sample,
        });
    }

    let width = f64::from(bits_per_sample);
    let mut estimates = Vec::new();
    let mut skipped = Vec::new();
    let mut record = |est: Estimator, value: Option<f64>, applied_to: AppliedTo| {
        let (name, section) = est.name_and_section();
        match value {
            Some(v) => {
                let (estimate, per_sample) = match applied_to {
                    AppliedTo::Samples => {
                        let h = clamp_entropy(v, width);
                        (h, h)
                    }
                    AppliedTo::Bitstring => {
                        let h = clamp_entropy(v, 1.0);
                        (h, clamp_entropy(h * width, width))
                    }
                };
                estimates.push(EstimatorResult {
                    name,
                    section,
                    min_entropy_per_sample: per_sample,
                    estimate,
                    applied_to,
                });
            }
            None => skipped.push(SkippedEstimator {
                name,
                section,
                applied_to,
            }),
        }
    };

    let binary = bits_per_sample == 1;
    for (est, value) in run_estimators(samples, binary) {
        record(est, value, AppliedTo::Samples);
    }
    if !binary {
        let bits = to_bitstring(samples, bits_per_sample);
        for (est, value) in run_estimators(&bits, true) {
            record(est, value, AppliedTo::Bitstring);
        }
    }

    let min_of = |applied: AppliedTo, per_bit: bool| {
        estimates
            .iter()
            .filter(|e| e.applied_to == applied)
            .map(|e| {
                if per_bit {
                    e.estimate
                } else {
                    e.min_entropy_per_sample
                }
            })
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.min(v)))
            })
    };
    // MCV on the samples is defined for every accepted input, so `h_original` always exists.
    let h_original = min_of(AppliedTo::Samples, false).unwrap_or(width);
    let h_bitstring = if binary {
        None
    } else {
        min_of(AppliedTo::Bitstring, true)
    };
    // §3.1.3: H_I = min(H_original, n × H_bitstring) (H_submitter is the caller's).
    let min_entropy_per_sample = estimates
        .iter()
        .map(|e| e.min_entropy_per_sample)
        .fold(h_original, f64::min);
    Ok(Assessment {
        estimates,
        skipped,
        h_original,
        h_bitstring,
        min_entropy_per_sample,
        samples: samples.len(),
        bits_per_sample,
    })
}

/// Runs every estimator applicable to `symbols` (`binary`: all ten, else the seven that are
/// not binary-only).
fn run_estimators(symbols: &[u8], binary: bool) -> Vec<(Estimator, Option<f64>)> {
    let (t_tuple, lrs) = t_tuple_lrs::t_tuple_and_lrs(symbols);
    Estimator::ALL
        .iter()
        .filter(|e| binary || !e.binary_only())
        .map(|&e| {
            let value = match e {
                Estimator::Mcv => most_common_value(symbols),
                Estimator::Collision => collision(symbols),
                Estimator::Markov => markov(symbols),
                Estimator::Compression => compression(symbols),
                Estimator::TTuple => t_tuple,
                Estimator::Lrs => lrs,
                Estimator::MultiMcw => multi_mcw_prediction(symbols),
                Estimator::Lag => lag_prediction(symbols),
                Estimator::MultiMmc => multi_mmc_prediction(symbols),
                Estimator::Lz78y => lz78y_prediction(symbols),
            };
            (e, value)
        })
        .collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "tests_props.rs"]
mod tests_props;

#[cfg(test)]
#[path = "nist_vectors.rs"]
mod nist_vectors;
