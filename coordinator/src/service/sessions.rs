//! Sessions: derive a key when the pool is ready, place and seal its shares, commit after durable
//! acknowledgements, and issue tickets.

use super::{Ctx, Internal, ReplyTo, State, now_ms, os_random};
use crate::db::{Holder, PendingEpoch, SessionRecord, holders_of};
use crate::intake::shortfall::{Shortfall, refused_since_start};
use peer::node::Protocol;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionSecret;
use protocols::quorum::{QuorumPolicy, select_quorum};
use protocols::reshare::{Dealt, Placement};
use protocols::sealing::{self, ShareSlot};
use protocols::ticket::{OpeningKeyEntry, Ticket, TicketGrant, TicketHolder};
use protocols::wire::{
    self, HolderCall, HolderOrder, Refusal, Reply, SessionCreated, SessionPolicy, SignedEnvelope,
    StoreAck, StoreShare, WIRE_VERSION,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A line of `session list`.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// Session.
    pub session: SessionId,
    /// Current epoch.
    pub epoch: u32,
    /// Holders.
    pub holders: usize,
}

/// Encodes a refusal and counts it by reason.
pub(super) fn refuse(ctx: &Ctx, r: Refusal) -> Vec<u8> {
    ctx.metrics.requests_refused.inc(r.label());
    wire::encode(&Reply::<()>::refused(r))
}

/// What the pool lacks for a key, what was refused on the way and what is under way.
fn shortfall(ctx: &Ctx, state: &State) -> Shortfall {
    let (credited_bits, contributors) = state.intake.pool_credit();
    let (held_bits, _) = state.intake.held();
    Shortfall {
        credited_bits,
        needed_bits: ctx.config.min_credited_bits,
        contributors,
        needed_contributors: ctx.config.min_contributors,
        held_bits,
        audits_pending: state.sources.audits_pending(),
        blocks_waiting: state.sources.blocks_waiting(),
        refused: refused_since_start(
            &state.intake.stats().refused,
            state.peers.iter().map(|(_, p)| &p.refusals),
        ),
    }
}

/// Handles `CreateSession` from an authorised requester.
pub(super) async fn create(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    requester: NodeId,
    policy: SessionPolicy,
    responder: ReplyTo,
) {
    let (n, k) = (usize::from(policy.n), usize::from(policy.k));
    // Credit whose duplicate window has closed counts from now on.
    super::gossip::settle_intake(ctx, state);
    let refusal = if !state.requesters.contains(&requester) {
        Some(Refusal::Unauthorized)
    } else if let Err(e) = protocols::sharing::check_parameters(n, k) {
        Some(Refusal::Malformed(e.to_string()))
    } else if policy.ttl_s == 0 || policy.ttl_s > ctx.config.max_session_ttl_s {
        Some(Refusal::Malformed(format!(
            "ttl must be 1..={} s",
            ctx.config.max_session_ttl_s
        )))
    } else if policy.requesters.len() > 64 || policy.label.len() > 256 {
        Some(Refusal::Malformed(
            "too many requesters or label too long".into(),
        ))
    } else if !state
        .intake
        .ready(ctx.config.min_credited_bits, ctx.config.min_contributors)
    {
        Some(Refusal::NotReady(shortfall(ctx, state).to_string()))
    } else {
        None
    };
    if let Some(r) = refusal {
        tracing::info!(requester = %requester.short(), reason = %r, "session create refused");
        let _ = responder.respond(refuse(ctx, r)).await;
        return;
    }
    let now = now_ms();
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let table =
        state
            .peers
            .quorum_table(now, validity, &state.shares_held, &ctx.node.round_trips());
    let quorum_policy = QuorumPolicy {
        heartbeat_max_age_ms: (ctx.config.heartbeat_max_age_s * 1000.0) as u64,
        ..QuorumPolicy::default()
    }
    .excluding(state.intake.flagged().iter().copied());
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let quorum = match select_quorum(&table, n, k, &quorum_policy, now, &mut rng) {
        Ok(q) => q,
        Err(e) => {
            let _ = responder
                .respond(refuse(ctx, Refusal::NotReady(e.to_string())))
                .await;
            return;
        }
    };
    let session = SessionId(os_random());
    let (generated, receipt) = match state.intake.draw(&os_random()) {
        Ok(g) => g,
        Err(e) => {
            let _ = responder.respond(refuse(ctx, Refusal::NotReady(e))).await;
            return;
        }
    };
    let Some(secret) = SessionSecret::derive(&generated, &os_random(), &session) else {
        let _ = responder.respond(refuse(ctx, Refusal::Internal)).await;
        return;
    };
    let placements: Vec<Placement> = quorum
        .holders
        .iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node: *node, index })
        .collect();
    let min_acks = k.max(n.saturating_sub(1));
    let ttl_ms = policy.ttl_s.saturating_mul(1000);
    let dealt = match Dealt::fresh(session, 0, &secret, placements, k, min_acks, &mut rng) {
        Ok(d) => d,
        Err(e) => {
            let _ = responder
                .respond(refuse(ctx, Refusal::Malformed(e.to_string())))
                .await;
            return;
        }
    };
    drop(secret);
    let addrs = state.peers.addrs_of(quorum.holders.iter().copied());
    let record = SessionRecord {
        session,
        creator: requester,
        policy_digest: Sha256::digest(wire::encode(&policy)).into(),
        policy,
        epoch: 0,
        holders: Vec::new(),
        commitments: dealt.commitments().clone(),
        receipt,
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl_ms),
        rotations: 0,
        rotated_at_ms: 0,
    };
    tracing::debug!(%session, n, k, "session dealt; sending store orders");
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        let reply = distribute(&ctx, dealt, record, &addrs, requester).await;
        match reply {
            Ok((created, holders)) => {
                let _ = internal
                    .send(Internal::SessionStored { session, holders })
                    .await;
                let _ = responder.respond(wire::encode(&Reply::ok(created))).await;
            }
            Err(r) => {
                tracing::warn!(%session, reason = %r, "session creation failed");
                let _ = responder.respond(refuse(&ctx, r)).await;
            }
        }
    });
}

