//! Rotation and repair: move a session to a fresh quorum as epoch e+1, commit after durable acks,
//! only then delete epoch e from the old holders. A crash mid-rotation rolls back at start-up.

use super::errors::RotationError;
use super::placing::{self, Stop};
use super::{Ctx, Internal, State, now_ms};
use crate::core::Outcome;
use crate::core::placement::{EpochPlacement, Placing};
use crate::db::SessionRecord;
use protocols::ids::NodeId;
use protocols::reshare::{Placement, Planned};
use protocols::sharing::VerifiedShare;
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
    let share_keys: std::collections::BTreeMap<NodeId, protocols::share_box::BoxPublic> = quorum
        .holders
        .iter()
        .filter_map(|n| Some((*n, state.peers.share_key(n)?)))
        .collect();
    let mark = state.ledger.rotation_started(record.session);
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
        let faults = crate::core::holder_audits::faults_of(&answers);
        let shares: Vec<VerifiedShare> = answers
            .into_iter()
            .filter_map(|(_, a)| match a {
                crate::core::holder_audits::Answer::Verified(s) => Some(s),
                _ => None,
            })
            .collect();
        let outcome = rotate(
            &ctx,
            record,
            shares,
            quorum.holders,
            &share_keys,
            &old_addrs,
            &new_addrs,
        )
        .await;
        if let Err(e) = &outcome {
            tracing::warn!(%session, ?cause, error = %e, "rotation failed; the session stays on its epoch");
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

async fn rotate(
    ctx: &Ctx,
    record: SessionRecord,
    mut old_shares: Vec<VerifiedShare>,
    new_holders: Vec<NodeId>,
    share_keys: &std::collections::BTreeMap<NodeId, protocols::share_box::BoxPublic>,
    old_addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    new_addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Result<Moved, RotationError> {
    let k = record.commitments.threshold();
    if old_shares.len() < k {
        return Err(RotationError::TooFewShares {
            have: old_shares.len(),
            need: k,
        });
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
        return Err(RotationError::DeletionStillOwed {
            node: d.node,
            epoch: next,
        });
    }
    let plan = Planned::new(
        record.session,
        record.epoch,
        record.commitments.clone(),
        placements,
        k,
        k.max(n.saturating_sub(1)),
    )?;
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let dealt = plan.deal(&old_shares, &mut rng)?;
    drop(old_shares);
    // Boxed to the new holders and the shares wiped before any order exists (decision 0053:
    // the interim until rotation by redistribution, where the coordinator rebuilds the key).
    let dealt = dealt
        .seal_to_holders(|n| share_keys.get(n).copied(), &mut rng)
        .map_err(|e| RotationError::Task(e.to_string()))?;
    let old: Vec<NodeId> = record.holders.iter().map(|h| h.node).collect();
    // The signer's master key seals nothing here (the shares are boxed to their holders).
    let master = ctx.sealing_key();
    let mut placement = EpochPlacement::new(
        Placing::Rotation,
        dealt,
        record,
        &placing::signer(ctx, &master),
        now_ms(),
        placing::HOLDER_ANSWER_MS,
    );
    let addrs: Vec<_> = old_addrs.iter().chain(new_addrs).cloned().collect();
    match placing::drive(ctx, &mut placement, &addrs).await {
        Stop::Committed(record) => {
            // The old epoch's holders (and new ones that never acknowledged) delete now; what
            // they do not acknowledge stays owed.
            placing::drive(ctx, &mut placement, &addrs).await;
            Ok((old, record.holders.iter().map(|h| h.node).collect()))
        }
        Stop::Done(Some(Outcome::RolledBack(reason) | Outcome::WriteFailed(reason))) => {
            Err(reason.into())
        }
        Stop::Done(_) => Err(RotationError::Undecided),
    }
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
