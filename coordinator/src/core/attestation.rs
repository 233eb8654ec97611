//! Attestation decided on virtual time: whom to challenge (each peer in its own slice of the
//! interval, and on connect only a peer not trusted now), the challenge's nonce and feedback,
//! and the verdict on each answer — attested (lifting a quarantine for a missing answer or bad
//! evidence), or quarantined for no answer or bad evidence. The nonce comes in as a value; the
//! driver sends the challenge and hands back the answer's bytes with when they arrived.

use crate::core::errors::NoAnswer;
use crate::peers::{PeerTable, Quarantine};
use protocols::attestation::{
    AttestationPolicy, Challenge, Evidence, SourceFeedback, check_evidence,
};
use protocols::ids::NodeId;
use protocols::share_box::BoxPublic;
use protocols::wire::{self, Refusal, Reply, SignedEnvelope, WIRE_VERSION};
use std::collections::{BTreeSet, HashMap};

/// The attestation interval is cut into this many slices; each peer is challenged in its own
/// slice, so the answers of a large fleet arrive spread over the interval instead of at once.
pub const SLICES: u64 = 10;

/// Tolerated difference between a peer's clock and the coordinator's.
const MAX_SKEW_MS: u64 = 60_000;

/// The slice `node` is challenged in (node ids are public keys: evenly spread).
fn slice_of(node: &NodeId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&node.0[..8]);
    u64::from_le_bytes(first) % SLICES
}

/// What a judged answer came to, for the driver's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// `good`, `no_answer` or `bad_evidence`.
    pub label: &'static str,
    /// The peer entered quarantine, or its reason changed (count it as a quarantine).
    pub newly_quarantined: bool,
    /// A share key stated for the first time: the driver records it with the enrolment
    /// ([`crate::db::CoordinatorDb::record_share_key`]); the peer table has it already.
    pub new_share_key: Option<BoxPublic>,
}

/// The challenges out and the rules their answers are judged by.
#[derive(Debug)]
pub struct Attestations {
    /// How long after its challenge an answer counts.
    answer_window_ms: u64,
    /// How long a good attestation keeps a peer trusted.
    validity_ms: u64,
    /// The latest challenge to each peer, until its answer is judged.
    out: HashMap<NodeId, Challenge>,
}

impl Attestations {
    /// Answers count within `answer_window_ms`; an attestation holds for `validity_ms`.
    pub fn new(answer_window_ms: u64, validity_ms: u64) -> Self {
        Self {
            answer_window_ms,
            validity_ms,
            out: HashMap::new(),
        }
    }

    /// The enrolled peers heard from whose slice is `tick % SLICES` (ticks come every
    /// `attestation_interval / SLICES`, so each peer is challenged once per interval).
    pub fn slice_due(&self, peers: &PeerTable, tick: u64) -> Vec<NodeId> {
        let slice = tick % SLICES;
        peers
            .iter()
            .filter(|(n, p)| p.heartbeat_at_ms.is_some() && slice_of(n) == slice)
            .map(|(n, _)| *n)
            .collect()
    }

    /// On a new connection: challenge at once unless the peer is attested and trusted now or a
    /// challenge is out (a device back after a short outage keeps its attestation until its
    /// slice comes round; a region coming back does not send thousands of challenges at once).
    pub fn wanted_on_connect(&self, peers: &PeerTable, node: &NodeId, now_ms: u64) -> bool {
        let trusted = peers
            .get(node)
            .is_some_and(|p| p.trusted(now_ms, self.validity_ms));
        !trusted && !self.out.contains_key(node)
    }

