//! Shares boxed to their holders (docs/protocol/redistribution.md, "Birth" and "Fetch"): the
//! contexts a box is bound to, the dealing once its shares are boxed ([`BoxedDealing`]: only
//! ciphertexts, no share), what a holder does with a stored box (open and check it, box it
//! again to a requester) and what a requester does with the answer.

use crate::ids::{Epoch, NodeId, SessionId};
use crate::reshare::{Committed, Dealt, Placement, ReshareError};
use crate::sealing::ShareSlot;
use crate::share_box::{self, BoxError, BoxPublic, BoxSecret, Boxed};
use crate::sharing::{Commitments, SharingError, UnverifiedShare, VerifiedShare};
use std::collections::BTreeSet;
use thiserror::Error;
use zeroize::Zeroizing;

const SLOT_LABEL: &[u8] = b"slot";
const FETCH_LABEL: &[u8] = b"fetch";

/// The context a share is boxed to its holder under: `"slot" ‖ session ‖ epoch ‖ holder ‖ index`.
pub fn slot_context(slot: &ShareSlot) -> Vec<u8> {
    [SLOT_LABEL, &slot.associated_data()].concat()
}

/// The context a holder boxes a share to a requester under: `"fetch" ‖ slot ‖ ticket nonce ‖
/// PK_r`, so the box answers this one fetch only.
pub fn fetch_context(slot: &ShareSlot, ticket_nonce: &[u8; 16], reply_key: &BoxPublic) -> Vec<u8> {
    [
        FETCH_LABEL,
        &slot.associated_data(),
        ticket_nonce,
        &reply_key.0,
    ]
    .concat()
}

/// Why a boxed share was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HolderBoxError {
    /// The box does not open (wrong key or context, tampered bytes, a bad point).
    #[error("box does not open: {0}")]
    Box(#[from] BoxError),
    /// The opened share fails the commitments.
    #[error("share fails the commitments: {0}")]
    Commitments(#[from] SharingError),
    /// A holder of the dealing has no share key.
    #[error("holder {0} has no share key")]
    NoShareKey(NodeId),
    /// The dealing was refused.
    #[error(transparent)]
    Dealing(#[from] ReshareError),
}

/// One holder's share, boxed to its share key under its slot's context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedToHolder {
    /// The holder and its index.
    pub placement: Placement,
    /// The box.
    pub boxed: Boxed,
}

/// An epoch dealt and boxed to its holders, waiting for durable acknowledgements. It holds
/// ciphertexts and public commitments only: the shares were wiped when [`Dealt`] was consumed.
#[derive(Debug)]
pub struct BoxedDealing {
    session: SessionId,
    epoch: Epoch,
    commitments: Commitments,
    boxes: Vec<SealedToHolder>,
    acked: BTreeSet<NodeId>,
    min_acks: usize,
}

impl Dealt {
    /// Boxes every share to its holder's share key (`key_of`) under its slot's context and wipes
    /// the shares: what is left holds no secret.
    pub fn seal_to_holders<R: rand_core::CryptoRng + ?Sized>(
        self,
        key_of: impl Fn(&NodeId) -> Option<BoxPublic>,
        rng: &mut R,
    ) -> Result<BoxedDealing, HolderBoxError> {
        let (session, epoch) = (self.session(), self.epoch());
        let mut boxes = Vec::with_capacity(self.deliveries().len());
        for (placement, share) in self.deliveries() {
            let key = key_of(&placement.node).ok_or(HolderBoxError::NoShareKey(placement.node))?;
            let slot = ShareSlot {
                session,
                epoch,
                holder: placement.node,
                index: placement.index,
            };
            let value = Zeroizing::new(share.value_bytes());
            let boxed = share_box::box_to(&key, &slot_context(&slot), &value, rng)?;
            boxes.push(SealedToHolder {
                placement: *placement,
                boxed,
            });
        }
        let commitments = self.commitments().clone();
        let min_acks = self.min_acks();
        // `self` and its shares are dropped (and wiped) here.
        Ok(BoxedDealing {
            session,
            epoch,
            commitments,
            boxes,
            acked: BTreeSet::new(),
            min_acks,
        })
    }
}

impl BoxedDealing {
    /// The session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The epoch dealt.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The epoch's commitments.
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }

    /// Each holder's box.
    pub fn boxes(&self) -> &[SealedToHolder] {
        &self.boxes
    }

    /// The slot of `placement` in this dealing.
    pub fn slot(&self, placement: &Placement) -> ShareSlot {
        ShareSlot {
            session: self.session,
            epoch: self.epoch,
            holder: placement.node,
            index: placement.index,
        }
    }

    /// Records a holder's durable-write acknowledgement.
    pub fn acknowledge(&mut self, node: &NodeId) -> Result<(), ReshareError> {
        if !self.boxes.iter().any(|b| &b.placement.node == node) {
            return Err(ReshareError::UnknownHolder(*node));
        }
        self.acked.insert(*node);
        Ok(())
    }

    /// Acknowledgements so far.
    pub fn acknowledged(&self) -> usize {
        self.acked.len()
    }

    /// Commits once `min_acks` holders acknowledged (as [`Dealt::commit`]); holders that never
    /// acknowledged are dropped from the committed set.
    pub fn commit(self) -> Result<Committed, ReshareError> {
        if self.acked.len() < self.min_acks {
            return Err(ReshareError::NotEnoughAcks {
                have: self.acked.len(),
                need: self.min_acks,
            });
        }
        let holders = self
            .boxes
            .iter()
            .map(|b| b.placement)
            .filter(|p| self.acked.contains(&p.node))
            .collect();
        Ok(Committed::new(
            self.session,
            self.epoch,
            holders,
            self.commitments,
        ))
    }
}

