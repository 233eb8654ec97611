//! Rotation by redistribution, the holders' side (docs/protocol/redistribution.md, "Rotation by
//! redistribution"), sans I/O: what an old holder answers a [`Redeal`](crate::wire::Redeal)
//! with ([`old_holder`]), what a new holder checks, keeps and combines ([`new_holder`]), and the
//! public judgement of a new holder's complaint ([`judge_complaint`]) for the coordinator.
//! The math is [`crate::sharing::redistribute`]; this module binds it to boxes, contexts and
//! messages.

pub mod new_holder;
pub mod old_holder;

use crate::holder_box::HolderBoxError;
use crate::ids::{Epoch, SessionId, ShareIndex};
use crate::share_box::{self, BoxError, BoxPublic};
use crate::sharing::redistribute::check_dealing;
use crate::sharing::{Commitments, SharingError, UnverifiedShare};
use crate::wire::{Complaint, ComplaintReason, NewHolder, SubDeal, WireError};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use thiserror::Error;

pub use crate::wire::MAX_REDEAL_HOLDERS;

const SUB_LABEL: &[u8] = b"sub";

/// `SHA-256(D_i)`: the hash of a sub-dealing's commitments (their 32-byte encodings, in order),
/// which names the dealing in the sub-share contexts, the reports and `Combine`.
pub fn dealing_digest(commitments: &Commitments) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in &commitments.0 {
        h.update(c.0);
    }
    h.finalize().into()
}

/// The context a sub-share `g_i(y_j)` is boxed to new holder `j` under:
/// `"sub" ‖ session ‖ to (u32 BE) ‖ x_i ‖ y_j ‖ SHA-256(D_i)`.
pub fn sub_context(
    session: &SessionId,
    to: Epoch,
    dealer: ShareIndex,
    index: ShareIndex,
    digest: &[u8; 32],
) -> Vec<u8> {
    [
        SUB_LABEL,
        &session.0,
        &to.to_be_bytes(),
        &[dealer, index],
        digest,
    ]
    .concat()
}

/// Why a redistribution order was refused. A refusal names what is wrong; none carries a share.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedistributionError {
    /// The order is not for this share, holder or epoch, or its fields are inconsistent.
    #[error("order refused: {0}")]
    BadOrder(String),
    /// The order's old commitments are not those this holder's share was stored with.
    #[error("the order's old commitments are not those of the stored share")]
    OldCommitmentsDiffer,
    /// This holder's own stored share does not open or fails its commitments.
    #[error("the stored share: {0}")]
    StoredShare(#[from] HolderBoxError),
    /// Splitting, checking or combining failed.
    #[error(transparent)]
    Sharing(#[from] SharingError),
    /// Boxing failed (a new holder's share key is not a valid point).
    #[error("box: {0}")]
    Box(#[from] BoxError),
    /// A relayed sub-dealing is not a valid signed [`SubDeal`] of this redistribution.
    #[error("relayed sub-dealing {position} refused: {why}")]
    BadDeal {
        /// Its position in the order.
        position: usize,
        /// Why.
        why: String,
    },
    /// No sub-shares of this redistribution are pending here.
    #[error("no sub-shares of this redistribution are pending here")]
    NothingPending,
    /// `Combine` names a dealing this holder did not keep.
    #[error("dealing of dealer {dealer} named by the qualified set is not kept here")]
    MissingDealing {
        /// The dealer.
        dealer: ShareIndex,
    },
    /// As many redistributions as allowed are pending here.
    #[error("{cap} redistributions are pending here already")]
    TooManyPending {
        /// The cap.
        cap: usize,
    },
}

impl From<WireError> for RedistributionError {
    fn from(e: WireError) -> Self {
        RedistributionError::BadOrder(e.to_string())
    }
}

/// Checks a new quorum: 1..=[`MAX_REDEAL_HOLDERS`] holders, distinct nodes and non-zero
/// indices, valid share keys, `2 ≤ k' ≤ n'`.
pub(crate) fn check_new_quorum(
    holders: &[NewHolder],
    new_threshold: u8,
) -> Result<(), RedistributionError> {
    if holders.len() > MAX_REDEAL_HOLDERS {
        return Err(RedistributionError::BadOrder(format!(
            "{} new holders, at most {MAX_REDEAL_HOLDERS}",
            holders.len()
        )));
    }
    crate::sharing::check_parameters(holders.len(), usize::from(new_threshold))?;
    let mut nodes = BTreeSet::new();
    let mut indices = BTreeSet::new();
    for h in holders {
        if h.index == 0 {
            return Err(SharingError::ZeroIndex.into());
        }
        if !indices.insert(h.index) {
            return Err(SharingError::DuplicateIndex { index: h.index }.into());
        }
        if !nodes.insert(h.node) {
            return Err(RedistributionError::BadOrder(format!(
                "new holder {} appears twice",
                h.node.short()
            )));
        }
        h.share_key.check()?;
    }
    Ok(())
}

/// Who a complaint shows at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The complaint is justified: the dealer dealt badly (`bad_share`).
    DealerAtFault,
    /// The complaint is not justified: the complaining holder is at fault (`bad_report`).
    ComplainerAtFault,
}

/// Judges a complaint of the new holder of index `index` (share key `holder_key`) against the
/// signed sub-dealing `deal`, publicly: from the old commitments, the dealing and, for a box
/// that does not open or fails, the holder's reveal (checked by its proof before it is used).
pub fn judge_complaint(
    old: &Commitments,
    new_threshold: u8,
    deal: &SubDeal,
    index: ShareIndex,
    holder_key: &BoxPublic,
    complaint: &Complaint,
) -> Verdict {
    use Verdict::*;
    let digest = dealing_digest(&deal.commitments);
    if complaint.deal.dealer != deal.dealer || complaint.deal.digest != digest {
        // About another dealing than the one shown.
        return ComplainerAtFault;
    }
    let commitments_bad = deal.commitments.threshold() != usize::from(new_threshold)
        || crate::sharing::redistribute::public_share(&deal.commitments, 1).is_err();
    let fault = |dealer_bad: bool| {
        if dealer_bad {
            DealerAtFault
        } else {
            ComplainerAtFault
        }
    };
    let boxed = deal.sub_shares.iter().find(|s| s.index == index);
    match complaint.reason {
        ComplaintReason::NotOfItsShare => {
            fault(check_dealing(old, deal.dealer, &deal.commitments).is_err())
        }
        ComplaintReason::BadCommitments => fault(commitments_bad),
        ComplaintReason::NoSubShare => fault(boxed.is_none()),
        ComplaintReason::DoesNotOpen | ComplaintReason::FailsCommitments => {
            let (Some(sealed), Some(reveal)) = (boxed, complaint.reveal.as_ref()) else {
                return fault(boxed.is_none());
            };
            let context = sub_context(&deal.session, deal.to, deal.dealer, index, &digest);
            match share_box::open_revealed(holder_key, &context, &sealed.boxed, reveal) {
                Err(BoxError::DoesNotOpen) => DealerAtFault,
                Err(_) => ComplainerAtFault,
                Ok(value) => fault(
                    commitments_bad
                        || UnverifiedShare::new(index, *value)
                            .verify(&deal.commitments)
                            .is_err(),
                ),
            }
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
