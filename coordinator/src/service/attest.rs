//! The attestation loop: nonce challenges (carrying what the coordinator thinks of the peer's sources), evidence checks, quarantine.

use super::{Ctx, Internal, State, now_ms, os_random};
use crate::intake::feedback::feedback_of;
use crate::peers::Quarantine;
use peer::node::Protocol;
use protocols::attestation::{AttestationPolicy, Challenge, check_evidence};
use protocols::ids::NodeId;
use protocols::wire::{self, Refusal, Reply, SignedEnvelope, WIRE_VERSION};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The attestation interval is cut into this many slices; each peer is challenged in its own
/// slice, so the answers of a large fleet arrive spread over the interval instead of at once.
pub(super) const SLICES: u64 = 10;

/// The slice `node` is challenged in (node ids are public keys: evenly spread).
fn slice_of(node: &NodeId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&node.0[..8]);
    u64::from_le_bytes(first) % SLICES
}

/// Challenges the enrolled peers heard from whose slice is `tick % SLICES` (called every
/// `attestation_interval_s / SLICES`, so each peer once per interval).
pub(super) fn challenge_slice(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    tick: u64,
) {
    let slice = tick % SLICES;
    let nodes: Vec<NodeId> = state
        .peers
        .iter()
        .filter(|(n, p)| p.heartbeat_at_ms.is_some() && slice_of(n) == slice)
        .map(|(n, _)| *n)
        .collect();
    for node in nodes {
        challenge(ctx, state, internal, node);
    }
}

/// On a new connection: challenges the peer at once unless it is attested and trusted now (a
/// device back after a short outage keeps its attestation until its slice comes round; a
/// region coming back does not send thousands of challenges at once).
pub(super) fn challenge_if_untrusted(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    node: NodeId,
) {
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let trusted = state
        .peers
        .get(&node)
        .is_some_and(|p| p.trusted(now_ms(), validity));
    if !trusted && !state.challenges.contains_key(&node) {
        challenge(ctx, state, internal, node);
    }
}

/// Sends one challenge; the answer comes back as [`Internal::Attested`].
pub(super) fn challenge(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    node: NodeId,
) {
    let Some(peer_id) = peer::identity::peer_id(&node) else {
        return;
    };
    let device_refusals = state.peers.get(&node).map(|p| &p.refusals);
    let mut with_feedback = Challenge {
        v: WIRE_VERSION,
        nonce: os_random(),
        issued_at_ms: now_ms(),
        feedback: feedback_of(
            &state.sources,
            &node,
            device_refusals.unwrap_or(&BTreeMap::new()),
        ),
    };
    // Never larger than the peer's request limit: a refused challenge would read as bad evidence.
    let dropped = with_feedback.fit_feedback(Protocol::Attest.limits().0);
    if dropped > 0 {
        tracing::debug!(node = %node.short(), dropped, "source feedback trimmed to fit the challenge");
    }
    let bytes = wire::encode(&with_feedback);
    // The answer is judged on the nonce and time only; the feedback is not kept.
    let challenge = Challenge {
        feedback: Vec::new(),
        ..with_feedback
    };
    state.challenges.insert(node, challenge.clone());
    if let Some(p) = state.peers.get_mut(&node) {
        p.answered.1 = p.answered.1.saturating_add(1);
    }
    let addrs = state
        .peers
        .get(&node)
        .map(|p| p.addrs())
        .unwrap_or_default();
    let (ctx, internal) = (ctx.clone(), internal.clone());
    let timeout = std::time::Duration::from_secs_f64(ctx.config.attestation_answer_s);
    tokio::spawn(async move {
        let request = ctx.node.request(Protocol::Attest, peer_id, addrs, bytes);
        let reply = match tokio::time::timeout(timeout, request).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in time".into()),
        };
        let _ = internal
            .send(Internal::Attested {
                node,
                challenge,
                reply,
                received_at_ms: now_ms(),
            })
            .await;
    });
}

