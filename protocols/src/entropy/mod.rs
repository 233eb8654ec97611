//! Entropy harvesting: health tests, estimation, debiasing, FIPS checks, pooling, crediting and clone detection.
//!
//! Pure code: no I/O, no clock reads, no global RNG. Time (`now_ms: u64`) and
//! randomness (OS random bytes, sketch keys) are always parameters.
//!
//! Typical flow for one peer source: raw samples → [`health::HealthTester`]
//! (only `Healthy` samples go on) → [`debias::Debiaser`] → 20,000-bit
//! [`debias::DebiasedBlock`] → [`fips::fips_140_2`] and
//! [`clones::CloneDetector::observe`] → [`credit::PeerCreditLedger::credit`] →
//! [`accumulator::Accumulator::add_block`] → `maybe_reseed(now_ms)` →
//! `generate(os_random, out)`.

pub mod accumulator;
pub mod assess;
pub mod clones;
pub mod conditioning;
pub mod credit;
pub mod debias;
pub mod estimate;
pub mod fips;
pub mod health;

/// Opaque identity of an entropy contributor (e.g. a node's public key bytes).
pub type ContributorId = [u8; 32];

pub use accumulator::{
    Accumulator, AccumulatorConfig, AccumulatorError, ContributorCredit, PoolStats, Receipt,
};
pub use clones::{CloneCheck, CloneDetector, CloneError, CloneMatch, MatchKind};
pub use conditioning::{
    Accounting, ConditionedBlock, Conditioner, ConditioningKey, SourceModel,
    credit_for as credit_for_accounting,
};
pub use credit::{CreditPolicy, PeerCreditLedger, SourceClaim, credit_for};
pub use debias::{BLOCK_BITS, BLOCK_BYTES, DebiasedBlock, Debiaser, VonNeumann};
pub use estimate::{SlidingMcv, mcv_min_entropy};
pub use fips::{FipsReport, FipsTest, fips_140_2};
pub use health::{HealthFailure, HealthTester, HealthVerdict, SourceSpec};
