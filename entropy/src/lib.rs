//! Entropy harvesting: SP 800-90B assessment and health tests, conditioning and accounting,
//! pooling, crediting and clone detection.
//!
//! Pure code: no I/O, no clock reads, no global RNG. Time (`now_ms: u64`) and
//! randomness (OS random bytes, sketch and conditioning keys) are always parameters.
//!
//! The flow (decision 0040): a source's raw samples are assessed once ([`assess::assess`], the
//! ten §6.3 estimators) → [`health::HealthTester`] at that H with α from
//! [`health::alpha_log2_for_rate`] (only `Healthy` samples go on) →
//! [`conditioning::Conditioner`] (HMAC-SHA-256, ≥ 320 assessed bits per output) → a
//! [`conditioning::ConditionedBlock`] with its [`conditioning::Accounting`]; at the coordinator
//! [`conditioning::credit_for`] (capped by its own audit) → [`clones::CloneDetector`] →
//! [`credit::PeerCreditLedger`] → [`accumulator::Accumulator::add_event`] →
//! `maybe_reseed(now_ms)` → `generate(os_random, out)`. Von Neumann ([`debias`]) and the FIPS
//! 140-2 battery ([`fips`]) no longer feed contributions; they remain for the benchmarks.
//!
//! A crate of its own, `protocols::entropy` to its users: test builds optimise it (the
//! estimators, health tests and clone sketches run in every test daemon) and leave the rest of
//! `protocols` unoptimised (decision 0071).

#![warn(missing_docs)]

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
