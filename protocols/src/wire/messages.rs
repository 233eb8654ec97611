//! Every message of the mesh protocols as a versioned serde struct (field `v` = wire version).

use super::codec::Versioned;
use super::envelope::{SignedEnvelope, SignedPayload};
use crate::ids::{Epoch, NodeId, SessionId};
use crate::sealing::SealedShare;
use crate::ticket::{TicketGrant, TicketRefusal};
use serde::{Deserialize, Serialize};

#[macro_export]
#[doc(hidden)]
macro_rules! versioned {
    ($($t:ty),* $(,)?) => {
        $(impl Versioned for $t {
            fn version(&self) -> u16 {
                self.v
            }
        })*
    };
}

/// Whether a device runs on mains or battery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum PowerState {
    /// On mains power.
    Mains,
    /// On battery, with charge in percent.
    Battery {
        /// Charge, 0..=100.
        percent: u8,
    },
}

/// A source's health as reported in heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum SourceState {
    /// Running startup tests.
    Startup,
    /// Passing continuous tests.
    Healthy,
    /// Cut off after a failure.
    CutOff,
}

/// A source line in a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SourceHealth {
    /// Source name.
    pub source: String,
    /// Its state.
    pub state: SourceState,
    /// Raw samples seen.
    pub samples: u64,
    /// Health test failures.
    pub failures: u32,
}

/// Gossip: a peer's status heartbeat. The envelope signer is the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StatusHeartbeat {
    /// Wire version.
    pub v: u16,
    /// Sequence number.
    pub seq: u64,
    /// Time sent, unix milliseconds.
    pub at_ms: u64,
    /// Power supply.
    pub power: PowerState,
    /// Region label.
    pub region: String,
    /// Operator label.
    pub operator: String,
    /// Process uptime, seconds.
    pub uptime_s: u64,
    /// Share slots free in the store.
    pub free_store_slots: u32,
    /// Shares held.
    pub shares_held: u32,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Per-source health.
    pub sources: Vec<SourceHealth>,
    /// The author's membership certificate, a [`crate::membership::MembershipCert`] signed by
    /// the coordinator: forwarding devices relay only what carries a valid one
    /// (docs/protocol/gossip-admission.md). Absent from the encoding when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<SignedEnvelope>,
}

impl SignedPayload for StatusHeartbeat {
    const CONTEXT: &'static [u8] = b"entroshard/v1/heartbeat";
    const MAX_BYTES: usize = 16 * 1024;
}

/// Coordinator → holder: store this sealed share durably until told otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StoreShare {
    /// Wire version.
    pub v: u16,
    /// The sealed share; its slot names this holder.
    pub share: SealedShare,
    /// When the session expires, unix milliseconds; the holder may drop the share after.
    pub expires_at_ms: u64,
}

impl SignedPayload for StoreShare {
    const CONTEXT: &'static [u8] = b"entroshard/v1/store-share";
    const MAX_BYTES: usize = 2 * 1024;
}

/// Holder → coordinator: the share of (session, epoch) is on disk, synced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StoreAck {
    /// The session.
    pub session: SessionId,
    /// The epoch.
    pub epoch: Epoch,
}

/// Holder → coordinator: reply to [`StoreShare`] or [`DeleteShares`].
pub type StoreReply = Reply<StoreAck>;

/// Coordinator → holder: delete the shares of one epoch of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteShares {
    /// Wire version.
    pub v: u16,
    /// Session.
    pub session: SessionId,
    /// Epoch to delete.
    pub epoch: Epoch,
}

impl SignedPayload for DeleteShares {
    const CONTEXT: &'static [u8] = b"entroshard/v1/delete-shares";
    const MAX_BYTES: usize = 1024;
}

/// What a requester asks for when creating a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SessionPolicy {
    /// Shares.
    pub n: u8,
    /// Threshold.
    pub k: u8,
    /// Lifetime, seconds.
    pub ttl_s: u64,
    /// Requesters allowed to fetch (the creator is always allowed).
    pub requesters: Vec<NodeId>,
    /// Free-form label.
    pub label: String,
}

