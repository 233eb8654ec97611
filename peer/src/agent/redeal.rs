//! A holder's answers to the coordinator's redistribution orders (docs/protocol/redistribution.md,
//! "Rotation by redistribution"): as an old holder, sub-deal the stored share of epoch e
//! ([`redeal`]); as a new holder, check the relayed sub-dealings and keep the sub-shares in
//! memory ([`sub_shares`]), then combine them and store the new share durably as epoch e+1, the
//! same record a boxed store order makes ([`combine`]). The protocol itself is
//! `protocols::redistribution`; this file moves it to the store and the wire. No share is
//! logged; every refusal is typed and logged by [`super::handlers::answer`].

use super::Shared;
use crate::store::{BoxedShare, HeldShare, PutOutcome, StoreError};
use protocols::redistribution::RedistributionError;
use protocols::redistribution::new_holder::{PendingRedistributions, ack_from_stored};
use protocols::redistribution::old_holder::answer_redeal;
use protocols::wire::{
    self, Combine, CombineAck, Redeal, Refusal, Reply, SignedEnvelope, SubShares,
};
use std::sync::{Arc, Mutex};

/// Most redistributions a holder keeps sub-shares of at once (beyond: refused `not_ready`).
pub(crate) const MAX_PENDING_REDISTRIBUTIONS: usize = 8;
/// How long a holder keeps the sub-shares of a redistribution that was not combined.
pub(crate) const PENDING_REDISTRIBUTION_MS: u64 = 10 * 60 * 1000;

/// The pending redistributions of a holder, as [`Shared`] keeps them.
pub(crate) fn pending() -> Mutex<PendingRedistributions> {
    Mutex::new(PendingRedistributions::new(
        MAX_PENDING_REDISTRIBUTIONS,
        PENDING_REDISTRIBUTION_MS,
    ))
}

fn refusal(e: RedistributionError) -> Refusal {
    match e {
        RedistributionError::TooManyPending { .. } => Refusal::NotReady(e.to_string()),
        RedistributionError::NothingPending => Refusal::NotFound,
        RedistributionError::StoredShare(_) => {
            // It was checked when it was stored: the share key or the store changed since. This
            // holder cannot give a valid share of the session: said as `bad_share`, so the
            // coordinator names it (as it would a share that failed a fetch).
            tracing::error!(error = %e, "a stored boxed share does not open for redistribution");
            Refusal::BadShare(format!("the stored share cannot be dealt: {e}"))
        }
        RedistributionError::Sharing(protocols::sharing::SharingError::SecretMismatch) => {
            // The qualified dealings do not keep C_0: the coordinator's choice is faulty.
            Refusal::BadShare(e.to_string())
        }
        e => Refusal::Malformed(e.to_string()),
    }
}

fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::Full { .. } => Refusal::StoreFull,
        e => {
            tracing::error!(error = %e, "share store failed during a redistribution");
            Refusal::Internal
        }
    }
}

pub(super) fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// Runs `work` on a blocking thread (store access and scalar arithmetic).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Refusal::Internal)?
}

/// Old holder: sub-deal the share of `(session, from)` onto the order's new quorum; answers
/// the [`protocols::wire::SubDeal`] signed by this holder.
pub(super) async fn redeal(
    shared: &Arc<Shared>,
    envelope: &SignedEnvelope,
) -> Result<Vec<u8>, Refusal> {
    let order: Redeal = envelope
        .open(&shared.coordinator)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let held = shared.clone();
    let deal = blocking(move || {
        let stored = held
            .store
            .get(&order.session, order.from)
            .map_err(store_refusal)?
            .ok_or(Refusal::NotFound)?;
        let HeldShare::Boxed(b) = stored.share else {
            return Err(Refusal::NotReady(
                "the share of this epoch is sealed under the coordinator's key (dealt before \
                 share keys): it is redistributed once dealt again boxed"
                    .into(),
            ));
        };
        let deal = answer_redeal(
            &held.share_key,
            &b.slot,
            &b.boxed,
            &b.commitments,
            &order,
            &mut rng(),
        )
        .map_err(refusal)?;
        tracing::info!(
            session = %order.session, from = order.from, to = order.to,
            new_holders = order.new_holders.len(), new_threshold = order.new_threshold,
            "share sub-dealt to the new quorum"
        );
        Ok(SignedEnvelope::seal(&held.key, &deal))
    })
    .await?;
    Ok(wire::encode(&Reply::ok(deal)))
}

