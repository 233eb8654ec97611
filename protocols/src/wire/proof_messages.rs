//! The messages of holder audits by proof of possession (wire version 2,
//! docs/protocol/holder-audits.md): the coordinator's signed `ProveShare` order, with a fresh
//! challenge and whether the epoch is to be deleted once proven, and the holder's answer.

use super::codec::{Versioned, WIRE_VERSION_2};
use super::envelope::SignedPayload;
use super::messages::Reply;
use crate::ids::{Epoch, SessionId, ShareIndex};
use crate::share_proof::{ProofContext, ShareProof};
use serde::{Deserialize, Serialize};

/// Coordinator → holder: prove you hold your share of `(session, epoch)` over `challenge`;
/// with `then_delete`, delete that epoch once the proof is made (a superseded epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProveShare {
    /// Wire version (2).
    pub v: u16,
    /// The session.
    pub session: SessionId,
    /// The epoch.
    pub epoch: Epoch,
    /// 32 fresh random bytes, one per order.
    #[serde(with = "serde_bytes")]
    pub challenge: [u8; 32],
    /// Delete the epoch once it is proven.
    pub then_delete: bool,
}

impl Versioned for ProveShare {
    const VERSION: u16 = WIRE_VERSION_2;
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for ProveShare {
    const CONTEXT: &'static [u8] = b"entroshard/v2/prove-share";
    const MAX_BYTES: usize = 1024;
}

/// Holder → coordinator: the proof for the share of `index`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProvenShare {
    /// The session.
    pub session: SessionId,
    /// The epoch.
    pub epoch: Epoch,
    /// The share's index (the coordinator checks it against its own record).
    pub index: ShareIndex,
    /// The proof.
    pub proof: ShareProof,
}

impl ProveShare {
    /// What a proof answering this order for share `index` is about.
    pub fn context(&self, index: ShareIndex) -> ProofContext {
        ProofContext {
            session: self.session,
            epoch: self.epoch,
            index,
            challenge: self.challenge,
        }
    }
}

/// Holder → coordinator: a [`ProvenShare`], or a refusal.
pub type ProveShareReply = Reply<ProvenShare>;