/// Requester → coordinator: create a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SessionCreate {
    /// Wire version.
    pub v: u16,
    /// Requested policy.
    pub policy: SessionPolicy,
}

/// One contributor line in an entropy receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ReceiptLine {
    /// Contributor.
    pub node: NodeId,
    /// Bits credited from it.
    pub credited_bits: u64,
    /// Contributions accepted from it.
    pub blocks: u32,
}

/// Which entropy a session key was derived from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EntropyReceipt {
    /// Contributors and their credit.
    pub contributors: Vec<ReceiptLine>,
    /// Sum of credited bits.
    pub credited_bits: u64,
    /// Blocks that passed the FIPS battery.
    pub blocks_passed: u32,
    /// Blocks rejected (tests failed, clones, replays).
    pub blocks_rejected: u32,
}

/// Coordinator → requester: a new session's first ticket and receipt.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SessionCreated {
    /// Wire version.
    pub v: u16,
    /// Session id.
    pub session: SessionId,
    /// The grant for the creator.
    pub grant: TicketGrant,
    /// Entropy receipt.
    pub receipt: EntropyReceipt,
}

/// Requester → coordinator: a ticket for the current epoch of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TicketRequest {
    /// Wire version.
    pub v: u16,
    /// Session.
    pub session: SessionId,
}

/// Requester → holder over QUIC: the sealed share named by this ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ShareFetch {
    /// Wire version.
    pub v: u16,
    /// The coordinator-signed ticket, as issued.
    pub ticket: SignedEnvelope,
}

/// Every response on our request-response protocols: the payload or a typed refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Reply<T> {
    /// Wire version.
    pub v: u16,
    /// Payload or refusal.
    pub result: Result<T, Refusal>,
}

impl<T> Versioned for Reply<T> {
    fn version(&self) -> u16 {
        self.v
    }
}

impl<T> Reply<T> {
    /// A successful reply.
    pub fn ok(value: T) -> Self {
        Self {
            v: super::WIRE_VERSION,
            result: Ok(value),
        }
    }

    /// A refusal.
    pub fn refused(refusal: Refusal) -> Self {
        Self {
            v: super::WIRE_VERSION,
            result: Err(refusal),
        }
    }
}

/// The encoded refusal a node sends when it is too busy to look at a request.
/// It decodes as a `Reply<T>` for every `T`.
pub fn busy_reply() -> Vec<u8> {
    super::encode(&Reply::<()>::refused(Refusal::RateLimited))
}

/// Holder → requester: the sealed share or a typed refusal.
pub type ShareFetchReply = Reply<SealedShare>;

/// A typed refusal carried on the wire; every handler answers bad input with one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[non_exhaustive]
pub enum Refusal {
    /// The ticket failed a check.
    #[error("ticket refused: {0}")]
    Ticket(TicketRefusal),
    /// The request could not be decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The remote exceeded its request rate.
    #[error("rate limited")]
    RateLimited,
    /// The remote is not allowed to make this request.
    #[error("not authorized")]
    Unauthorized,
    /// The share or session is not here.
    #[error("not found")]
    NotFound,
    /// Storage is full.
    #[error("store full")]
    StoreFull,
    /// Not enough entropy or peers to serve now.
    #[error("not ready: {0}")]
    NotReady(String),
    /// An internal failure; details are in the server's log.
    #[error("internal error")]
    Internal,
    /// A share the holder was sent does not open or fails the commitments sent with it: the
    /// dealing is faulty (text: why).
    #[error("bad share: {0}")]
    BadShare(String),
}

impl Refusal {
    /// A short stable label for metrics and logs (`ticket_expired`, `rate_limited`, …).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Ticket(t) => match t {
                TicketRefusal::BadSignature => "ticket_bad_signature",
                TicketRefusal::Malformed => "ticket_malformed",
                TicketRefusal::Expired { .. } => "ticket_expired",
                TicketRefusal::NotYetValid => "ticket_not_yet_valid",
                TicketRefusal::WrongRequester => "ticket_wrong_requester",
                TicketRefusal::NotAHolder => "ticket_not_a_holder",
                TicketRefusal::StaleEpoch { .. } => "ticket_stale_epoch",
            },
            Refusal::Malformed(_) => "malformed",
            Refusal::RateLimited => "rate_limited",
            Refusal::Unauthorized => "unauthorized",
            Refusal::NotFound => "not_found",
            Refusal::StoreFull => "store_full",
            Refusal::NotReady(_) => "not_ready",
            Refusal::Internal => "internal",
            Refusal::BadShare(_) => "bad_share",
        }
    }
}