/// New holder: check the relayed sub-dealings, keep the good sub-shares in memory, and answer
/// the [`protocols::wire::SubShareReport`] signed by this holder.
pub(super) async fn sub_shares(
    shared: &Arc<Shared>,
    envelope: &SignedEnvelope,
) -> Result<Vec<u8>, Refusal> {
    let order: SubShares = envelope
        .open(&shared.coordinator)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let held = shared.clone();
    let report = blocking(move || {
        let me = held.key.node_id();
        let mut pending = held.redistributions.lock().map_err(|_| Refusal::Internal)?;
        let report = pending
            .check_sub_shares(&held.share_key, &me, &order, super::now_ms(), &mut rng())
            .map_err(refusal)?;
        drop(pending);
        for c in &report.complaints {
            tracing::warn!(
                session = %order.session, to = order.to, dealer = c.deal.dealer,
                reason = ?c.reason, "sub-dealing refused: complaint reported"
            );
        }
        tracing::info!(
            session = %order.session, to = order.to, valid = report.valid.len(),
            complaints = report.complaints.len(), "sub-shares checked"
        );
        Ok(SignedEnvelope::seal(&held.key, &report))
    })
    .await?;
    Ok(wire::encode(&Reply::ok(report)))
}

/// New holder: combine the qualified set's sub-shares, store the new share durably as epoch
/// `to`, answer its [`CombineAck`]. Asked again once stored, answers the same from the store.
pub(super) async fn combine(
    shared: &Arc<Shared>,
    envelope: &SignedEnvelope,
) -> Result<Vec<u8>, Refusal> {
    let order: Combine = envelope
        .open(&shared.coordinator)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let held = shared.clone();
    let ack = blocking(move || {
        let me = held.key.node_id();
        let combined = held
            .redistributions
            .lock()
            .map_err(|_| Refusal::Internal)?
            .combine(&held.share_key, &me, &order, super::now_ms(), &mut rng());
        let combined = match combined {
            Ok(c) => c,
            Err(RedistributionError::NothingPending) => return stored_ack(&held, &order),
            Err(e) => return Err(refusal(e)),
        };
        let ack = combined.ack.clone();
        let share = HeldShare::Boxed(BoxedShare {
            slot: combined.slot,
            boxed: combined.boxed,
            commitments: combined.commitments,
        });
        match held.store.put_held(&share, order.expires_at_ms) {
            Ok(PutOutcome::Stored | PutOutcome::AlreadyStored) => {}
            // Stored by an earlier Combine whose answer was lost: answer from the store.
            Err(StoreError::Conflict { .. }) => return stored_ack(&held, &order),
            Err(e) => return Err(store_refusal(e)),
        }
        if let Ok(mut pending) = held.redistributions.lock() {
            pending.forget(&order.session, order.to);
        }
        tracing::info!(
            session = %order.session, epoch = order.to, index = order.index,
            dealers = order.qualified.len(), "new share combined and stored"
        );
        Ok(ack)
    })
    .await?;
    Ok(wire::encode(&Reply::ok(ack)))
}

/// The acknowledgement of a share already stored for the order's slot (a repeated `Combine`).
fn stored_ack(shared: &Shared, order: &Combine) -> Result<CombineAck, Refusal> {
    let stored = shared
        .store
        .get(&order.session, order.to)
        .map_err(store_refusal)?
        .ok_or(Refusal::NotFound)?;
    match stored.share {
        HeldShare::Boxed(b)
            if b.slot.index == order.index && b.slot.holder == shared.key.node_id() =>
        {
            if let Ok(mut pending) = shared.redistributions.lock() {
                pending.forget(&order.session, order.to);
            }
            ack_from_stored(&b.slot, &b.commitments).map_err(refusal)
        }
        _ => Err(Refusal::Malformed(
            "another share is stored for this epoch".into(),
        )),
    }
}
