//! Rotation and repair: move a session to a fresh quorum as epoch e+1, commit after durable acks,
//! only then delete epoch e from the old holders. A crash mid-rotation rolls back at start-up.

use super::sessions::{holder_order, pending_of, send_store_orders};
use super::{Ctx, Internal, State, now_ms};
use crate::db::{OwedDeletion, SessionRecord, holders_of};
use protocols::ids::{NodeId, SessionId};
use protocols::quorum::{QuorumPolicy, select_quorum};
use protocols::reshare::{Placement, Planned};
use protocols::sharing::VerifiedShare;
use protocols::wire::{self, DeleteShares, HolderCall, HolderOrder, SignedEnvelope, WIRE_VERSION};
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
    let table =
        state
            .peers
            .quorum_table(now, validity, &state.shares_held, &ctx.node.round_trips());
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
    // Taken here, on the loop, not in the task: a rotate request the loop handles after this call
    // must count as newer than this rotation even when the task starts late (it then asks for
    // another rotation instead of being satisfied by this one).
    let started = std::time::Instant::now();
    tokio::spawn(async move {
        let session = record.session;
        // Every holder is asked and judged, not only k: a bad holder is caught here even when
        // enough others answer (decision 0014).
        let answers = super::audit::ask_holders(&ctx, &record, &old_addrs).await;
        let faults = super::audit::faults_of(&answers);
        let shares: Vec<VerifiedShare> = answers
            .into_iter()
            .filter_map(|(_, a)| match a {
                super::audit::Answer::Verified(s) => Some(s),
                _ => None,
            })
            .collect();
        let outcome = rotate(&ctx, record, shares, quorum.holders, &old_addrs, &new_addrs).await;
        if let Err(e) = &outcome {
            tracing::warn!(%session, ?cause, error = %e, "rotation failed; the session stays on its epoch");
        }
        let _ = internal
            .send(Internal::Rotated {
                session,
                cause,
                outcome,
                started,
                faults,
            })
            .await;
    });
}

/// Old and new holders after a committed rotation.
pub(crate) type Moved = (Vec<NodeId>, Vec<NodeId>);