/// Checks an answer; a good one attests the peer (and lifts a quarantine for missing answers or
/// bad evidence), anything else quarantines it.
pub(super) fn judge(
    ctx: &Ctx,
    state: &mut State,
    node: NodeId,
    challenge: Challenge,
    reply: Result<Vec<u8>, String>,
    received_at_ms: u64,
) {
    if state
        .challenges
        .get(&node)
        .is_none_or(|c| c.nonce != challenge.nonce)
    {
        return; // superseded by a newer challenge
    }
    state.challenges.remove(&node);
    let policy = AttestationPolicy {
        allowed_binaries: state.allowlist.clone(),
        answer_window_ms: (ctx.config.attestation_answer_s * 1000.0) as u64,
        max_skew_ms: 60_000,
    };
    // A challenge that never arrived or was never answered is a missing answer; anything the
    // peer did answer is judged as evidence.
    let verdict = match reply {
        Err(transport) => Err((Quarantine::NoAnswer, "no_answer", transport)),
        Ok(bytes) => judge_answer(&bytes, &node, &challenge, &policy, received_at_ms),
    };
    let Some(p) = state.peers.get_mut(&node) else {
        return;
    };
    match verdict {
        Ok(evidence) => {
            ctx.metrics.attestations.inc("good");
            p.answered.0 = p.answered.0.saturating_add(1);
            p.attested_at_ms = Some(now_ms());
            if matches!(
                p.quarantine,
                Some(Quarantine::NoAnswer | Quarantine::BadEvidence(_))
            ) {
                tracing::info!(node = %node.short(), "attestation good again: quarantine lifted");
                p.quarantine = None;
            }
            tracing::debug!(node = %node.short(), cut_off = evidence.health.sources_cut_off, "peer attested");
        }
        Err((quarantine, label, reason)) => {
            tracing::warn!(node = %node.short(), %reason, "attestation failed: peer quarantined");
            ctx.metrics.attestations.inc(label);
            if !p.quarantine.as_ref().is_some_and(Quarantine::is_sticky) {
                // Counted when a peer enters quarantine or its reason changes (a device that
                // stopped answering, then answers with bad evidence, is counted for both).
                let same_reason = matches!(
                    (&p.quarantine, &quarantine),
                    (Some(Quarantine::NoAnswer), Quarantine::NoAnswer)
                        | (Some(Quarantine::BadEvidence(_)), Quarantine::BadEvidence(_))
                );
                if !same_reason {
                    ctx.metrics.quarantines.inc(label);
                }
                p.quarantine = Some(quarantine);
            }
        }
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
) -> Result<protocols::attestation::Evidence, (Quarantine, &'static str, String)> {
    let bad = |e: String| (Quarantine::BadEvidence(e.clone()), "bad_evidence", e);
    let reply: Reply<SignedEnvelope> =
        wire::decode(bytes, Protocol::Attest.limits().1).map_err(|e| bad(e.to_string()))?;
    let envelope = reply.result.map_err(|r| match r {
        // Too busy to look at the challenge (its busy reply): it has not answered yet either.
        Refusal::RateLimited => (Quarantine::NoAnswer, "no_answer", "peer busy".to_string()),
        r => bad(format!("peer refused: {r}")),
    })?;
    check_evidence(&envelope, node, challenge, policy, received_at_ms)
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{SLICES, slice_of};
    use protocols::ids::NodeId;

    #[test]
    fn every_slice_gets_a_share_of_the_fleet() {
        let mut counts = [0u32; SLICES as usize];
        for i in 0..1000u32 {
            let mut secret = [7u8; 32];
            secret[..4].copy_from_slice(&i.to_le_bytes());
            let node: NodeId = protocols::identity::NodeKey::from_secret_bytes(&secret).node_id();
            counts[slice_of(&node) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (50..=150).contains(c)), "{counts:?}");
    }
}
