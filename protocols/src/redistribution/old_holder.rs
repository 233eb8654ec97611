//! An old holder's step (2. "Sub-dealing"): open its stored share, check it against the old
//! commitments, sub-deal it onto the new quorum, box each sub-share to its new holder and wipe
//! the sub-shares. Asked again, it deals afresh (the new holders keep the dealing `Combine`
//! names by its hash).

use super::{RedistributionError, check_new_quorum, dealing_digest, sub_context};
use crate::holder_box::open_at_holder;
use crate::ids::ShareIndex;
use crate::sealing::ShareSlot;
use crate::share_box::{self, BoxSecret, Boxed};
use crate::sharing::Commitments;
use crate::sharing::redistribute::sub_deal;
use crate::wire::{Redeal, SealedSubShare, SubDeal, WIRE_VERSION_2};
use zeroize::Zeroizing;

/// Answers `redeal` for the share this holder stored for `slot` (`stored`, checked against
/// `stored_commitments` when it was stored): a [`SubDeal`] to sign and send back. The share and
/// every sub-share live only inside this call and are wiped before it returns.
pub fn answer_redeal<R: rand_core::CryptoRng + ?Sized>(
    share_key: &BoxSecret,
    slot: &ShareSlot,
    stored: &Boxed,
    stored_commitments: &Commitments,
    redeal: &Redeal,
    rng: &mut R,
) -> Result<SubDeal, RedistributionError> {
    if redeal.session != slot.session || redeal.from != slot.epoch {
        return Err(RedistributionError::BadOrder(format!(
            "the order is for session {} epoch {}, the stored share of session {} epoch {}",
            redeal.session, redeal.from, slot.session, slot.epoch
        )));
    }
    if redeal.from.checked_add(1) != Some(redeal.to) {
        return Err(RedistributionError::BadOrder(format!(
            "epoch {} does not follow epoch {}",
            redeal.to, redeal.from
        )));
    }
    if &redeal.old_commitments != stored_commitments {
        return Err(RedistributionError::OldCommitmentsDiffer);
    }
    check_new_quorum(&redeal.new_holders, redeal.new_threshold)?;
    // s_i, checked against the old commitments (s_i·G == P_i); wiped on drop.
    let share = open_at_holder(share_key, slot, stored, stored_commitments)?;
    let indices: Vec<ShareIndex> = redeal.new_holders.iter().map(|h| h.index).collect();
    // g_i's sub-shares are wiped when `dealing` drops (its coefficients inside `split`).
    let dealing = sub_deal(&share, &indices, usize::from(redeal.new_threshold), rng)?;
    let digest = dealing_digest(&dealing.commitments);
    let mut sub_shares = Vec::with_capacity(redeal.new_holders.len());
    for (holder, sub) in redeal.new_holders.iter().zip(&dealing.sub_shares) {
        debug_assert_eq!(holder.index, sub.index());
        let context = sub_context(
            &redeal.session,
            redeal.to,
            share.index(),
            holder.index,
            &digest,
        );
        let value = Zeroizing::new(sub.value_bytes());
        sub_shares.push(SealedSubShare {
            index: holder.index,
            boxed: share_box::box_to(&holder.share_key, &context, &value, rng)?,
        });
    }
    Ok(SubDeal {
        v: WIRE_VERSION_2,
        session: redeal.session,
        to: redeal.to,
        dealer: share.index(),
        commitments: dealing.commitments.clone(),
        sub_shares,
    })
}
