//! Rotation and repair carried out: the core chooses the new quorum ([`State::start_rotation`])
//! and decides the redistribution (`core::redistribution`: the old holders sub-deal, the new
//! ones combine); this moves its messages and writes, commit after durable acks, only then
//! epoch e is deleted from the old holders. A crash mid-rotation rolls back at start-up.

use super::errors::RotationError;
use super::placing::{self, Stop};
use super::{Ctx, Internal, State, now_ms};
use crate::core::Outcome;
use crate::core::holder_audits::HolderFault;
use crate::core::redistribution::Redistribution;
use crate::core::upkeep::{RotationStart, deletion_still_owed};
use crate::db::SessionRecord;
use protocols::ids::NodeId;
use std::sync::Arc;
use tokio::sync::mpsc;

pub use crate::core::schedule::Cause;

/// Starts rotating `record` if the core says it may, by redistribution (the coordinator relays
/// and judges; it holds no share); the outcome comes back as [`Internal::Rotated`].
pub(super) fn start(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    record: SessionRecord,
    cause: Cause,
) {
    let round_trips = ctx.node.round_trips();
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    if let Ok(start) = state.start_rotation(record, cause, now_ms(), &round_trips, &mut rng) {
        spawn(ctx, internal, start);
    }
}

/// Runs a rotation the core started in a task.
pub(super) fn spawn(ctx: &Arc<Ctx>, internal: &mpsc::Sender<Internal>, start: RotationStart) {
    let (ctx, internal) = (ctx.clone(), internal.clone());
    // Taken here, on the loop, not in the task: a rotate request the loop handles after this call
    // must count as newer than this rotation even when the task starts late (it then asks for
    // another rotation instead of being satisfied by this one).
    let started = std::time::Instant::now();
    tokio::spawn(async move {
        let (session, cause, mark) = (start.record.session, start.cause, start.mark);
        let (outcome, faults) = rotate(&ctx, start).await;
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

async fn rotate(ctx: &Ctx, start: RotationStart) -> Rotated {
    let owed = match blocking(ctx, |db| db.owed_deletions()).await {
        Ok(owed) => owed,
        Err(e) => return (Err(e), Vec::new()),
    };
    if let Some(e) = deletion_still_owed(&start, &owed) {
        return (Err(e), Vec::new());
    }
    let RotationStart {
        record,
        new_holders,
        min_acks,
        addrs,
        ..
    } = start;
    let old: Vec<NodeId> = record.holders.iter().map(|h| h.node).collect();
    // The signer's master key seals nothing here: orders are only signed.
    let master = ctx.masters.sealing_key();
    let mut machine = match Redistribution::new(
        record,
        new_holders,
        min_acks,
        placing::signer(ctx, &master),
        now_ms(),
        placing::HOLDER_ANSWER_MS,
        &mut rand_core::UnwrapErr(rand::rngs::SysRng),
    ) {
        Ok(m) => m,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let outcome = match placing::drive(ctx, &mut machine, &addrs).await {
        Stop::Committed(record) => {
            // The old epoch's holders (and new ones that never acknowledged) delete now; what
            // they do not acknowledge stays owed.
            placing::drive(ctx, &mut machine, &addrs).await;
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