versioned!(
    StatusHeartbeat,
    StoreShare,
    DeleteShares,
    SessionCreate,
    SessionCreated,
    TicketRequest,
    ShareFetch,
);

/// The coordinator's public record: its Noise static key, signed by its identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CoordinatorRecord {
    /// Wire version.
    pub v: u16,
    /// X25519 public key contributions are sealed to.
    #[serde(with = "serde_bytes")]
    pub noise_static: [u8; 32],
    /// When the record was made, unix milliseconds.
    pub issued_at_ms: u64,
}

impl Versioned for CoordinatorRecord {
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for CoordinatorRecord {
    const CONTEXT: &'static [u8] = b"entroshard/v1/coordinator-record";
    const MAX_BYTES: usize = 1024;
}

/// What a node asks the coordinator on `/entroshard/coord/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum CoordinatorRequest {
    /// The signed [`CoordinatorRecord`] (answered as a `Reply<SignedEnvelope>`).
    GetRecord,
    /// Create a session (answered as a `Reply<SessionCreated>`).
    CreateSession(SessionCreate),
    /// A ticket for the current epoch (answered as a `Reply<TicketGrant>`).
    GetTicket(TicketRequest),
    /// Redeem a one-time join token: enrols the calling node (answered as a `Reply<Joined>`).
    Join(JoinRequest),
    /// A membership certificate for the calling node, if it is enrolled (answered as a
    /// `Reply<SignedEnvelope>` of a [`crate::membership::MembershipCert`]).
    GetMembership,
    /// The membership certificate of another node, if it is enrolled (answered like
    /// `GetMembership`): a forwarding device asks when a message's author carries none
    /// (docs/protocol/gossip-admission.md). Certificates are not secret: they travel in gossip.
    GetMembershipOf(NodeId),
}

/// A device presents the join token its operator was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct JoinRequest {
    /// The token, as printed by `coordinator join-token` (hex).
    pub token: String,
}

/// The labels a redeemed join token enrolled the device with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Joined {
    /// Region.
    pub region: String,
    /// Operator.
    pub operator: String,
}

/// Envelope of a coordinator request, versioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CoordinatorCall {
    /// Wire version.
    pub v: u16,
    /// The request.
    pub request: CoordinatorRequest,
}

impl Versioned for CoordinatorCall {
    fn version(&self) -> u16 {
        self.v
    }
}

/// A coordinator order to a holder on `/entroshard/store/1`, answered as a [`StoreReply`] (the
/// redistribution orders as their variants say).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum HolderOrder {
    /// A signed [`StoreShare`].
    Store(SignedEnvelope),
    /// A signed [`super::StoreBoxedShare`] (a share boxed to this holder).
    StoreBoxed(SignedEnvelope),
    /// A signed [`DeleteShares`].
    Delete(SignedEnvelope),
    /// A signed [`super::Redeal`]: sub-deal your share onto a new quorum (answered as a
    /// [`super::SubDealReply`]).
    Redeal(SignedEnvelope),
    /// A signed [`super::SubShares`]: check these sub-dealings (answered as a
    /// [`super::SubShareReportReply`]).
    SubShares(SignedEnvelope),
    /// A signed [`super::Combine`]: combine and store your new share (answered as a
    /// [`super::CombineReply`]).
    Combine(SignedEnvelope),
    /// A signed [`super::ProveShare`]: prove you hold your share, and delete it after if told
    /// (answered as a [`super::ProveShareReply`]).
    ProveShare(SignedEnvelope),
}

/// Envelope of a holder order, versioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HolderCall {
    /// Wire version.
    pub v: u16,
    /// The order.
    pub order: HolderOrder,
}

impl Versioned for HolderCall {
    fn version(&self) -> u16 {
        self.v
    }
}
