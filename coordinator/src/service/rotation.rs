//! Rotation and repair: move a session to a fresh quorum as epoch e+1, commit after durable acks,
//! only then delete epoch e from the old holders. A crash mid-rotation rolls back at start-up.

use super::sessions::{grant, holder_order, send_store_orders};
use super::{Ctx, Internal, State, now_ms};
use crate::db::{Holder, PendingEpoch, SessionRecord, holders_of};
use peer::node::Protocol;
use protocols::ids::{NodeId, SessionId};
use protocols::quorum::{QuorumPolicy, select_quorum};
use protocols::reshare::{Placement, Planned};
use protocols::sealing::{self, ShareSlot};
use protocols::sharing::VerifiedShare;
use protocols::wire::{
    self, DeleteShares, HolderCall, HolderOrder, ShareFetch, ShareFetchReply, SignedEnvelope,
    WIRE_VERSION,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Why a rotation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The rotation period elapsed.
    Period,
    /// Live holders fell to k + 1 or fewer.
    Repair,
    /// A holder was quarantined.
    Quarantine,
    /// An operator asked for it.
    Manual,
}

impl Cause {
    /// The metric label (`period`, `repair`, `quarantine`, `manual`).
    pub fn label(self) -> &'static str {
        match self {
            Cause::Period => "period",
            Cause::Repair => "repair",
            Cause::Quarantine => "quarantine",
            Cause::Manual => "manual",
        }
    }
}

/// Sessions that need rotating now, with the cause.
pub(super) fn due(ctx: &Ctx, state: &State, sessions: &[SessionRecord]) -> Vec<(SessionId, Cause)> {
    let now = now_ms();
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let max_age = (ctx.config.heartbeat_max_age_s * 1000.0) as u64;
    let period = (ctx.config.rotation_period_s * 1000.0) as u64;
    sessions
        .iter()
        .filter(|s| s.expires_at_ms > now && !state.rotating.contains(&s.session))
        .filter_map(|s| {
            let k = s.commitments.threshold();
            let quarantined = s.holders.iter().any(|h| {
                state
                    .peers
                    .get(&h.node)
                    .is_none_or(|p| p.quarantine.is_some())
            });
            let live = s
                .holders
                .iter()
                .filter(|h| {
                    state.peers.get(&h.node).is_some_and(|p| {
                        p.trusted(now, validity)
                            && p.heartbeat_at_ms
                                .is_some_and(|t| now.saturating_sub(t) <= max_age)
                    })
                })
                .count();
            let last = s.created_at_ms.max(s.rotated_at_ms);
            if quarantined {
                Some((s.session, Cause::Quarantine))
            } else if live <= k + 1 && s.holders.len() > k + 1 {
                Some((s.session, Cause::Repair))
            } else if now.saturating_sub(last) >= period {
                Some((s.session, Cause::Period))
            } else {
                None
            }
        })
        .collect()
}

/// Starts rotating `session` in a task; the outcome comes back as [`Internal::Rotated`].
pub(super) fn start(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    record: SessionRecord,
    cause: Cause,
) {
    let n = usize::from(record.policy.n);
    let k = record.commitments.threshold();
    let now = now_ms();
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let table = state.peers.quorum_table(now, validity, &state.shares_held);
    let mut exclude: BTreeSet<NodeId> = state.intake.flagged().clone();
    exclude.extend(
        state
            .peers
            .iter()
            .filter(|(_, p)| p.quarantine.is_some())
            .map(|(n, _)| *n),
    );
    let policy = QuorumPolicy {
        heartbeat_max_age_ms: (ctx.config.heartbeat_max_age_s * 1000.0) as u64,
        ..QuorumPolicy::default()
    }
    .excluding(exclude);
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let quorum = match select_quorum(&table, n, k, &policy, now, &mut rng) {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(session = %record.session, ?cause, error = %e, "rotation postponed: no quorum");
            return;
        }
    };
    state.rotating.insert(record.session);
    let old_addrs = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
    let new_addrs = state.peers.addrs_of(quorum.holders.iter().copied());
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        let session = record.session;
        let started = std::time::Instant::now();
        let outcome = rotate(&ctx, record, quorum.holders, &old_addrs, &new_addrs).await;
        if let Err(e) = &outcome {
            tracing::warn!(%session, ?cause, error = %e, "rotation failed; the session stays on its epoch");
        }
        let _ = internal
            .send(Internal::Rotated {
                session,
                cause,
                outcome,
                started,
            })
            .await;
    });
}

/// Old and new holders after a committed rotation.
pub(crate) type Moved = (Vec<NodeId>, Vec<NodeId>);

