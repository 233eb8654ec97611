//! A new holder's steps (5. "Private check", 7. "Combine and store"): check each relayed
//! sub-dealing against the old commitments and its own box against the dealer's commitments,
//! keep the verified sub-shares in memory (bounded in number and age, wiped when dropped)
//! keyed by dealing, report; then combine the qualified set's sub-shares into the new share,
//! check it, and box it to itself for storage. Nothing here is written to disk: the caller
//! stores the [`CombinedShare`] and acknowledges.

use super::{RedistributionError, dealing_digest, sub_context};
use crate::holder_box::slot_context;
use crate::ids::{Epoch, NodeId, SessionId, ShareIndex};
use crate::sealing::ShareSlot;
use crate::share_box::{self, BoxSecret, Boxed};
use crate::sharing::redistribute::{
    check_dealing, combine_sub_shares, combined_commitments, public_share,
};
use crate::sharing::{Commitments, UnverifiedShare, VerifiedShare};
use crate::wire::{
    Combine, CombineAck, Complaint, ComplaintReason, DealRef, MAX_REDEAL_HOLDERS, SubDeal,
    SubShareReport, SubShares, WIRE_VERSION_2,
};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// Most dealings one pending redistribution keeps (a dealer asked twice deals twice).
const MAX_KEPT_DEALINGS: usize = 2 * MAX_REDEAL_HOLDERS;

/// A sub-dealing this holder checked: the dealer's commitments and its sub-share (wiped on drop).
struct KeptDealing {
    commitments: Commitments,
    sub_share: VerifiedShare,
}

/// What a new holder keeps of one redistribution between its report and `Combine`.
struct Pending {
    received_at_ms: u64,
    holder: NodeId,
    index: ShareIndex,
    new_threshold: u8,
    old_commitments: Commitments,
    kept: BTreeMap<DealRef, KeptDealing>,
}

/// The new share, combined and checked, boxed to this holder under its new slot's context:
/// what the holder stores (the same record a boxed store order makes) and acknowledges.
#[derive(Debug)]
pub struct CombinedShare {
    /// The new slot (session, new epoch, this holder, its index).
    pub slot: ShareSlot,
    /// The new share boxed to this holder's share key under [`slot_context`].
    pub boxed: Boxed,
    /// The new epoch's commitments `C'`.
    pub commitments: Commitments,
    /// The acknowledgement to send once stored.
    pub ack: CombineAck,
}

/// The redistributions a new holder is part of, between [`Self::check_sub_shares`] and
/// [`Self::combine`]: at most `cap` at once, each dropped (and its sub-shares wiped) after
/// `max_age_ms`.
pub struct PendingRedistributions {
    pending: BTreeMap<(SessionId, Epoch), Pending>,
    cap: usize,
    max_age_ms: u64,
}

impl std::fmt::Debug for PendingRedistributions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingRedistributions({} pending)", self.pending.len())
    }
}

impl PendingRedistributions {
    /// At most `cap` pending redistributions, each kept at most `max_age_ms`.
    pub fn new(cap: usize, max_age_ms: u64) -> Self {
        Self {
            pending: BTreeMap::new(),
            cap,
            max_age_ms,
        }
    }

    /// How many redistributions are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops (and wipes) the sub-shares of the redistribution of `session` to epoch `to`, once
    /// its new share is stored; `false` if none were pending.
    pub fn forget(&mut self, session: &SessionId, to: Epoch) -> bool {
        self.pending.remove(&(*session, to)).is_some()
    }

