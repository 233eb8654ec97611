//! The signed orders the coordinator sends holders: store a share boxed to its holder (or, in
//! tests of sessions dealt before, a sealed one), delete an epoch, prove a share.

use protocols::holder_box::{BoxedDealing, SealedToHolder};
use protocols::identity::NodeKey;
use protocols::ids::{Epoch, SessionId};
use protocols::reshare::Placement;
use protocols::sealing::{self, SealingMasterKey, ShareSlot};
use protocols::sharing::VerifiedShare;
use protocols::wire::{
    self, DeleteShares, HolderCall, HolderOrder, ProveShare, SignedEnvelope, StoreBoxedShare,
    StoreShare, WIRE_VERSION, WIRE_VERSION_2,
};

/// The coordinator's keys an order is made with.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    /// Signs every order.
    pub key: &'a NodeKey,
    /// Derives each share slot's sealing key.
    pub master: &'a SealingMasterKey,
}

impl Signer<'_> {
    /// An encoded `HolderCall` storing `share`, sealed for `placement`'s slot with `nonce`.
    pub fn store_order(
        &self,
        session: SessionId,
        epoch: Epoch,
        placement: &Placement,
        share: &VerifiedShare,
        expires_at_ms: u64,
        nonce: [u8; 12],
    ) -> Vec<u8> {
        let slot = ShareSlot {
            session,
            epoch,
            holder: placement.node,
            index: placement.index,
        };
        let sealed = sealing::seal(
            &self.master.share_key(&slot),
            slot,
            &share.value_bytes(),
            nonce,
        );
        let order = SignedEnvelope::seal(
            self.key,
            &StoreShare {
                v: WIRE_VERSION,
                share: sealed,
                expires_at_ms,
            },
        );
        wire::encode(&HolderCall {
            v: WIRE_VERSION,
            order: HolderOrder::Store(order),
        })
    }

    /// An encoded `HolderCall` storing the share boxed to its holder in `b`.
    pub fn store_boxed_order(
        &self,
        dealing: &BoxedDealing,
        b: &SealedToHolder,
        expires_at_ms: u64,
    ) -> Vec<u8> {
        let order = SignedEnvelope::seal(
            self.key,
            &StoreBoxedShare {
                v: WIRE_VERSION_2,
                slot: dealing.slot(&b.placement),
                boxed: b.boxed.clone(),
                commitments: dealing.commitments().clone(),
                expires_at_ms,
            },
        );
        wire::encode(&HolderCall {
            v: WIRE_VERSION,
            order: HolderOrder::StoreBoxed(order),
        })
    }

    /// An encoded `HolderCall` deleting every share of `session` at `epoch`.
    pub fn delete_order(&self, session: SessionId, epoch: Epoch) -> Vec<u8> {
        let order = SignedEnvelope::seal(
            self.key,
            &DeleteShares {
                v: WIRE_VERSION,
                session,
                epoch,
            },
        );
        wire::encode(&HolderCall {
            v: WIRE_VERSION,
            order: HolderOrder::Delete(order),
        })
    }

    /// An encoded `HolderCall` asking for a proof of the share of `session` at `epoch` over
    /// `challenge`, deleting it once proven if `then_delete`.
    pub fn prove_order(
        &self,
        session: SessionId,
        epoch: Epoch,
        challenge: [u8; 32],
        then_delete: bool,
    ) -> Vec<u8> {
        let order = SignedEnvelope::seal(
            self.key,
            &ProveShare {
                v: WIRE_VERSION_2,
                session,
                epoch,
                challenge,
                then_delete,
            },
        );
        wire::encode(&HolderCall {
            v: WIRE_VERSION,
            order: HolderOrder::ProveShare(order),
        })
    }
}
