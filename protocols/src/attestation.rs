//! Attestation: the coordinator's nonce challenge, a peer's signed evidence, and its check.

use crate::ids::NodeId;
use crate::wire::{SignedEnvelope, SignedPayload, Versioned, WireError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use thiserror::Error;

pub mod feedback;
pub mod share_key;
pub use feedback::SourceFeedback;

/// A fresh nonce the coordinator sends to one peer, with what it thinks of the peer's sources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Challenge {
    /// Wire version.
    pub v: u16,
    /// Random nonce to be echoed.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 32],
    /// When the challenge was issued, unix milliseconds.
    pub issued_at_ms: u64,
    /// The peer's sources as the coordinator sees them (bounded by [`feedback::bounded`]; absent
    /// from older coordinators). Not part of what the evidence answers: that binds the nonce.
    #[serde(default)]
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub feedback: Vec<SourceFeedback>,
}

impl Versioned for Challenge {
    fn version(&self) -> u16 {
        self.v
    }
}

impl Challenge {
    /// Bounds the feedback as a peer would ([`feedback::bounded`]), then drops entries from the
    /// end until the encoded challenge is at most `max_bytes` (the peer's request limit), so a
    /// challenge is never refused for its size. Returns how many entries were dropped.
    pub fn fit_feedback(&mut self, max_bytes: usize) -> usize {
        let before = self.feedback.len();
        self.feedback = feedback::bounded(std::mem::take(&mut self.feedback));
        while !self.feedback.is_empty() && crate::wire::encode(self).len() > max_bytes {
            self.feedback.pop();
        }
        before - self.feedback.len()
    }
}

/// Entropy health counters a peer reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HealthCounters {
    /// Raw samples examined since start.
    pub samples: u64,
    /// Repetition count test failures.
    pub rct_failures: u32,
    /// Adaptive proportion test failures.
    pub apt_failures: u32,
    /// Sources producing.
    pub sources_active: u16,
    /// Sources cut off by a health test.
    pub sources_cut_off: u16,
}

/// What a peer measures about itself, signed by its identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Evidence {
    /// Wire version.
    pub v: u16,
    /// The attesting node.
    pub node: NodeId,
    /// The challenge's nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 32],
    /// SHA-256 of the running binary (`/proc/self/exe`).
    #[serde(with = "serde_bytes")]
    pub binary_sha256: [u8; 32],
    /// SHA-256 of the node's configuration file.
    #[serde(with = "serde_bytes")]
    pub config_digest: [u8; 32],
    /// Kernel boot id.
    pub boot_id: String,
    /// Process uptime, seconds.
    pub uptime_s: u64,
    /// Entropy health counters.
    pub health: HealthCounters,
    /// When the evidence was made, unix milliseconds.
    pub at_ms: u64,
    /// The device's share key statement ([`share_key`]), signed by `node`; absent from devices
    /// built before holder share keys, which are then never chosen to hold a share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_key: Option<SignedEnvelope>,
}

impl Evidence {
    /// The share key the evidence states, checked ([`share_key::verify`]); `None` when it
    /// states none.
    pub fn share_key(&self) -> Result<Option<crate::share_box::BoxPublic>, AttestationError> {
        self.share_key
            .as_ref()
            .map(|s| share_key::verify(s, &self.node).map_err(AttestationError::ShareKey))
            .transpose()
    }
}

impl Versioned for Evidence {
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for Evidence {
    const CONTEXT: &'static [u8] = b"entroshard/v1/attestation-evidence";
    const MAX_BYTES: usize = 4 * 1024;
}

/// The coordinator's reference values and time limits.
#[derive(Clone, Debug, Default)]
pub struct AttestationPolicy {
    /// SHA-256 digests of binaries allowed to hold shares.
    pub allowed_binaries: BTreeSet<[u8; 32]>,
    /// How long after the challenge an answer is accepted.
    pub answer_window_ms: u64,
    /// Tolerated clock difference.
    pub max_skew_ms: u64,
}

/// Why evidence was rejected; a rejected peer is quarantined.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationError {
    /// The envelope did not verify or decode.
    #[error("evidence envelope refused: {0}")]
    Envelope(WireError),
    /// Evidence about another node.
    #[error("evidence names another node")]
    WrongNode,
    /// The nonce is not the one challenged.
    #[error("evidence answers another challenge")]
    NonceMismatch,
    /// The answer came too late.
    #[error("evidence arrived {late_ms} ms after the answer window")]
    Stale {
        /// How late.
        late_ms: u64,
    },
    /// The evidence claims a time before the challenge or after now (beyond skew).
    #[error("evidence time is outside the challenge window")]
    TimeOutOfWindow,
    /// The running binary is not on the allowlist.
    #[error("binary {sha256_hex} is not on the allowlist")]
    UnknownBinary {
        /// Hex digest measured.
        sha256_hex: String,
    },
    /// The evidence carries a share key statement that does not check.
    #[error("{0}")]
    ShareKey(share_key::ShareKeyError),
}

