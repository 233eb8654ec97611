//! The orders of a redistribution, as the coordinator makes them from the session record and
//! what came back: `Redeal` to the old holders, `SubShares` and `Combine` to each new holder;
//! and the pending epoch written before them.

use crate::db::{Holder, PendingEpoch, SessionRecord};
use protocols::ids::Epoch;
use protocols::wire::{
    Combine, DealRef, NewHolder, Redeal, SignedEnvelope, SubShares, WIRE_VERSION_2,
};

/// Sub-deal `record`'s epoch onto `new_holders` as epoch `to` with threshold `new_threshold`.
pub(super) fn redeal(
    record: &SessionRecord,
    to: Epoch,
    new_threshold: u8,
    new_holders: &[NewHolder],
) -> Redeal {
    Redeal {
        v: WIRE_VERSION_2,
        session: record.session,
        from: record.epoch,
        to,
        new_threshold,
        new_holders: new_holders.to_vec(),
        old_commitments: record.commitments.clone(),
    }
}

/// The dealings `deals` relayed to new holder `h`.
pub(super) fn sub_shares(
    record: &SessionRecord,
    to: Epoch,
    new_threshold: u8,
    h: &NewHolder,
    deals: &[SignedEnvelope],
) -> SubShares {
    SubShares {
        v: WIRE_VERSION_2,
        session: record.session,
        to,
        holder: h.node,
        index: h.index,
        new_threshold,
        old_commitments: record.commitments.clone(),
        deals: deals.to_vec(),
    }
}

/// Combine the qualified set `qualified` into new holder `h`'s share of epoch `to`.
pub(super) fn combine(
    record: &SessionRecord,
    to: Epoch,
    h: &NewHolder,
    qualified: &[DealRef],
) -> Combine {
    Combine {
        v: WIRE_VERSION_2,
        session: record.session,
        to,
        holder: h.node,
        index: h.index,
        qualified: qualified.to_vec(),
        expires_at_ms: record.expires_at_ms,
    }
}

/// The pending epoch `to` on `new_holders`, written before the first order (its commitments are
/// the old ones: `C'` is known only once the qualified set is fixed; `C_0` is the same).
pub(super) fn pending(
    record: &SessionRecord,
    to: Epoch,
    new_holders: &[NewHolder],
    now_ms: u64,
) -> PendingEpoch {
    PendingEpoch {
        session: record.session,
        epoch: to,
        holders: new_holders
            .iter()
            .map(|h| Holder {
                node: h.node,
                index: h.index,
            })
            .collect(),
        commitments: record.commitments.clone(),
        started_at_ms: now_ms,
    }
}
