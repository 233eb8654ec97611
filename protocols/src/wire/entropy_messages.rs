//! Entropy messages: sealed contributions with their accounting, and the entropy audit.

use super::codec::Versioned;
use super::envelope::SignedPayload;
use serde::{Deserialize, Serialize};

/// Gossip: a peer's sealed entropy contribution. The envelope signer is the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Contribution {
    /// Wire version.
    pub v: u16,
    /// Sender's per-boot-stable sequence number; replays and reorders are refused.
    pub seq: u64,
    /// Send time, unix milliseconds.
    pub sent_at_ms: u64,
    /// One-way Noise message carrying an encoded [`ContributionBody`] for the coordinator.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    /// The author's membership certificate (see [`super::StatusHeartbeat::membership`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<super::SignedEnvelope>,
}

impl SignedPayload for Contribution {
    const CONTEXT: &'static [u8] = b"entroshard/v1/contribution";
    const MAX_BYTES: usize = 8 * 1024;
}

/// The plaintext inside a contribution: one source's conditioned output and its accounting
/// (decision 0039). The coordinator credits from the accounting, capped by its own audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ContributionBody {
    /// Wire version.
    pub v: u16,
    /// HMAC-SHA-256 outputs, 32 bytes each, concatenated.
    #[serde(with = "serde_bytes")]
    pub conditioned: Vec<u8>,
    /// How they were made.
    pub accounting: SourceAccounting,
}

/// How a source's conditioned output was made: what the coordinator credits from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SourceAccounting {
    /// Source name (e.g. `jitter`, `thermal:zone0`).
    pub source: String,
    /// Sample width in bits (1..=8).
    pub bits_per_sample: u8,
    /// Raw samples conditioned into the output.
    pub raw_samples: u64,
    /// The device's assessed min-entropy per sample, thousandths of a bit.
    pub h_millibits: u32,
    /// The SP 800-90B §6.3 estimator that set it (or `declared`).
    pub estimator: String,
}

/// Coordinator → device: send a window of fresh raw samples of one source (an entropy audit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuditRequest {
    /// Wire version.
    pub v: u16,
    /// The source, as named in its contributions.
    pub source: String,
    /// Samples wanted (at most [`MAX_AUDIT_SAMPLES`]).
    pub samples: u32,
}

/// Most raw samples an audit may ask for or carry.
pub const MAX_AUDIT_SAMPLES: u32 = 100_000;

/// Device → coordinator: fresh raw samples of one source, never used for a contribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuditWindow {
    /// Wire version.
    pub v: u16,
    /// The source.
    pub source: String,
    /// Sample width in bits (1..=8); only the low bits of each sample count.
    pub bits_per_sample: u8,
    /// The samples, one per byte.
    #[serde(with = "serde_bytes")]
    pub samples: Vec<u8>,
}

crate::versioned!(Contribution, ContributionBody, AuditRequest, AuditWindow);
