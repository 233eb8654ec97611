//! Gossip intake: heartbeats update the peer table; contributions are checked, opened and credited.

use super::{Ctx, State, now_ms};
use crate::intake::sources::{Decision, Waiting};
use crate::intake::{IntakeEvent, Rejection};
use crate::peers::Quarantine;
use libp2p::PeerId;
use peer::node::{CONTRIBUTIONS_TOPIC, GossipVerdict, STATUS_TOPIC};
use protocols::entropy::{Accounting, ConditionedBlock, credit_for_accounting};
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
                    // The claim is refused (placement uses the enrolled labels) and counted per
                    // peer and in the metrics, so an operator sees a misconfigured or lying device;
                    // the heartbeat still counts as a sign of life.
                    tracing::info!(node = %author.short(), claimed_region = %beat.region, claimed_operator = %beat.operator, "heartbeat labels differ from enrolment; enrolment wins");
                    ctx.metrics.gossip_refused.inc("heartbeat_labels");
                    p.note_refusal("heartbeat_labels");
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
                    Ok(held) => {
                        tracing::debug!(node = %author.short(), held, "contribution held for the duplicate window");
                    }
                    Err(reason) => {
                        ctx.metrics.intake_rejections.inc(reason);
                        if let Some(p) = state.peers.get_mut(&author) {
                            p.note_refusal(reason);
                        }
                    }
                }
                apply_intake_events(ctx, state);
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

/// Credits held blocks whose duplicate window has closed (called from the loop's ticks and
/// before readiness is judged) and applies what the intake decided.
pub(super) fn settle_intake(ctx: &Ctx, state: &mut State) {
    state.intake.settle(now_ms());
    apply_intake_events(ctx, state);
}

/// Applies the intake's decisions to the peer table and metrics: credit that now counts,
/// credit cancelled by a duplicate, and peers the duplicate evidence names as clones.
fn apply_intake_events(ctx: &Ctx, state: &mut State) {
    for event in state.intake.drain_events() {
        match event {
            IntakeEvent::Credited { contributor, bits } => {
                if let Some(p) = state.peers.get_mut(&contributor) {
                    p.credited_bits = p.credited_bits.saturating_add(bits);
                }
                if let Some(peer) = peer::identity::peer_id(&contributor) {
                    ctx.metrics.credited_bits.add(&peer.to_string(), bits);
                }
            }
            IntakeEvent::Cancelled {
                contributor,
                bits,
                partner,
            } => {
                tracing::info!(node = %contributor.short(), partner = %partner.short(), bits, "held credit cancelled: another peer sent the same block");
                ctx.metrics.intake_rejections.inc("duplicate_cancelled");
                if let Some(p) = state.peers.get_mut(&contributor) {
                    p.note_refusal("duplicate_cancelled");
                }
            }
            IntakeEvent::Cloned {
                contributor,
                partner,
                later,
                earlier,
            } => {
                tracing::warn!(node = %contributor.short(), partner = %partner.short(), later, earlier, "cloned entropy: peer quarantined");
                if let Some(p) = state.peers.get_mut(&contributor) {
                    if p.quarantine.is_none() {
                        ctx.metrics.quarantines.inc("cloned_entropy");
                    }
                    p.quarantine = Some(Quarantine::ClonedEntropy);
                }
            }
        }
    }
}

