//! A holder's answer to the coordinator's `ProveShare` (docs/protocol/holder-audits.md): open
//! the stored boxed share with the share key, prove it over the coordinator's challenge without
//! checking it first (the coordinator judges), and, for a superseded epoch, delete it once the
//! proof is made. The share lives only inside the blocking call and is wiped there.

use super::Shared;
use crate::store::HeldShare;
use protocols::holder_box::slot_context;
use protocols::share_proof;
use protocols::wire::{self, ProveShare, ProvenShare, Refusal, Reply, SignedEnvelope};
use std::sync::Arc;

/// Answers a signed [`ProveShare`] with the encoded [`protocols::wire::ProveShareReply`].
pub(super) async fn prove_share(
    shared: &Arc<Shared>,
    envelope: &SignedEnvelope,
) -> Result<Vec<u8>, Refusal> {
    let order: ProveShare = envelope
        .open(&shared.coordinator)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let held = shared.clone();
    let proven = super::redeal::blocking(move || answer(&held, &order)).await?;
    Ok(wire::encode(&Reply::ok(proven)))
}

fn store_failed(e: crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, "share store failed while proving a share");
    Refusal::Internal
}

fn answer(shared: &Shared, order: &ProveShare) -> Result<ProvenShare, Refusal> {
    let stored = shared
        .store
        .get(&order.session, order.epoch)
        .map_err(store_failed)?
        .ok_or(Refusal::NotFound)?;
    let HeldShare::Boxed(b) = stored.share else {
        return Err(Refusal::NotReady(
            "the share of this epoch is sealed under the coordinator's key (dealt before share \
             keys): this holder cannot open it to prove it"
                .into(),
        ));
    };
    let value = shared
        .share_key
        .open(&slot_context(&b.slot), &b.boxed)
        .map_err(|e| {
            // It opened when it was stored: the share key or the store changed since.
            tracing::error!(session = %order.session, epoch = order.epoch, error = %e, "a stored boxed share does not open to be proven");
            Refusal::BadShare(format!("the stored share does not open: {e}"))
        })?;
    let proof = share_proof::prove(
        &order.context(b.slot.index),
        &value,
        &mut super::redeal::rng(),
    )
    .ok_or_else(|| Refusal::BadShare("the stored share is not a scalar".into()))?;
    drop(value);
    if order.then_delete {
        shared
            .store
            .delete_epoch(&order.session, order.epoch)
            .map_err(store_failed)?;
        tracing::debug!(session = %order.session, epoch = order.epoch, "superseded share proven and deleted");
    }
    Ok(ProvenShare {
        session: order.session,
        epoch: order.epoch,
        index: b.slot.index,
        proof,
    })
}
