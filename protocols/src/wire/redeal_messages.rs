//! The messages of rotation by redistribution (wire version 2, docs/protocol/redistribution.md,
//! "Rotation by redistribution"): the coordinator asks each old holder to sub-deal its share
//! ([`Redeal`]), an old holder answers with its signed sub-dealing ([`SubDeal`]), the
//! coordinator relays the sub-dealings to each new holder ([`SubShares`]), a new holder reports
//! which it could check ([`SubShareReport`]) and, told the qualified set ([`Combine`]), combines
//! its new share and acknowledges with its public share ([`CombineAck`]).

use super::codec::{Versioned, WIRE_VERSION_2};
use super::envelope::{SignedEnvelope, SignedPayload};
use super::messages::Reply;
use crate::ids::{Epoch, NodeId, SessionId, ShareIndex};
use crate::share_box::{BoxPublic, Boxed, Reveal};
use crate::sharing::Commitments;
use serde::{Deserialize, Serialize};

/// Most old holders (dealers) and most new holders one redistribution takes: it bounds every
/// message below (a [`SubShares`] carries one sub-dealing per dealer, each with one box per new
/// holder). A session with more holders rotates by dealing again.
pub const MAX_REDEAL_HOLDERS: usize = 32;

/// A new holder as the old holders deal to it: its node, its new index `y_j` and the share key
/// its sub-shares are boxed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct NewHolder {
    /// The node.
    pub node: NodeId,
    /// Its index in the new epoch.
    pub index: ShareIndex,
    /// Its share key (from its attestation).
    pub share_key: BoxPublic,
}

/// Coordinator → old holder: sub-deal your share of epoch `from` onto the new holders of epoch
/// `to` (= `from + 1`) with threshold `new_threshold`. Answered with a signed [`SubDeal`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Redeal {
    /// Wire version (2).
    pub v: u16,
    /// The session.
    pub session: SessionId,
    /// The epoch whose share is sub-dealt.
    pub from: Epoch,
    /// The epoch being made.
    pub to: Epoch,
    /// The new threshold `k'`.
    pub new_threshold: u8,
    /// The new quorum, at most [`MAX_REDEAL_HOLDERS`].
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub new_holders: Vec<NewHolder>,
    /// The commitments of epoch `from` (the holder checks they are the ones its share was
    /// stored with).
    pub old_commitments: Commitments,
}

impl SignedPayload for Redeal {
    const CONTEXT: &'static [u8] = b"entroshard/v2/redeal";
    // 32 new holders of about 110 bytes, 255 commitments of 34.
    const MAX_BYTES: usize = 16 * 1024;
}

/// One sub-share boxed to the new holder of index `index` under
/// [`crate::redistribution::sub_context`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SealedSubShare {
    /// The new holder's index `y_j`.
    pub index: ShareIndex,
    /// `g_i(y_j)`, boxed to that holder's share key.
    pub boxed: Boxed,
}

/// Old holder → coordinator (signed by the old holder; relayed unchanged to the new holders):
/// its sub-dealing of its share onto the new quorum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SubDeal {
    /// Wire version (2).
    pub v: u16,
    /// The session.
    pub session: SessionId,
    /// The epoch being made.
    pub to: Epoch,
    /// The dealer's index `x_i` in epoch `to − 1`.
    pub dealer: ShareIndex,
    /// Feldman commitments `D_i` of the dealer's polynomial `g_i`; `D_i0` is its public share.
    pub commitments: Commitments,
    /// One box per new holder.
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub sub_shares: Vec<SealedSubShare>,
}

impl SignedPayload for SubDeal {
    const CONTEXT: &'static [u8] = b"entroshard/v2/sub-deal";
    // 32 commitments of 34 bytes and 32 boxes of about 90.
    const MAX_BYTES: usize = 8 * 1024;
}

/// Coordinator → new holder: the signed sub-dealings of every dealer that passed the public
/// check, each carrying (among its boxes) the one for this holder. Answered with a signed
/// [`SubShareReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SubShares {
    /// Wire version (2).
    pub v: u16,
    /// The session.
    pub session: SessionId,
    /// The epoch being made.
    pub to: Epoch,
    /// This holder.
    pub holder: NodeId,
    /// This holder's index `y_j` in epoch `to`.
    pub index: ShareIndex,
    /// The new threshold `k'` (every dealing has `k'` commitments).
    pub new_threshold: u8,
    /// The commitments of epoch `to − 1`.
    pub old_commitments: Commitments,
    /// Signed [`SubDeal`]s, at most [`MAX_REDEAL_HOLDERS`], one per dealer.
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub deals: Vec<SignedEnvelope>,
}

impl SignedPayload for SubShares {
    const CONTEXT: &'static [u8] = b"entroshard/v2/sub-shares";
    // 32 signed sub-dealings of at most 8 KiB, their envelopes, the old commitments.
    const MAX_BYTES: usize = MAX_SUB_SHARES_BYTES;
}