/// Seals and sends every share of `dealt`, and records each durable acknowledgement in it.
pub(super) async fn send_store_orders(
    ctx: &Ctx,
    dealt: &mut Dealt,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    expires_at_ms: u64,
) {
    let orders: Vec<_> = dealt
        .deliveries()
        .iter()
        .map(|(p, share)| {
            let slot = ShareSlot {
                session: dealt.session(),
                epoch: dealt.epoch(),
                holder: p.node,
                index: p.index,
            };
            let sealed = sealing::seal(
                &ctx.master.share_key(&slot),
                slot,
                &share.value_bytes(),
                os_random(),
            );
            let order = SignedEnvelope::seal(
                &ctx.key,
                &StoreShare {
                    v: WIRE_VERSION,
                    share: sealed,
                    expires_at_ms,
                },
            );
            (
                p.node,
                wire::encode(&HolderCall {
                    v: WIRE_VERSION,
                    order: HolderOrder::Store(order),
                }),
            )
        })
        .collect();
    let sends = orders.into_iter().map(|(node, bytes)| {
        let addrs = addrs
            .iter()
            .find(|(n, _)| n == &node)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        async move { (node, holder_order(ctx, &node, addrs, bytes).await) }
    });
    for (node, result) in futures::future::join_all(sends).await {
        match result {
            Ok(()) => {
                let _ = dealt.acknowledge(&node);
            }
            Err(e) => {
                tracing::warn!(holder = %node.short(), error = %e, "holder did not store its share")
            }
        }
    }
}

/// Sends one encoded holder order and waits for its acknowledgement.
pub(super) async fn holder_order(
    ctx: &Ctx,
    node: &NodeId,
    addrs: Vec<libp2p::Multiaddr>,
    bytes: Vec<u8>,
) -> Result<(), String> {
    let peer = peer::identity::peer_id(node).ok_or("bad holder id")?;
    let raw = ctx
        .node
        .request(Protocol::Store, peer, addrs, bytes)
        .await
        .map_err(|e| e.to_string())?;
    let reply: Reply<StoreAck> =
        wire::decode(&raw, Protocol::Store.limits().1).map_err(|e| e.to_string())?;
    reply.result.map(|_| ()).map_err(|r| r.to_string())
}