    /// Drops (and wipes) what was received more than `max_age_ms` before `now_ms`; returns how
    /// many redistributions were dropped.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let before = self.pending.len();
        let max_age = self.max_age_ms;
        self.pending
            .retain(|_, p| now_ms.saturating_sub(p.received_at_ms) <= max_age);
        before - self.pending.len()
    }

    /// Step 5: checks every relayed sub-dealing of `order` (sent to holder `me`, whose share key
    /// is `share_key`), keeps the sub-shares that pass and reports, to be signed and sent back.
    ///
    /// An order that is not for `me`, or relays a sub-dealing that does not verify as its
    /// signer's [`SubDeal`] of this redistribution, is refused whole (the relay is at fault, not
    /// a dealer). A sub-dealing that verifies but fails a check is a complaint (with the box's
    /// reveal where the box is at issue). A second order for the same redistribution adds its
    /// dealings to those kept (a dealer asked twice deals afresh; `Combine` names which).
    pub fn check_sub_shares<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        share_key: &BoxSecret,
        me: &NodeId,
        order: &SubShares,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<SubShareReport, RedistributionError> {
        check_order(me, order)?;
        self.expire(now_ms);
        let key = (order.session, order.to);
        if !self.pending.contains_key(&key) && self.pending.len() >= self.cap {
            return Err(RedistributionError::TooManyPending { cap: self.cap });
        }
        let deals = open_deals(order)?;
        let mut valid = Vec::new();
        let mut complaints = Vec::new();
        let mut kept = BTreeMap::new();
        for deal in &deals {
            match check_one(share_key, order, deal, rng) {
                Checked::Kept(reference, dealing) => {
                    valid.push(reference);
                    kept.insert(reference, dealing);
                }
                Checked::Refused(complaint) => complaints.push(complaint),
            }
        }
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            received_at_ms: now_ms,
            holder: *me,
            index: order.index,
            new_threshold: order.new_threshold,
            old_commitments: order.old_commitments.clone(),
            kept: BTreeMap::new(),
        });
        let same_round = entry.index == order.index
            && entry.new_threshold == order.new_threshold
            && entry.old_commitments == order.old_commitments;
        if !same_round || entry.kept.len() + kept.len() > MAX_KEPT_DEALINGS {
            // Another round of the same epoch (or too many retries): start over from this one.
            entry.index = order.index;
            entry.new_threshold = order.new_threshold;
            entry.old_commitments = order.old_commitments.clone();
            entry.kept.clear();
        }
        entry.received_at_ms = now_ms;
        entry.kept.extend(kept);
        Ok(SubShareReport {
            v: WIRE_VERSION_2,
            session: order.session,
            to: order.to,
            index: order.index,
            valid,
            complaints,
        })
    }

    /// Step 7: combines the sub-shares of `order`'s qualified set into this holder's new share,
    /// checks it (`C'_0 == C_0`, `s'_j·G` against `C'`) and boxes it to `share_key` for
    /// storage. The pending sub-shares stay until the caller has stored the new share durably
    /// and calls [`Self::forget`] (so a failed write can be retried); on a refusal they stay too
    /// (a corrected `Combine` may follow). A `Combine` repeated after the new share was stored
    /// finds nothing pending: answer it from the store with [`ack_from_stored`].
    pub fn combine<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        share_key: &BoxSecret,
        me: &NodeId,
        order: &Combine,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<CombinedShare, RedistributionError> {
        self.expire(now_ms);
        if &order.holder != me {
            return Err(RedistributionError::BadOrder(
                "the order is addressed to another holder".into(),
            ));
        }
        let key = (order.session, order.to);
        let pending = self
            .pending
            .get(&key)
            .ok_or(RedistributionError::NothingPending)?;
        if pending.index != order.index || &pending.holder != me {
            return Err(RedistributionError::BadOrder(format!(
                "the order names index {}, the sub-shares were for index {}",
                order.index, pending.index
            )));
        }
        let mut dealings = Vec::with_capacity(order.qualified.len());
        let mut subs = Vec::with_capacity(order.qualified.len());
        for reference in &order.qualified {
            let kept = pending
                .kept
                .get(reference)
                .ok_or(RedistributionError::MissingDealing {
                    dealer: reference.dealer,
                })?;
            dealings.push((reference.dealer, &kept.commitments));
            subs.push((reference.dealer, kept.sub_share.clone()));
        }
        let commitments = combined_commitments(&pending.old_commitments, &dealings)?;
        if commitments.threshold() != usize::from(pending.new_threshold) {
            return Err(RedistributionError::BadOrder(format!(
                "the qualified dealings have threshold {}, {} was announced",
                commitments.threshold(),
                pending.new_threshold
            )));
        }
        let share = combine_sub_shares(&subs, &commitments)?;
        drop(subs);
        let slot = ShareSlot {
            session: order.session,
            epoch: order.to,
            holder: *me,
            index: order.index,
        };
        let value = Zeroizing::new(share.value_bytes());
        drop(share);
        let boxed = share_box::box_to(&share_key.public(), &slot_context(&slot), &value, rng)?;
        let ack = ack_from_stored(&slot, &commitments)?;
        Ok(CombinedShare {
            slot,
            boxed,
            commitments,
            ack,
        })
    }
}

