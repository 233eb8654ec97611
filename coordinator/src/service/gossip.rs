//! Gossip intake: heartbeats update the peer table; contributions are checked, opened and credited.

use super::{Ctx, State, now_ms};
use crate::intake::Rejection;
use crate::peers::Quarantine;
use libp2p::PeerId;
use peer::node::{CONTRIBUTIONS_TOPIC, GossipVerdict, STATUS_TOPIC};
use protocols::entropy::{BLOCK_BYTES, DebiasedBlock, SourceClaim};
use protocols::wire::{Contribution, SignedEnvelope, StatusHeartbeat};

/// Gossip envelopes larger than this are refused before decoding.
const MAX_GOSSIP: usize = 16 * 1024;

pub(super) fn on_gossip(
    ctx: &Ctx,
    state: &mut State,
    topic: &str,
    author: Option<&PeerId>,
    data: &[u8],
) -> GossipVerdict {
    let Some(author) = author.and_then(peer::identity::node_id) else {
        return GossipVerdict::Reject;
    };
    let envelope = match SignedEnvelope::from_bytes(data, MAX_GOSSIP) {
        Ok(e) => e,
        Err(e) => {
            tracing::info!(node = %author.short(), error = %e, "malformed gossip refused");
            return GossipVerdict::Reject;
        }
    };
    match topic {
        STATUS_TOPIC => match envelope.open::<StatusHeartbeat>(&author) {
            Ok(beat) => {
                let Some(p) = state.peers.get_mut(&author) else {
                    return GossipVerdict::Accept;
                };
                if beat.region != p.region || beat.operator != p.operator {
                    tracing::debug!(node = %author.short(), "heartbeat labels differ from enrolment; enrolment wins");
                }
                if p.heartbeat.as_ref().is_none_or(|h| beat.seq > h.seq) {
                    p.heartbeat = Some(beat);
                    p.heartbeat_at_ms = Some(now_ms());
                }
                GossipVerdict::Accept
            }
            Err(e) => {
                tracing::info!(node = %author.short(), error = %e, "heartbeat refused");
                GossipVerdict::Reject
            }
        },
        CONTRIBUTIONS_TOPIC => match envelope.open::<Contribution>(&author) {
            Ok(c) => {
                contribution(ctx, state, author, c);
                GossipVerdict::Accept
            }
            Err(e) => {
                tracing::info!(node = %author.short(), error = %e, "contribution envelope refused");
                GossipVerdict::Reject
            }
        },
        _ => GossipVerdict::Ignore,
    }
}

/// Checks sender (enrolled, attested, in sequence, fresh), opens, then hands the block to the intake.
fn contribution(ctx: &Ctx, state: &mut State, author: protocols::ids::NodeId, c: Contribution) {
    let now = now_ms();
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let max_age = (ctx.config.contribution_max_age_s * 1000.0) as u64;
    let Some(p) = state.peers.get_mut(&author) else {
        tracing::debug!(node = %author.short(), "contribution from an unenrolled node dropped");
        return;
    };
    if !p.trusted(now, validity) {
        p.note_refusal("untrusted");
        tracing::debug!(node = %author.short(), "contribution from an unattested or quarantined peer dropped");
        return;
    }
    if p.last_seq.is_some_and(|last| c.seq <= last) {
        p.note_refusal("sequence");
        tracing::info!(node = %author.short(), seq = c.seq, "replayed or reordered contribution refused");
        return;
    }
    if now.saturating_sub(c.sent_at_ms) > max_age || c.sent_at_ms > now.saturating_add(max_age) {
        p.note_refusal("stale");
        tracing::info!(node = %author.short(), "stale contribution refused");
        return;
    }
    let body = match peer::contribution::open(&ctx.noise_static, &author, c.seq, &c.sealed) {
        Ok(b) => b,
        Err(e) => {
            p.note_refusal("unopenable");
            tracing::info!(node = %author.short(), error = %e, "contribution does not open");
            return;
        }
    };
    p.last_seq = Some(c.seq);
    let Ok(bytes) = <[u8; BLOCK_BYTES]>::try_from(body.bits.as_slice()) else {
        p.note_refusal("size");
        tracing::info!(node = %author.short(), len = body.bits.len(), "contribution of the wrong size refused");
        return;
    };
    let claimed = body
        .sources
        .first()
        .map(|s| f64::from(s.min_entropy_millibits.min(1000)) / 1000.0)
        .unwrap_or(0.0);
    let claim = SourceClaim {
        debiased_bits: (BLOCK_BYTES * 8) as u64,
        claimed_min_entropy_per_bit: claimed,
        measured_min_entropy_per_bit: None,
    };
    let source = body
        .sources
        .first()
        .map(|s| source_index(&s.source))
        .unwrap_or(0);
    match state.intake.take(
        &author,
        source,
        &DebiasedBlock::from_bytes(bytes),
        &claim,
        now,
    ) {
        Ok(credit) => {
            p.credited_bits = p.credited_bits.saturating_add(credit);
            tracing::debug!(node = %author.short(), credit, "contribution credited");
        }
        Err(Rejection::Fips(tests)) => {
            p.note_refusal("fips");
            tracing::info!(node = %author.short(), ?tests, "contribution failed the FIPS battery")
        }
        Err(Rejection::Replay) => {
            p.note_refusal("replay");
            tracing::info!(node = %author.short(), "replayed entropy refused")
        }
        Err(Rejection::Clone) => {
            p.note_refusal("clone");
            tracing::warn!(node = %author.short(), "cloned entropy: peer quarantined");
            p.quarantine = Some(Quarantine::ClonedEntropy);
        }
    }
}

/// A stable small number per source name, so each source of a peer feeds its own pool cursor.
fn source_index(name: &str) -> u32 {
    name.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 64
}
