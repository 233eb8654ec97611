//! The messages of holder-boxed shares (wire version 2, docs/protocol/redistribution.md): a
//! store order carrying a share boxed to its holder with the commitments it must match, and a
//! fetch carrying the requester's reply key, answered with the share boxed again to that key.
//! The version-1 messages they replace stay beside them for sessions dealt before (sealed under
//! the coordinator's master key) until those are re-dealt.

use super::codec::{Versioned, WIRE_VERSION_2};
use super::envelope::{SignedEnvelope, SignedPayload};
use super::messages::Reply;
use crate::ids::ShareIndex;
use crate::sealing::{SealedShare, ShareSlot};
use crate::share_box::{BoxPublic, Boxed};
use crate::sharing::Commitments;
use serde::{Deserialize, Serialize};

/// Coordinator → holder: store this share, boxed to the holder's share key under the slot's
/// context, durably until told otherwise. The holder opens it and checks it against
/// `commitments` first (a share that fails is refused: [`super::Refusal::BadShare`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreBoxedShare {
    /// Wire version (2).
    pub v: u16,
    /// The slot; it names this holder.
    pub slot: ShareSlot,
    /// The share, boxed to the holder under [`crate::holder_box::slot_context`].
    pub boxed: Boxed,
    /// The epoch's Feldman commitments.
    pub commitments: Commitments,
    /// When the session expires, unix milliseconds; the holder may drop the share after.
    pub expires_at_ms: u64,
}

impl Versioned for StoreBoxedShare {
    const VERSION: u16 = WIRE_VERSION_2;
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for StoreBoxedShare {
    const CONTEXT: &'static [u8] = b"entroshard/v2/store-boxed-share";
    // 255 commitments of 32 bytes, the slot and the box.
    const MAX_BYTES: usize = 12 * 1024;
}

/// Requester → holder over QUIC: the share the ticket names, boxed to `reply_key` (fresh for
/// this fetch; the requester wipes its secret once the key is rebuilt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxedFetch {
    /// Wire version (2).
    pub v: u16,
    /// The coordinator-signed ticket, as issued.
    pub ticket: SignedEnvelope,
    /// The requester's key for this fetch.
    pub reply_key: BoxPublic,
}

impl Versioned for BoxedFetch {
    const VERSION: u16 = WIRE_VERSION_2;
    fn version(&self) -> u16 {
        self.v
    }
}

/// A share as a holder answers a [`BoxedFetch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchedShare {
    /// The holder's share, opened and boxed again to the fetch's reply key under
    /// [`crate::holder_box::fetch_context`].
    Reboxed {
        /// The share's index.
        index: ShareIndex,
        /// The box.
        boxed: Boxed,
    },
    /// A share dealt before holder share keys, sealed under the coordinator's master key: the
    /// holder cannot open it and serves it as stored (opened with the grant's opening key).
    Sealed(SealedShare),
}

/// Holder → requester: the fetched share or a typed refusal.
pub type BoxedFetchReply = Reply<FetchedShare>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;
    use crate::ids::{NodeId, SessionId};
    use crate::share_box::BoxSecret;
    use crate::sharing::CommitmentBytes;
    use crate::wire::{MAX_MESSAGE_BYTES, WireError, decode, encode};

    fn order() -> StoreBoxedShare {
        let key = BoxSecret::from_uniform_bytes(&[1; 64]).public();
        StoreBoxedShare {
            v: WIRE_VERSION_2,
            slot: ShareSlot {
                session: SessionId([1; 16]),
                epoch: 2,
                holder: NodeId([3; 32]),
                index: 4,
            },
            boxed: crate::share_box::box_to(&key, b"ctx", &[5; 32], &mut getrandom_free_rng())
                .unwrap(),
            commitments: Commitments(vec![CommitmentBytes([6; 32]); 3]),
            expires_at_ms: 7,
        }
    }

    /// A deterministic generator for the test (no OS randomness in this crate).
    fn getrandom_free_rng() -> chacha20::ChaCha20Rng {
        use rand_core::SeedableRng;
        chacha20::ChaCha20Rng::from_seed([9; 32])
    }

    #[test]
    fn a_boxed_store_order_round_trips_signed_and_refuses_version_1() {
        let coordinator = NodeKey::from_secret_bytes(&[2; 32]);
        let envelope = SignedEnvelope::seal(&coordinator, &order());
        let opened: StoreBoxedShare = envelope.open(&coordinator.node_id()).unwrap();
        assert_eq!(opened, order());
        let old = StoreBoxedShare { v: 1, ..order() };
        assert_eq!(
            decode::<StoreBoxedShare>(&encode(&old), MAX_MESSAGE_BYTES),
            Err(WireError::UnknownVersion {
                found: 1,
                supported: WIRE_VERSION_2
            })
        );
    }

    #[test]
    fn a_boxed_fetch_refuses_truncated_oversized_and_version_1_input_without_panicking() {
        let coordinator = NodeKey::from_secret_bytes(&[2; 32]);
        let fetch = BoxedFetch {
            v: WIRE_VERSION_2,
            ticket: SignedEnvelope::seal(&coordinator, &order()),
            reply_key: BoxSecret::from_uniform_bytes(&[3; 64]).public(),
        };
        let bytes = encode(&fetch);
        assert_eq!(
            decode::<BoxedFetch>(&bytes, MAX_MESSAGE_BYTES).unwrap(),
            fetch
        );
        for cut in 0..bytes.len() {
            assert!(decode::<BoxedFetch>(&bytes[..cut], MAX_MESSAGE_BYTES).is_err());
        }
        assert!(matches!(
            decode::<BoxedFetch>(&bytes, bytes.len() - 1),
            Err(WireError::Oversized { .. })
        ));
        let v1 = encode(&crate::wire::ShareFetch {
            v: 1,
            ticket: fetch.ticket.clone(),
        });
        assert!(decode::<BoxedFetch>(&v1, MAX_MESSAGE_BYTES).is_err());
        assert_eq!(crate::wire::probe_version(&v1, MAX_MESSAGE_BYTES), Ok(1));
        assert_eq!(crate::wire::probe_version(&bytes, MAX_MESSAGE_BYTES), Ok(2));
    }

    #[test]
    fn a_fetched_share_reply_round_trips_both_kinds() {
        let reboxed = BoxedFetchReply::ok(FetchedShare::Reboxed {
            index: 3,
            boxed: order().boxed,
        });
        let bytes = encode(&reboxed);
        assert_eq!(
            decode::<BoxedFetchReply>(&bytes, MAX_MESSAGE_BYTES).unwrap(),
            reboxed
        );
        let refused = BoxedFetchReply::refused(crate::wire::Refusal::BadShare("x".into()));
        let bytes = encode(&refused);
        assert_eq!(
            decode::<BoxedFetchReply>(&bytes, MAX_MESSAGE_BYTES).unwrap(),
            refused
        );
    }
}