/// Checks sender (enrolled, in sequence, fresh), opens, then hands the block to the intake:
/// credited (after its hold window) when the sender is attested and not quarantined, only
/// witnessed for duplicate detection otherwise. Returns the bits held, or why none were (a
/// metric label).
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
    let untrusted = (!p.trusted(now, validity)).then_some(if p.quarantine.is_some() {
        "quarantined"
    } else {
        "unattested"
    });
    if p.last_seq.is_some_and(|last| c.seq <= last) {
        tracing::info!(node = %author.short(), seq = c.seq, "replayed or reordered contribution refused");
        return Err(untrusted.unwrap_or("sequence"));
    }
    if now.saturating_sub(c.sent_at_ms) > max_age || c.sent_at_ms > now.saturating_add(max_age) {
        tracing::info!(node = %author.short(), "stale contribution refused");
        return Err(untrusted.unwrap_or("stale"));
    }
    let body = match peer::contribution::open(&ctx.noise_static, &author, c.seq, &c.sealed) {
        Ok(b) => b,
        Err(e) => {
            tracing::info!(node = %author.short(), error = %e, "contribution does not open");
            return Err(untrusted.unwrap_or("unopenable"));
        }
    };
    p.last_seq = Some(c.seq);
    let accounting = &body.accounting;
    let h_claim = f64::from(accounting.h_millibits) / 1000.0;
    let Some(block) = ConditionedBlock::from_received(body.conditioned, accounting.raw_samples)
    else {
        tracing::info!(node = %author.short(), "contribution that is not whole conditioned outputs refused");
        return Err(untrusted.unwrap_or("wrong_size"));
    };
    if accounting.source.is_empty()
        || accounting.source.len() > 128
        || !(1..=8).contains(&accounting.bits_per_sample)
        || h_claim > f64::from(accounting.bits_per_sample)
    {
        tracing::info!(node = %author.short(), source = %accounting.source, "contribution with impossible accounting refused");
        return Err(untrusted.unwrap_or("bad_accounting"));
    }
    if let Some(reason) = untrusted {
        // Never credited; remembered so that a trusted peer sending the same block is caught.
        tracing::debug!(node = %author.short(), "contribution from an unattested or quarantined peer witnessed, not credited");
        state.intake.witness(&author, &block, now);
        return Err(reason);
    }
    let waiting = Waiting {
        source_index: source_index(&accounting.source),
        accounting: Accounting {
            outputs: block.outputs(),
            raw_samples: accounting.raw_samples,
            h_per_sample: h_claim,
        },
        block,
    };
    // The block itself stays with the book while it waits; a copy goes on here.
    let block = Waiting {
        source_index: waiting.source_index,
        block: waiting.block.clone(),
        accounting: waiting.accounting,
    };
    match state.sources.on_contribution(
        author,
        &accounting.source,
        waiting,
        &accounting.estimator,
        now,
    ) {
        Decision::Credit(cap) => {
            let credited = credit(ctx, state, author, &accounting.source, block, cap);
            if let Err(reason) = credited {
                state.sources.refused(&author, &accounting.source, reason);
            }
            credited
        }
        Decision::Waiting(_) => Ok(0),
        Decision::Refuse(reason) => {
            state.intake.witness(&author, &block.block, now);
            state.intake.count_refused(reason);
            Err(reason)
        }
    }
}

/// Credits a block at `cap` bits per sample at most (its source's audit), or only witnesses it
/// when there is no cap (the audit failed or quarantined the source).
pub(super) fn credit_or_witness(
    ctx: &Ctx,
    state: &mut State,
    node: protocols::ids::NodeId,
    source: &str,
    waiting: Waiting,
    cap: Option<f64>,
) {
    let result = match cap {
        Some(cap) => credit(ctx, state, node, source, waiting, cap),
        None => {
            state.intake.witness(&node, &waiting.block, now_ms());
            state.intake.count_refused("audit_failed");
            Err("audit_failed")
        }
    };
    if let Err(reason) = result {
        ctx.metrics.intake_rejections.inc(reason);
        state.sources.refused(&node, source, reason);
        if let Some(p) = state.peers.get_mut(&node) {
            p.note_refusal(reason);
        }
    }
    apply_intake_events(ctx, state);
}

fn credit(
    _ctx: &Ctx,
    state: &mut State,
    author: protocols::ids::NodeId,
    source: &str,
    waiting: Waiting,
    cap: f64,
) -> Result<u64, &'static str> {
    let bits = credit_for_accounting(&waiting.accounting, cap);
    match state.intake.take(
        &author,
        waiting.source_index,
        &waiting.block,
        bits,
        now_ms(),
    ) {
        Ok(held) => {
            state.sources.credited(&author, source, held);
            Ok(held)
        }
        Err(Rejection::Replay) => {
            tracing::info!(node = %author.short(), "replayed entropy refused");
            Err("replayed_entropy")
        }
        Err(Rejection::Clone) => {
            // Not credited; whether this peer is the copier is for the evidence to say.
            tracing::info!(node = %author.short(), "duplicate of another peer's entropy refused");
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