/// Upper bound of an encoded [`SubShares`] (and of the holder order carrying it).
pub const MAX_SUB_SHARES_BYTES: usize = MAX_REDEAL_HOLDERS * (8 * 1024 + 256) + 16 * 1024;

/// Which sub-dealing of a dealer: its index and `SHA-256(D_i)`
/// ([`crate::redistribution::dealing_digest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DealRef {
    /// The dealer's old index `x_i`.
    pub dealer: ShareIndex,
    /// `SHA-256(D_i)`.
    #[serde(with = "serde_bytes")]
    pub digest: [u8; 32],
}

/// Why a new holder refuses a dealer's sub-dealing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[non_exhaustive]
pub enum ComplaintReason {
    /// `D_i0` is not the dealer's public share `P_i` under the old commitments.
    NotOfItsShare,
    /// The dealing has not `k'` valid commitments.
    BadCommitments,
    /// The dealing carries no box for this holder.
    NoSubShare,
    /// The box for this holder does not open with its share key under the sub-share context.
    DoesNotOpen,
    /// The sub-share opened but fails the dealer's commitments.
    FailsCommitments,
}

/// A new holder's complaint against one dealer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Complaint {
    /// The dealing complained of.
    pub deal: DealRef,
    /// Why.
    pub reason: ComplaintReason,
    /// Where the complaint is about this holder's box (it does not open, or fails the
    /// commitments): the box's shared point with a Chaum–Pedersen proof, so that anyone can open
    /// the box and see for themselves ([`crate::share_box::open_revealed`]).
    pub reveal: Option<Reveal>,
}

/// New holder → coordinator (signed by the new holder): the dealings it checked and kept, and
/// its complaints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SubShareReport {
    /// Wire version (2).
    pub v: u16,
    /// The session.
    pub session: SessionId,
    /// The epoch being made.
    pub to: Epoch,
    /// The reporting holder's index `y_j`.
    pub index: ShareIndex,
    /// The dealings whose sub-share opened and matched its commitments.
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub valid: Vec<DealRef>,
    /// The dealings refused, and why.
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub complaints: Vec<Complaint>,
}

impl SignedPayload for SubShareReport {
    const CONTEXT: &'static [u8] = b"entroshard/v2/sub-share-report";
    // 32 references of 36 bytes and 32 complaints of about 140.
    const MAX_BYTES: usize = 8 * 1024;
}

/// Coordinator → new holder: combine the sub-shares of the qualified set `qualified` (exactly
/// the old threshold of dealings) into your share of epoch `to` and store it durably until
/// `expires_at_ms`. Answered with a [`CombineAck`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Combine {
    /// Wire version (2).
    pub v: u16,
    /// The session.
    pub session: SessionId,
    /// The epoch being made.
    pub to: Epoch,
    /// This holder.
    pub holder: NodeId,
    /// This holder's index `y_j`.
    pub index: ShareIndex,
    /// The qualified set `Q` (the old threshold of dealings, at most [`MAX_REDEAL_HOLDERS`]).
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub qualified: Vec<DealRef>,
    /// When the session expires, unix milliseconds; the holder may drop the share after.
    pub expires_at_ms: u64,
}

impl SignedPayload for Combine {
    const CONTEXT: &'static [u8] = b"entroshard/v2/combine";
    // 32 references of 36 bytes.
    const MAX_BYTES: usize = 4 * 1024;
}

/// New holder → coordinator: its share of (session, epoch) is combined, checked and on disk;
/// `public_share` is `s'_j·G` (the coordinator checks it against the new commitments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CombineAck {
    /// The session.
    pub session: SessionId,
    /// The new epoch.
    pub epoch: Epoch,
    /// The holder's index.
    pub index: ShareIndex,
    /// `s'_j·G`, compressed.
    #[serde(with = "serde_bytes")]
    pub public_share: [u8; 32],
    /// The new epoch's commitments `C'` (as the holder computed and stored them).
    pub commitments: Commitments,
}

/// Old holder → coordinator: a [`SubDeal`] signed by the old holder, or a refusal.
pub type SubDealReply = Reply<SignedEnvelope>;
/// New holder → coordinator: a [`SubShareReport`] signed by the new holder, or a refusal.
pub type SubShareReportReply = Reply<SignedEnvelope>;
/// New holder → coordinator: its [`CombineAck`], or a refusal.
pub type CombineReply = Reply<CombineAck>;

macro_rules! versioned_2 {
    ($($t:ty),* $(,)?) => {
        $(impl Versioned for $t {
            const VERSION: u16 = WIRE_VERSION_2;
            fn version(&self) -> u16 {
                self.v
            }
        })*
    };
}

versioned_2!(Redeal, SubDeal, SubShares, SubShareReport, Combine);

#[cfg(test)]
#[path = "redeal_messages_tests.rs"]
mod tests;