async fn rotate(
    ctx: &Ctx,
    mut record: SessionRecord,
    new_holders: Vec<NodeId>,
    old_addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    new_addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Result<Moved, String> {
    let k = record.commitments.threshold();
    let old_shares = gather(ctx, &record, old_addrs, k).await?;
    let placements: Vec<Placement> = new_holders
        .iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node: *node, index })
        .collect();
    let n = placements.len();
    let plan = Planned::new(
        record.session,
        record.epoch,
        record.commitments.clone(),
        placements,
        k,
        k.max(n.saturating_sub(1)),
    )
    .map_err(|e| e.to_string())?;
    let mut dealt = plan
        .deal(&old_shares, &mut rand_core::UnwrapErr(rand::rngs::SysRng))
        .map_err(|e| e.to_string())?;
    drop(old_shares);
    let pending = PendingEpoch {
        session: record.session,
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
        started_at_ms: now_ms(),
    };
    blocking(ctx, move |db| db.put_pending_epoch(&pending)).await?;
    send_store_orders(ctx, &mut dealt, new_addrs, record.expires_at_ms).await;
    let committed = match dealt.commit() {
        Ok(c) => c,
        Err(failed) => {
            let (dealt, e) = *failed;
            let sent = dealt.abort();
            delete_epoch(
                ctx,
                record.session,
                record.epoch + 1,
                sent.iter().map(|p| p.node),
                new_addrs,
            )
            .await;
            let session = record.session;
            blocking(ctx, move |db| db.delete_pending_epoch(&session).map(|_| ())).await?;
            return Err(e.to_string());
        }
    };
    let old: Vec<NodeId> = record.holders.iter().map(|h| h.node).collect();
    let old_epoch = record.epoch;
    record.epoch = committed.epoch();
    record.holders = holders_of(committed.holders());
    record.commitments = committed.commitments().clone();
    record.rotations = record.rotations.saturating_add(1);
    record.rotated_at_ms = now_ms();
    let to_store = record.clone();
    blocking(ctx, move |db| db.commit_epoch(&to_store)).await?;
    // Only a committed epoch frees the old one.
    if let Some((session, epoch)) = committed.deletable_epoch() {
        debug_assert_eq!(epoch, old_epoch);
        delete_epoch(ctx, session, epoch, old.iter().copied(), old_addrs).await;
    }
    Ok((old, record.holders.iter().map(|h| h.node).collect()))
}

async fn blocking<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&crate::db::CoordinatorDb) -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, String> {
    let db = ctx.db.clone();
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Fetches k verified shares of the current epoch; the coordinator presents a ticket naming itself.
async fn gather(
    ctx: &Ctx,
    record: &SessionRecord,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    k: usize,
) -> Result<Vec<VerifiedShare>, String> {
    let grant = grant(ctx, record, ctx.key.node_id(), addrs);
    let request = wire::encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket: grant.ticket,
    });
    let asks = record.holders.iter().map(|h| {
        let request = request.clone();
        let addrs = addrs
            .iter()
            .find(|(n, _)| n == &h.node)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        async move {
            let peer = peer::identity::peer_id(&h.node).ok_or("bad id")?;
            let raw = ctx
                .node
                .request(Protocol::Fetch, peer, addrs, request)
                .await
                .map_err(|e| e.to_string())?;
            let reply: ShareFetchReply =
                wire::decode(&raw, Protocol::Fetch.limits().1).map_err(|e| e.to_string())?;
            let sealed = reply.result.map_err(|r| r.to_string())?;
            let slot = ShareSlot {
                session: record.session,
                epoch: record.epoch,
                holder: h.node,
                index: h.index,
            };
            let share = sealing::open(&ctx.master.share_key(&slot), &slot, &sealed)
                .map_err(|e| e.to_string())?;
            share.verify(&record.commitments).map_err(|e| e.to_string())
        }
    });
    let mut shares = Vec::new();
    for (h, result) in record
        .holders
        .iter()
        .zip(futures::future::join_all(asks).await)
    {
        match result {
            Ok(s) => shares.push(s),
            Err(e) => {
                tracing::info!(holder = %h.node.short(), error = %e, "share not gathered for rotation")
            }
        }
    }
    if shares.len() < k {
        return Err(format!("gathered {} of {k} shares", shares.len()));
    }
    shares.truncate(k);
    Ok(shares)
}

/// Tells holders to delete one epoch (best effort; expired shares are dropped by holders anyway).
pub(super) async fn delete_epoch(
    ctx: &Ctx,
    session: SessionId,
    epoch: u32,
    holders: impl Iterator<Item = NodeId>,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) {
    let order = SignedEnvelope::seal(
        &ctx.key,
        &DeleteShares {
            v: WIRE_VERSION,
            session,
            epoch,
        },
    );
    let bytes = wire::encode(&HolderCall {
        v: WIRE_VERSION,
        order: HolderOrder::Delete(order),
    });
    let sends = holders.map(|node| {
        let addrs = addrs
            .iter()
            .find(|(n, _)| n == &node)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        let bytes = bytes.clone();
        async move { (node, holder_order(ctx, &node, addrs, bytes).await) }
    });
    for (node, result) in futures::future::join_all(sends).await {
        if let Err(e) = result {
            tracing::info!(holder = %node.short(), %session, epoch, error = %e, "delete order not acknowledged");
        }
    }
}

/// At start-up: epochs left pending by a crash are rolled back (their holders told to delete them).
pub(super) async fn roll_back_pending(ctx: &Ctx) {
    let Ok(pending) = blocking(ctx, |db| db.pending_epochs()).await else {
        return;
    };
    for p in pending {
        tracing::warn!(session = %p.session, epoch = p.epoch, "rolling back a rotation interrupted by a crash");
        delete_epoch(
            ctx,
            p.session,
            p.epoch,
            p.holders.iter().map(|h| h.node),
            &[],
        )
        .await;
        let session = p.session;
        let _ = blocking(ctx, move |db| db.delete_pending_epoch(&session).map(|_| ())).await;
    }
}