    /// Issues a challenge to `node` with a fresh `nonce` at `now_ms`, carrying `feedback`
    /// trimmed to `max_bytes` encoded; replaces any challenge out to it. Returns the encoded
    /// challenge to send.
    pub fn issue(
        &mut self,
        peers: &mut PeerTable,
        node: NodeId,
        nonce: [u8; 32],
        now_ms: u64,
        feedback: Vec<SourceFeedback>,
        max_bytes: usize,
    ) -> Vec<u8> {
        let mut with_feedback = Challenge {
            v: WIRE_VERSION,
            nonce,
            issued_at_ms: now_ms,
            feedback,
        };
        // Never larger than the peer's request limit: a refused challenge reads as bad evidence.
        let dropped = with_feedback.fit_feedback(max_bytes);
        if dropped > 0 {
            tracing::debug!(node = %node.short(), dropped, "source feedback trimmed to fit the challenge");
        }
        let bytes = wire::encode(&with_feedback);
        // The answer is judged on the nonce and time only; the feedback is not kept.
        self.out.insert(
            node,
            Challenge {
                feedback: Vec::new(),
                ..with_feedback
            },
        );
        if let Some(p) = peers.get_mut(&node) {
            p.answered.1 = p.answered.1.saturating_add(1);
        }
        bytes
    }

    /// Judges the answer to the challenge with `nonce` sent to `node`: `reply` is the answer's
    /// bytes (at most `max_reply_bytes` are decoded) or why none came, `received_at_ms` when it
    /// arrived (the answer window is judged on it), `now_ms` the time of judging. `None` when
    /// the challenge was superseded by a newer one or the peer is no longer enrolled.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_answer(
        &mut self,
        peers: &mut PeerTable,
        allowed_binaries: &BTreeSet<[u8; 32]>,
        node: NodeId,
        nonce: [u8; 32],
        reply: Result<Vec<u8>, NoAnswer>,
        received_at_ms: u64,
        max_reply_bytes: usize,
        now_ms: u64,
    ) -> Option<Verdict> {
        if self.out.get(&node).is_none_or(|c| c.nonce != nonce) {
            return None; // superseded by a newer challenge
        }
        let challenge = self.out.remove(&node)?;
        let policy = AttestationPolicy {
            allowed_binaries: allowed_binaries.clone(),
            answer_window_ms: self.answer_window_ms,
            max_skew_ms: MAX_SKEW_MS,
        };
        // A challenge that never arrived or was never answered is a missing answer; anything the
        // peer did answer is judged as evidence.
        let verdict = match reply {
            Err(transport) => Err((Quarantine::NoAnswer, "no_answer", transport.to_string())),
            Ok(bytes) => judge_answer(
                &bytes,
                &node,
                &challenge,
                &policy,
                received_at_ms,
                max_reply_bytes,
            ),
        };
        let p = peers.get_mut(&node)?;
        let mut new_share_key = None;
        let verdict = verdict.and_then(|evidence| {
            // Checked with the evidence: a statement that does not verify failed it.
            let stated = evidence.share_key().ok().flatten();
            match (p.share_key, stated) {
                (Some(known), Some(stated)) if known != stated => Err((
                    Quarantine::BadEvidence(format!(
                        "share key changed from {} to {}: the shares it holds are boxed to the \
                         old one; remove and enrol the device again to accept a new key",
                        protocols::share_box::fingerprint(&known),
                        protocols::share_box::fingerprint(&stated)
                    )),
                    "bad_evidence",
                    "share key changed".to_string(),
                )),
                (None, Some(stated)) => {
                    new_share_key = Some(stated);
                    Ok(evidence)
                }
                _ => Ok(evidence),
            }
        });
        Some(match verdict {
            Ok(evidence) => {
                if let Some(key) = new_share_key {
                    tracing::info!(node = %node.short(), share_key = %protocols::share_box::fingerprint(&key), "share key recorded: the peer may hold shares");
                    p.share_key = Some(key);
                }
                p.answered.0 = p.answered.0.saturating_add(1);
                p.attested_at_ms = Some(now_ms);
                if matches!(
                    p.quarantine,
                    Some(Quarantine::NoAnswer | Quarantine::BadEvidence(_))
                ) {
                    tracing::info!(node = %node.short(), "attestation good again: quarantine lifted");
                    p.quarantine = None;
                }
                tracing::debug!(node = %node.short(), cut_off = evidence.health.sources_cut_off, "peer attested");
                Verdict {
                    label: "good",
                    newly_quarantined: false,
                    new_share_key,
                }
            }
            Err((quarantine, label, reason)) => {
                tracing::warn!(node = %node.short(), %reason, "attestation failed: peer quarantined");
                let mut newly_quarantined = false;
                if !p.quarantine.as_ref().is_some_and(Quarantine::is_sticky) {
                    // Counted when a peer enters quarantine or its reason changes (a device that
                    // stopped answering, then answers with bad evidence, is counted for both).
                    newly_quarantined = !matches!(
                        (&p.quarantine, &quarantine),
                        (Some(Quarantine::NoAnswer), Quarantine::NoAnswer)
                            | (Some(Quarantine::BadEvidence(_)), Quarantine::BadEvidence(_))
                    );
                    p.quarantine = Some(quarantine);
                }
                Verdict {
                    label,
                    newly_quarantined,
                    new_share_key: None,
                }
            }
        })
    }
}