/// A holder opens the box it was sent for `slot` and checks the share against `commitments`.
pub fn open_at_holder(
    share_key: &BoxSecret,
    slot: &ShareSlot,
    boxed: &Boxed,
    commitments: &Commitments,
) -> Result<VerifiedShare, HolderBoxError> {
    let value = share_key.open(&slot_context(slot), boxed)?;
    Ok(UnverifiedShare::new(slot.index, *value).verify(commitments)?)
}

/// A holder boxes its stored share again to a requester's `reply_key` for one fetch (the
/// plaintext lives only inside this call).
pub fn rebox_for_fetch<R: rand_core::CryptoRng + ?Sized>(
    share_key: &BoxSecret,
    slot: &ShareSlot,
    stored: &Boxed,
    ticket_nonce: &[u8; 16],
    reply_key: &BoxPublic,
    rng: &mut R,
) -> Result<Boxed, HolderBoxError> {
    let value = share_key.open(&slot_context(slot), stored)?;
    Ok(share_box::box_to(
        reply_key,
        &fetch_context(slot, ticket_nonce, reply_key),
        &value,
        rng,
    )?)
}

/// A requester opens a holder's answer with its fetch secret and checks it against the
/// ticket's commitments.
pub fn open_fetched(
    reply_secret: &BoxSecret,
    slot: &ShareSlot,
    ticket_nonce: &[u8; 16],
    boxed: &Boxed,
    commitments: &Commitments,
) -> Result<VerifiedShare, HolderBoxError> {
    Ok(open_fetched_unverified(reply_secret, slot, ticket_nonce, boxed)?.verify(commitments)?)
}

/// [`open_fetched`] without the check, for a requester that checks with its own
/// [`crate::sharing::ShareChecker`].
pub fn open_fetched_unverified(
    reply_secret: &BoxSecret,
    slot: &ShareSlot,
    ticket_nonce: &[u8; 16],
    boxed: &Boxed,
) -> Result<UnverifiedShare, BoxError> {
    let context = fetch_context(slot, ticket_nonce, &reply_secret.public());
    let value = reply_secret.open(&context, boxed)?;
    Ok(UnverifiedShare::new(slot.index, *value))
}

#[cfg(test)]
#[path = "holder_box_tests.rs"]
mod tests;