/// Checks evidence from `expected` against the challenge it answers, the allowlist and the clock.
pub fn check_evidence(
    envelope: &SignedEnvelope,
    expected: &NodeId,
    challenge: &Challenge,
    policy: &AttestationPolicy,
    now_ms: u64,
) -> Result<Evidence, AttestationError> {
    let evidence: Evidence = envelope
        .open(expected)
        .map_err(AttestationError::Envelope)?;
    if &evidence.node != expected {
        return Err(AttestationError::WrongNode);
    }
    if evidence.nonce != challenge.nonce {
        return Err(AttestationError::NonceMismatch);
    }
    let deadline = challenge
        .issued_at_ms
        .saturating_add(policy.answer_window_ms);
    if now_ms > deadline {
        return Err(AttestationError::Stale {
            late_ms: now_ms - deadline,
        });
    }
    let earliest = challenge.issued_at_ms.saturating_sub(policy.max_skew_ms);
    let latest = now_ms.saturating_add(policy.max_skew_ms);
    if evidence.at_ms < earliest || evidence.at_ms > latest {
        return Err(AttestationError::TimeOutOfWindow);
    }
    if !policy.allowed_binaries.contains(&evidence.binary_sha256) {
        return Err(AttestationError::UnknownBinary {
            sha256_hex: crate::ids::hex8(&evidence.binary_sha256),
        });
    }
    evidence.share_key()?;
    Ok(evidence)
}

