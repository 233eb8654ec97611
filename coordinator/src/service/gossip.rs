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
        ctx.metrics.gossip_refused.inc("unsigned");
        return GossipVerdict::Reject;
    };
    let envelope = match SignedEnvelope::from_bytes(data, MAX_GOSSIP) {
        Ok(e) => e,
        Err(e) => {
            tracing::info!(node = %author.short(), error = %e, "malformed gossip refused");
            ctx.metrics.gossip_refused.inc("malformed");
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
                ctx.metrics.gossip_refused.inc("heartbeat");
                GossipVerdict::Reject
            }
        },
        CONTRIBUTIONS_TOPIC => match envelope.open::<Contribution>(&author) {
            Ok(c) => {
                match contribution(ctx, state, author, c) {
                    Ok(credit) => {
                        if let Some(peer) = peer::identity::peer_id(&author) {
                            ctx.metrics.credited_bits.add(&peer.to_string(), credit);
                        }
                    }
                    Err(reason) => ctx.metrics.intake_rejections.inc(reason),
                }
                GossipVerdict::Accept
            }
            Err(e) => {
                tracing::info!(node = %author.short(), error = %e, "contribution envelope refused");
                ctx.metrics.gossip_refused.inc("contribution_envelope");
                GossipVerdict::Reject
            }
        },
        _ => GossipVerdict::Ignore,
    }
}

/// Checks sender (enrolled, attested, in sequence, fresh), opens, then hands the block to the
/// intake; returns the bits credited, or why none were (a metric label).
fn contribution(
    ctx: &Ctx,
    state: &mut State,
    author: protocols::ids::NodeId,
    c: Contribution,
) -> Result<u64, &'static str> {
    let now = now_ms();
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let max_age = (ctx.config.contribution_max_age_s * 1000.0) as u64;
    let Some(p) = state.peers.get_mut(&author) else {
        tracing::debug!(node = %author.short(), "contribution from an unenrolled node dropped");
        return Err("unenrolled");
    };
    if !p.trusted(now, validity) {
        tracing::debug!(node = %author.short(), "contribution from an unattested or quarantined peer dropped");
        return Err(if p.quarantine.is_some() {
            "quarantined"
        } else {
            "unattested"
        });
    }
    if p.last_seq.is_some_and(|last| c.seq <= last) {
        tracing::info!(node = %author.short(), seq = c.seq, "replayed or reordered contribution refused");
        return Err("sequence");
    }
    if now.saturating_sub(c.sent_at_ms) > max_age || c.sent_at_ms > now.saturating_add(max_age) {
        tracing::info!(node = %author.short(), "stale contribution refused");
        return Err("stale");
    }
    let body = match peer::contribution::open(&ctx.noise_static, &author, c.seq, &c.sealed) {
        Ok(b) => b,
        Err(e) => {
            tracing::info!(node = %author.short(), error = %e, "contribution does not open");
            return Err("unopenable");
        }
    };
    p.last_seq = Some(c.seq);
    let Ok(bytes) = <[u8; BLOCK_BYTES]>::try_from(body.bits.as_slice()) else {
        tracing::info!(node = %author.short(), len = body.bits.len(), "contribution of the wrong size refused");
        return Err("wrong_size");
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
            Ok(credit)
        }
        Err(Rejection::Fips(tests)) => {
            tracing::info!(node = %author.short(), ?tests, "contribution failed the FIPS battery");
            Err("fips")
        }
        Err(Rejection::Replay) => {
            tracing::info!(node = %author.short(), "replayed entropy refused");
            Err("replayed_entropy")
        }
        Err(Rejection::Clone) => {
            tracing::warn!(node = %author.short(), "cloned entropy: peer quarantined");
            if p.quarantine.is_none() {
                ctx.metrics.quarantines.inc("cloned_entropy");
            }
            p.quarantine = Some(Quarantine::ClonedEntropy);
            Err("cloned_entropy")
        }
    }
}

/// A stable small number per source name, so each source of a peer feeds its own pool cursor.
fn source_index(name: &str) -> u32 {
    name.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 64
}
