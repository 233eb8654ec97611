//! Rotation and repair: move a session to a fresh quorum as epoch e+1 by redistribution (the
//! old holders sub-deal, the new ones combine; `core::redistribution` decides, this only moves
//! the messages), commit after durable acks, only then delete epoch e from the old holders. A
//! crash mid-rotation rolls back at start-up.

use super::errors::RotationError;
use super::placing::{self, Stop};
use super::{Ctx, Internal, State, now_ms};
use crate::core::Outcome;
use crate::core::holder_audits::HolderFault;
use crate::core::redistribution::Redistribution;
use crate::db::SessionRecord;
use protocols::ids::NodeId;
use protocols::wire::{MAX_REDEAL_HOLDERS, NewHolder};
use std::sync::Arc;
use tokio::sync::mpsc;

pub use crate::core::schedule::Cause;
use crate::core::schedule::Standing;

/// How `node` stands for upkeep, from the peer table at `now`.
pub(super) fn standing(ctx: &Ctx, state: &State, node: &NodeId, now: u64) -> Standing {
    crate::core::schedule::standing(
        &state.peers,
        node,
        now,
        (ctx.config.attestation_validity_s * 1000.0) as u64,
        (ctx.config.heartbeat_max_age_s * 1000.0) as u64,
    )
}

/// Starts rotating `session` in a task, by redistribution (the coordinator relays and judges;
/// it holds no share); the outcome comes back as [`Internal::Rotated`].
pub(super) fn start(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    record: SessionRecord,
    cause: Cause,
) {
    let n = usize::from(record.policy.n);
    let k = record.commitments.threshold();
    if !record.boxed {
        // Decision 0057: its holders cannot sub-deal a share sealed under the coordinator's key,
        // and the coordinator no longer rebuilds a key to deal it again.
        tracing::warn!(session = %record.session, ?cause, "rotation postponed: the session's shares were dealt before share keys (sealed under the coordinator's key), which its holders cannot redistribute");
        return;
    }
    if n > MAX_REDEAL_HOLDERS || record.holders.len() > MAX_REDEAL_HOLDERS {
        tracing::warn!(session = %record.session, ?cause, n, "rotation postponed: more holders than a redistribution takes ({MAX_REDEAL_HOLDERS})");
        return;
    }
    let now = now_ms();
    let quorum = match super::sessions::choose_quorum(ctx, state, n, k, now) {
        Ok(q) => q,
        Err(e) => {
            let keyless = state
                .peers
                .trusted_without_share_key(now, (ctx.config.attestation_validity_s * 1000.0) as u64)
                .len();
            let note = crate::core::sessions::keyless_note(keyless);
            tracing::warn!(session = %record.session, ?cause, error = %format!("{e}{note}"), "rotation postponed: no quorum");
            return;
        }
    };
    // Every holder chosen stated a share key (the quorum skips those that did not).
    let new_holders: Vec<NewHolder> = quorum
        .holders
        .iter()
        .filter_map(|n| Some((*n, state.peers.share_key(n)?)))
        .zip(1u8..)
        .map(|((node, share_key), index)| NewHolder {
            node,
            index,
            share_key,
        })
        .collect();
    let mark = state.ledger.rotation_started(record.session);
    let mut addrs = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
    addrs.extend(state.peers.addrs_of(quorum.holders.iter().copied()));
    let (ctx, internal) = (ctx.clone(), internal.clone());
    // Taken here, on the loop, not in the task: a rotate request the loop handles after this call
    // must count as newer than this rotation even when the task starts late (it then asks for
    // another rotation instead of being satisfied by this one).
    let started = std::time::Instant::now();
    tokio::spawn(async move {
        let session = record.session;
        let (outcome, faults) = rotate(&ctx, record, new_holders, &addrs).await;
        if let Err(e) = &outcome {
            tracing::warn!(%session, ?cause, error = %e, "rotation not done; the session stays on its epoch");
        }
        let _ = internal
            .send(Internal::Rotated {
                session,
                cause,
                outcome,
                started,
                mark,
                faults,
            })
            .await;
    });
}

/// Old and new holders after a committed rotation.
pub(crate) type Moved = (Vec<NodeId>, Vec<NodeId>);

/// The rotation's outcome, and the holders it showed at fault.
type Rotated = (Result<Moved, RotationError>, Vec<(NodeId, HolderFault)>);

async fn rotate(
    ctx: &Ctx,
    record: SessionRecord,
    new_holders: Vec<NewHolder>,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Rotated {
    let k = record.commitments.threshold();
    let n = new_holders.len();
    // A rolled-back epoch e+1 may still be owed a deletion by a holder chosen again for e+1: the
    // new share must not race that deletion. The settling task delivers it; rotate after.
    let next = record.epoch + 1;
    let session = record.session;
    let owed = match blocking(ctx, |db| db.owed_deletions()).await {
        Ok(owed) => owed,
        Err(e) => return (Err(e), Vec::new()),
    };
    if let Some(d) = owed.iter().find(|d| {
        d.session == session && d.epoch == next && new_holders.iter().any(|h| h.node == d.node)
    }) {
        let e = RotationError::DeletionStillOwed {
            node: d.node,
            epoch: next,
        };
        return (Err(e), Vec::new());
    }
    let old: Vec<NodeId> = record.holders.iter().map(|h| h.node).collect();
    // The signer's master key seals nothing here: orders are only signed.
    let master = ctx.sealing_key();
    let mut machine = match Redistribution::new(
        record,
        new_holders,
        k.max(n.saturating_sub(1)),
        placing::signer(ctx, &master),
        now_ms(),
        placing::HOLDER_ANSWER_MS,
        &mut rand_core::UnwrapErr(rand::rngs::SysRng),
    ) {
        Ok(m) => m,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let outcome = match placing::drive(ctx, &mut machine, addrs).await {
        Stop::Committed(record) => {
            // The old epoch's holders (and new ones that never acknowledged) delete now; what
            // they do not acknowledge stays owed.
            placing::drive(ctx, &mut machine, addrs).await;
            Ok((old, record.holders.iter().map(|h| h.node).collect()))
        }
        Stop::Done(Some(Outcome::RolledBack(reason) | Outcome::WriteFailed(reason))) => {
            Err(reason.into())
        }
        Stop::Done(_) => Err(RotationError::Undecided),
    };
    (outcome, machine.faults().to_vec())
}

async fn blocking<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&crate::db::CoordinatorDb) -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, RotationError> {
    let db = ctx.db.clone();
    match tokio::task::spawn_blocking(move || f(&db)).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(RotationError::Task(e.to_string())),
    }
}

/// At start-up: epochs left pending by a crash (a rotation or a creation) are rolled back: each
/// holder they were dealt to owes its deletion, delivered by the settling task once the holder's
/// address is known again (a restarted coordinator knows none until heartbeats arrive).
pub(super) async fn roll_back_pending(ctx: &Ctx) {
    match blocking(ctx, |db| db.retire_all_pending_epochs()).await {
        Ok(retired) => {
            for p in retired {
                tracing::warn!(session = %p.session, epoch = p.epoch, "rolled back an epoch interrupted by a crash");
            }
        }
        Err(e) => tracing::error!(error = %e, "pending epochs could not be rolled back"),
    }
}