/// Whether a peer's last good attestation still counts at `now_ms`.
pub fn attestation_is_current(last_ok_ms: Option<u64>, now_ms: u64, validity_ms: u64) -> bool {
    last_ok_ms.is_some_and(|t| {
        now_ms.saturating_sub(t) <= validity_ms && t <= now_ms.saturating_add(validity_ms)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;
    use crate::wire::WIRE_VERSION;

    fn setup() -> (NodeKey, Challenge, AttestationPolicy, Evidence) {
        let peer = NodeKey::from_secret_bytes(&[4; 32]);
        let challenge = Challenge {
            v: WIRE_VERSION,
            nonce: [6; 32],
            issued_at_ms: 10_000,
            feedback: Vec::new(),
        };
        let policy = AttestationPolicy {
            allowed_binaries: [[0xaa; 32]].into_iter().collect(),
            answer_window_ms: 5_000,
            max_skew_ms: 1_000,
        };
        let evidence = Evidence {
            v: WIRE_VERSION,
            node: peer.node_id(),
            nonce: [6; 32],
            binary_sha256: [0xaa; 32],
            config_digest: [1; 32],
            boot_id: "b00t".into(),
            uptime_s: 30,
            health: HealthCounters::default(),
            at_ms: 10_100,
            share_key: None,
        };
        (peer, challenge, policy, evidence)
    }

    #[test]
    fn fresh_evidence_from_an_allowed_binary_passes() {
        let (peer, ch, pol, ev) = setup();
        let env = SignedEnvelope::seal(&peer, &ev);
        assert_eq!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap(),
            ev
        );
    }

    #[test]
    fn evidence_for_another_nonce_is_refused() {
        let (peer, ch, pol, mut ev) = setup();
        ev.nonce = [7; 32];
        let env = SignedEnvelope::seal(&peer, &ev);
        assert_eq!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap_err(),
            AttestationError::NonceMismatch
        );
    }

    #[test]
    fn late_answer_is_stale() {
        let (peer, ch, pol, ev) = setup();
        let env = SignedEnvelope::seal(&peer, &ev);
        assert_eq!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 15_001).unwrap_err(),
            AttestationError::Stale { late_ms: 1 }
        );
    }

    #[test]
    fn binary_off_the_allowlist_is_refused() {
        let (peer, ch, pol, mut ev) = setup();
        ev.binary_sha256 = [0xbb; 32];
        let env = SignedEnvelope::seal(&peer, &ev);
        assert!(matches!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap_err(),
            AttestationError::UnknownBinary { .. }
        ));
    }

    #[test]
    fn evidence_signed_by_another_key_or_about_another_node_is_refused() {
        let (peer, ch, pol, ev) = setup();
        let other = NodeKey::from_secret_bytes(&[5; 32]);
        let env = SignedEnvelope::seal(&other, &ev);
        assert!(matches!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap_err(),
            AttestationError::Envelope(WireError::UnexpectedSigner)
        ));
        let env = SignedEnvelope::seal(&other, &ev);
        assert_eq!(
            check_evidence(&env, &other.node_id(), &ch, &pol, 10_200).unwrap_err(),
            AttestationError::WrongNode
        );
    }

    #[test]
    fn evidence_dated_before_the_challenge_is_out_of_window() {
        let (peer, ch, pol, mut ev) = setup();
        ev.at_ms = 8_000;
        let env = SignedEnvelope::seal(&peer, &ev);
        assert_eq!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap_err(),
            AttestationError::TimeOutOfWindow
        );
    }

    #[test]
    fn evidence_still_checks_against_a_challenge_that_carried_feedback() {
        let (peer, mut ch, pol, ev) = setup();
        ch.feedback = vec![SourceFeedback {
            source: "jitter".into(),
            standing: "audited".into(),
            audit_h_millibits: Some(1_800),
            credited_bits: 4_096,
            refusals: vec![("audit_pending".into(), 3)],
        }];
        let env = SignedEnvelope::seal(&peer, &ev);
        assert_eq!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap(),
            ev
        );
    }

    #[test]
    fn a_challenge_from_an_older_coordinator_decodes_with_no_feedback() {
        #[derive(Serialize)]
        struct OldChallenge {
            v: u16,
            #[serde(with = "serde_bytes")]
            nonce: [u8; 32],
            issued_at_ms: u64,
        }
        let old = OldChallenge {
            v: WIRE_VERSION,
            nonce: [9; 32],
            issued_at_ms: 5,
        };
        let ch: Challenge = crate::wire::decode(&crate::wire::encode(&old), 1024).unwrap();
        assert_eq!(ch.nonce, [9; 32]);
        assert!(ch.feedback.is_empty());
    }

    #[test]
    fn feedback_is_trimmed_from_the_end_until_the_challenge_fits_the_limit() {
        let (_, mut ch, _, _) = setup();
        ch.feedback = (0..40)
            .map(|i| SourceFeedback {
                source: format!("{i:0>128}"),
                standing: "audit_failed".into(),
                audit_h_millibits: Some(u32::MAX),
                credited_bits: u64::MAX,
                refusals: (0..20).map(|r| (format!("{r:0>32}"), u64::MAX)).collect(),
            })
            .collect();
        let dropped = ch.fit_feedback(16 * 1024);
        assert!(crate::wire::encode(&ch).len() <= 16 * 1024);
        assert_eq!(dropped, 40 - ch.feedback.len());
        assert!(ch.feedback.len() >= 8, "{} sources fit", ch.feedback.len());
        assert_eq!(ch.feedback[0].source, format!("{:0>128}", 0));
        assert!(ch.feedback.iter().all(|f| f.refusals.len() == 16));
        // A challenge with little feedback is left as it is.
        let small = ch.feedback[..2].to_vec();
        ch.feedback = small.clone();
        assert_eq!(ch.fit_feedback(16 * 1024), 0);
        assert_eq!(ch.feedback, small);
    }

    #[test]
    fn attestation_expires_after_its_validity() {
        assert!(attestation_is_current(Some(1_000), 1_500, 500));
        assert!(!attestation_is_current(Some(1_000), 1_501, 500));
        assert!(!attestation_is_current(None, 0, 500));
    }

    #[test]
    fn evidence_with_the_nodes_share_key_passes_and_states_it() {
        let (peer, ch, pol, mut ev) = setup();
        let pk = crate::share_box::BoxSecret::from_bytes(&[8; 32])
            .unwrap()
            .public();
        ev.share_key = Some(share_key::sign(&peer, pk));
        let env = SignedEnvelope::seal(&peer, &ev);
        let checked = check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap();
        assert_eq!(checked.share_key().unwrap(), Some(pk));
    }

    #[test]
    fn evidence_with_a_share_key_signed_by_another_node_is_refused() {
        let (peer, ch, pol, mut ev) = setup();
        let other = NodeKey::from_secret_bytes(&[9; 32]);
        let pk = crate::share_box::BoxSecret::from_bytes(&[8; 32])
            .unwrap()
            .public();
        ev.share_key = Some(share_key::sign(&other, pk));
        let env = SignedEnvelope::seal(&peer, &ev);
        assert!(matches!(
            check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap_err(),
            AttestationError::ShareKey(_)
        ));
    }

    #[test]
    fn evidence_without_the_share_key_field_decodes_as_stating_none() {
        let (peer, ch, pol, ev) = setup();
        let env = SignedEnvelope::seal(&peer, &ev);
        assert!(!env.payload.windows(9).any(|w| w == b"share_key"));
        let checked = check_evidence(&env, &peer.node_id(), &ch, &pol, 10_200).unwrap();
        assert_eq!(checked.share_key().unwrap(), None);
    }
}