async fn rotate(
    ctx: &Ctx,
    mut record: SessionRecord,
    mut old_shares: Vec<VerifiedShare>,
    new_holders: Vec<NodeId>,
    old_addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    new_addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Result<Moved, String> {
    let k = record.commitments.threshold();
    if old_shares.len() < k {
        return Err(format!("gathered {} of {k} shares", old_shares.len()));
    }
    old_shares.truncate(k);
    let placements: Vec<Placement> = new_holders
        .iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node: *node, index })
        .collect();
    let n = placements.len();
    // A rolled-back epoch e+1 may still be owed a deletion by a holder chosen again for e+1: the
    // new share must not race that deletion. The settling task delivers it; rotate after.
    let next = record.epoch + 1;
    let session = record.session;
    let owed = blocking(ctx, |db| db.owed_deletions()).await?;
    if let Some(d) = owed
        .iter()
        .find(|d| d.session == session && d.epoch == next && new_holders.contains(&d.node))
    {
        return Err(format!(
            "holder {} still owes the deletion of a rolled-back epoch {next}; rotation waits",
            d.node.short()
        ));
    }
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
    let pending = pending_of(&dealt, record.session, now_ms());
    blocking(ctx, move |db| db.put_pending_epoch(&pending)).await?;
    send_store_orders(ctx, &mut dealt, new_addrs, record.expires_at_ms).await;
    let dealt_to: Vec<NodeId> = dealt.deliveries().iter().map(|(p, _)| p.node).collect();
    let committed = match dealt.commit() {
        Ok(c) => c,
        Err(failed) => {
            let e = failed.1;
            abandon_pending(ctx, session, new_addrs).await?;
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
    // Owed with the commit, in its transaction: the old epoch by its holders (only a committed
    // epoch frees the old one), and the new epoch by holders dealt a share that never acked it.
    let mut owed: Vec<OwedDeletion> = old
        .iter()
        .map(|&node| OwedDeletion {
            session,
            epoch: old_epoch,
            node,
        })
        .collect();
    owed.extend(unacknowledged(session, record.epoch, &dealt_to, &record));
    debug_assert_eq!(committed.deletable_epoch(), Some((session, old_epoch)));
    let to_store = record.clone();
    let owing = owed.clone();
    blocking(ctx, move |db| db.commit_epoch_owing(&to_store, &owing)).await?;
    let addrs: Vec<_> = old_addrs.iter().chain(new_addrs).cloned().collect();
    deliver_deletions(ctx, &owed, &addrs).await;
    Ok((old, record.holders.iter().map(|h| h.node).collect()))
}

/// Deletions owed by holders in `dealt_to` that `record` (just committed at `epoch`) does not list.
pub(super) fn unacknowledged(
    session: SessionId,
    epoch: u32,
    dealt_to: &[NodeId],
    record: &SessionRecord,
) -> Vec<OwedDeletion> {
    dealt_to
        .iter()
        .filter(|n| !record.holders.iter().any(|h| &h.node == *n))
        .map(|&node| OwedDeletion {
            session,
            epoch,
            node,
        })
        .collect()
}

/// Gives up the pending epoch of `session`: durably owed by every holder it was dealt to, then
/// delivered at once where possible (the rest by the settling task).
pub(super) async fn abandon_pending(
    ctx: &Ctx,
    session: SessionId,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Result<(), String> {
    let retired = blocking(ctx, move |db| db.retire_pending_epoch(&session)).await?;
    if let Some(pending) = retired {
        deliver_deletions(ctx, &OwedDeletion::of_pending(&pending), addrs).await;
    }
    Ok(())
}

/// Sends each owed deletion to its holder and settles, durably, every one acknowledged.
pub(super) async fn deliver_deletions(
    ctx: &Ctx,
    owed: &[OwedDeletion],
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) {
    let mut epochs: Vec<(SessionId, u32)> = owed.iter().map(|d| (d.session, d.epoch)).collect();
    epochs.dedup();
    for (session, epoch) in epochs {
        let nodes = owed
            .iter()
            .filter(|d| d.session == session && d.epoch == epoch)
            .map(|d| d.node);
        let acked = delete_epoch(ctx, session, epoch, nodes, addrs).await;
        let settled: Vec<OwedDeletion> = acked
            .into_iter()
            .map(|node| OwedDeletion {
                session,
                epoch,
                node,
            })
            .collect();
        if let Err(e) = blocking(ctx, move |db| db.settle_deletions(&settled)).await {
            tracing::warn!(%session, epoch, error = %e, "acknowledged deletions not settled; resent later");
        }
    }
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

/// Tells holders to delete one epoch; returns those that acknowledged.
pub(super) async fn delete_epoch(
    ctx: &Ctx,
    session: SessionId,
    epoch: u32,
    holders: impl Iterator<Item = NodeId>,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Vec<NodeId> {
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
    let mut acked = Vec::new();
    for (node, result) in futures::future::join_all(sends).await {
        match result {
            Ok(()) => acked.push(node),
            Err(e) => {
                tracing::info!(holder = %node.short(), %session, epoch, error = %e, "delete order not acknowledged")
            }
        }
    }
    acked
}

/// At start-up: epochs left pending by a crash (a rotation or a creation) are rolled back: each
/// holder they were dealt to owes its deletion, delivered by the settling task once the holder's
/// address is known again (a restarted coordinator knows none until heartbeats arrive).
pub(super) async fn roll_back_pending(ctx: &Ctx) {
    let Ok(pending) = blocking(ctx, |db| db.pending_epochs()).await else {
        return;
    };
    for p in pending {
        tracing::warn!(session = %p.session, epoch = p.epoch, "rolling back an epoch interrupted by a crash");
        let session = p.session;
        if let Err(e) = blocking(ctx, move |db| db.retire_pending_epoch(&session)).await {
            tracing::error!(%session, error = %e, "pending epoch could not be rolled back");
        }
    }
}