/// Decodes and checks a peer's answer to `challenge`; on failure, the quarantine it earns, its
/// metric label and the reason.
fn judge_answer(
    bytes: &[u8],
    node: &NodeId,
    challenge: &Challenge,
    policy: &AttestationPolicy,
    received_at_ms: u64,
    max_reply_bytes: usize,
) -> Result<Evidence, (Quarantine, &'static str, String)> {
    let bad = |e: String| (Quarantine::BadEvidence(e.clone()), "bad_evidence", e);
    let reply: Reply<SignedEnvelope> =
        wire::decode(bytes, max_reply_bytes).map_err(|e| bad(e.to_string()))?;
    let envelope = reply.result.map_err(|r| match r {
        // Too busy to look at the challenge (its busy reply): it has not answered yet either.
        Refusal::RateLimited => (Quarantine::NoAnswer, "no_answer", "peer busy".to_string()),
        r => bad(format!("peer refused: {r}")),
    })?;
    check_evidence(&envelope, node, challenge, policy, received_at_ms)
        .map_err(|e| bad(e.to_string()))
}

/// A challenge to send.
#[derive(Debug)]
pub struct Outgoing {
    /// The peer.
    pub node: NodeId,
    /// Its libp2p id.
    pub peer: libp2p::PeerId,
    /// Its addresses.
    pub addrs: Vec<libp2p::Multiaddr>,
    /// The encoded challenge.
    pub bytes: Vec<u8>,
}

impl crate::core::state::State {
    /// Whether `node`, connected (or let out of quarantine) at `now_ms`, is to be challenged at
    /// once: it is enrolled, not trusted now and no challenge is out (see
    /// [`Attestations::wanted_on_connect`]).
    pub fn wanted_on_connect(&self, node: &NodeId, now_ms: u64) -> bool {
        self.peers.get(node).is_some()
            && (self.attestations).wanted_on_connect(&self.peers, node, now_ms)
    }

    /// A challenge to `node` with a fresh `nonce` at `now_ms`, carrying the feedback on its
    /// sources and refusals, at most `max_bytes` encoded; `None` if its id is no peer id.
    pub fn challenge(
        &mut self,
        node: NodeId,
        nonce: [u8; 32],
        now_ms: u64,
        max_bytes: usize,
    ) -> Option<Outgoing> {
        let peer = peer::identity::peer_id(&node)?;
        let no_refusals = std::collections::BTreeMap::new();
        let refusals = self.peers.get(&node).map_or(&no_refusals, |p| &p.refusals);
        let feedback = crate::intake::feedback::feedback_of(&self.sources, &node, refusals);
        let (peers, attestations) = (&mut self.peers, &mut self.attestations);
        let bytes = attestations.issue(peers, node, nonce, now_ms, feedback, max_bytes);
        let addrs = self.peers.get(&node).map(|p| p.addrs()).unwrap_or_default();
        Some(Outgoing {
            node,
            peer,
            addrs,
            bytes,
        })
    }

    /// Judges `node`'s answer to the challenge with `nonce` (see
    /// [`Attestations::handle_answer`]).
    pub fn judge_attestation(
        &mut self,
        node: NodeId,
        nonce: [u8; 32],
        reply: Result<Vec<u8>, NoAnswer>,
        received_at_ms: u64,
        max_reply_bytes: usize,
        now_ms: u64,
    ) -> Option<Verdict> {
        self.attestations.handle_answer(
            &mut self.peers,
            &self.allowlist,
            node,
            nonce,
            reply,
            received_at_ms,
            max_reply_bytes,
            now_ms,
        )
    }
}

#[cfg(test)]
#[path = "attestation_tests.rs"]
mod tests;