/// Sends every share, waits for durable acks, commits and records the session.
async fn distribute(
    ctx: &Ctx,
    mut dealt: Dealt,
    mut record: SessionRecord,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    requester: NodeId,
) -> Result<(SessionCreated, Vec<NodeId>), Refusal> {
    // Pending until committed: a crash before the commit rolls the shares back at start-up.
    let session = record.session;
    let pending = pending_of(&dealt, session, record.created_at_ms);
    let db = ctx.db.clone();
    tokio::task::spawn_blocking(move || db.put_pending_epoch(&pending))
        .await
        .map_err(|_| Refusal::Internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "pending session could not be recorded");
            Refusal::Internal
        })?;
    send_store_orders(ctx, &mut dealt, addrs, record.expires_at_ms).await;
    let dealt_to: Vec<NodeId> = dealt.deliveries().iter().map(|(p, _)| p.node).collect();
    let committed = match dealt.commit() {
        Ok(c) => c,
        Err(failed) => {
            let reason = failed.1.to_string();
            if let Err(e) = super::rotation::abandon_pending(ctx, session, addrs).await {
                tracing::error!(%session, error = %e, "abandoned session not rolled back");
            }
            return Err(Refusal::NotReady(format!(
                "not enough holders stored their share: {reason}"
            )));
        }
    };
    record.holders = holders_of(committed.holders());
    let owed = super::rotation::unacknowledged(session, 0, &dealt_to, &record);
    let db = ctx.db.clone();
    let (to_store, owing) = (record.clone(), owed.clone());
    tokio::task::spawn_blocking(move || db.commit_epoch_owing(&to_store, &owing))
        .await
        .map_err(|_| Refusal::Internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "session could not be recorded");
            Refusal::Internal
        })?;
    super::rotation::deliver_deletions(ctx, &owed, addrs).await;
    let holders = record.holders.iter().map(|h| h.node).collect();
    let grant = grant(ctx, &record, requester, addrs);
    Ok((
        SessionCreated {
            v: WIRE_VERSION,
            session: record.session,
            grant,
            receipt: record.receipt.clone(),
        },
        holders,
    ))
}

/// A ticket grant for `requester` on the session's current epoch.
pub(super) fn grant(
    ctx: &Ctx,
    record: &SessionRecord,
    requester: NodeId,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> TicketGrant {
    let addrs_of = |n: &NodeId| {
        addrs
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, a)| a.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    };
    let ticket = Ticket {
        v: WIRE_VERSION,
        coordinator: ctx.key.node_id(),
        session: record.session,
        epoch: record.epoch,
        requester,
        holders: record
            .holders
            .iter()
            .map(|h| TicketHolder {
                node: h.node,
                index: h.index,
                addrs: addrs_of(&h.node),
            })
            .collect(),
        commitments: record.commitments.clone(),
        policy_digest: record.policy_digest,
        issued_at_ms: now_ms(),
        expires_at_ms: record.expires_at_ms,
        nonce: os_random(),
    };
    let opening_keys = record
        .holders
        .iter()
        .map(|h| {
            let slot = ShareSlot {
                session: record.session,
                epoch: record.epoch,
                holder: h.node,
                index: h.index,
            };
            OpeningKeyEntry {
                index: h.index,
                key: ctx.master.share_key(&slot),
            }
        })
        .collect();
    TicketGrant {
        v: WIRE_VERSION,
        ticket: SignedEnvelope::seal(&ctx.key, &ticket),
        opening_keys,
    }
}

/// The pending record of a dealt epoch: rolled back at start-up unless it was committed.
pub(super) fn pending_of(dealt: &Dealt, session: SessionId, started_at_ms: u64) -> PendingEpoch {
    PendingEpoch {
        session,
        epoch: dealt.epoch(),
        holders: dealt
            .deliveries()
            .iter()
            .map(|(p, _)| Holder {
                node: p.node,
                index: p.index,
            })
            .collect(),
        commitments: dealt.commitments().clone(),
        started_at_ms,
    }
}

/// Handles `GetTicket`: the session's creator and the requesters its policy names may fetch.
pub(super) async fn ticket(
    ctx: &Arc<Ctx>,
    state: &State,
    requester: NodeId,
    session: SessionId,
    responder: ReplyTo,
) {
    let db = ctx.db.clone();
    let record = tokio::task::spawn_blocking(move || db.session(&session)).await;
    let reply = match record {
        Ok(Ok(Some(record))) if record.expires_at_ms <= now_ms() => refuse(ctx, Refusal::NotFound),
        Ok(Ok(Some(record)))
            if record.creator == requester || record.policy.requesters.contains(&requester) =>
        {
            let addrs: Vec<_> = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
            wire::encode(&Reply::ok(grant(ctx, &record, requester, &addrs)))
        }
        Ok(Ok(Some(_))) => {
            tracing::info!(requester = %requester.short(), %session, "ticket refused: requester not named by the session");
            refuse(ctx, Refusal::Unauthorized)
        }
        Ok(Ok(None)) => refuse(ctx, Refusal::NotFound),
        _ => refuse(ctx, Refusal::Internal),
    };
    let _ = responder.respond(reply).await;
}