/// The acknowledgement of a new share stored for `slot` under `commitments` (it was checked
/// against them before it was stored): for a `Combine` repeated after the share was stored.
pub fn ack_from_stored(
    slot: &ShareSlot,
    commitments: &Commitments,
) -> Result<CombineAck, RedistributionError> {
    Ok(CombineAck {
        session: slot.session,
        epoch: slot.epoch,
        index: slot.index,
        public_share: public_share(commitments, slot.index)?.compress().to_bytes(),
        commitments: commitments.clone(),
    })
}

fn check_order(me: &NodeId, order: &SubShares) -> Result<(), RedistributionError> {
    let bad = |why: String| Err(RedistributionError::BadOrder(why));
    if &order.holder != me {
        return bad("the order is addressed to another holder".into());
    }
    if order.index == 0 || order.to == 0 {
        return bad("index 0 or epoch 0 cannot be redistributed to".into());
    }
    if order.deals.is_empty() || order.deals.len() > MAX_REDEAL_HOLDERS {
        return bad(format!(
            "{} sub-dealings, 1 to {MAX_REDEAL_HOLDERS} expected",
            order.deals.len()
        ));
    }
    if order.new_threshold < crate::sharing::MIN_THRESHOLD
        || order.old_commitments.threshold() < usize::from(crate::sharing::MIN_THRESHOLD)
    {
        return bad("a threshold below 2".into());
    }
    Ok(())
}

/// Verifies every relayed envelope as its signer's [`SubDeal`] of this redistribution, one per
/// dealer.
fn open_deals(order: &SubShares) -> Result<Vec<SubDeal>, RedistributionError> {
    let mut dealers = BTreeSet::new();
    let mut out = Vec::with_capacity(order.deals.len());
    for (position, envelope) in order.deals.iter().enumerate() {
        let refuse = |why: String| RedistributionError::BadDeal { position, why };
        let (_, deal) = envelope
            .open_from_any_signer::<SubDeal>()
            .map_err(|e| refuse(e.to_string()))?;
        if deal.session != order.session || deal.to != order.to {
            return Err(refuse("of another redistribution".into()));
        }
        if !dealers.insert(deal.dealer) {
            return Err(refuse(format!("dealer {} appears twice", deal.dealer)));
        }
        out.push(deal);
    }
    Ok(out)
}

/// What checking one sub-dealing gives.
enum Checked {
    Kept(DealRef, KeptDealing),
    Refused(Complaint),
}

/// Checks one sub-dealing: a kept dealing, or a complaint.
fn check_one<R: rand_core::CryptoRng + ?Sized>(
    share_key: &BoxSecret,
    order: &SubShares,
    deal: &SubDeal,
    rng: &mut R,
) -> Checked {
    let reference = DealRef {
        dealer: deal.dealer,
        digest: dealing_digest(&deal.commitments),
    };
    let complain = |reason, reveal| {
        Checked::Refused(Complaint {
            deal: reference,
            reason,
            reveal,
        })
    };
    if deal.commitments.threshold() != usize::from(order.new_threshold)
        || public_share(&deal.commitments, 1).is_err()
    {
        return complain(ComplaintReason::BadCommitments, None);
    }
    if check_dealing(&order.old_commitments, deal.dealer, &deal.commitments).is_err() {
        return complain(ComplaintReason::NotOfItsShare, None);
    }
    let Some(sealed) = deal.sub_shares.iter().find(|s| s.index == order.index) else {
        return complain(ComplaintReason::NoSubShare, None);
    };
    let context = sub_context(
        &order.session,
        order.to,
        deal.dealer,
        order.index,
        &reference.digest,
    );
    let reveal = |rng: &mut R| share_key.reveal(&sealed.boxed, rng).ok();
    let value = match share_key.open(&context, &sealed.boxed) {
        Ok(value) => value,
        Err(_) => return complain(ComplaintReason::DoesNotOpen, reveal(rng)),
    };
    match UnverifiedShare::new(order.index, *value).verify(&deal.commitments) {
        Ok(sub_share) => Checked::Kept(
            reference,
            KeptDealing {
                commitments: deal.commitments.clone(),
                sub_share,
            },
        ),
        Err(_) => complain(ComplaintReason::FailsCommitments, reveal(rng)),
    }
}
