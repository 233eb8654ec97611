//! What the admin socket (and the simulator) hands the coordinator's loop: a leaf module, so the
//! admin server and the service never import each other.

use protocols::ids::{NodeId, SessionId};
use protocols::sealing::MasterKeyId;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// Admin requests from the local socket.
pub enum AdminRequest {
    /// Enrol or relabel a peer.
    Enrol {
        /// The peer.
        node: NodeId,
        /// Its region.
        region: String,
        /// Its operator.
        operator: String,
    },
    /// Allow a binary digest.
    Allow([u8; 32]),
    /// Authorise a requester.
    AddRequester(NodeId),
    /// Peer table lines.
    Status(oneshot::Sender<Vec<super::PeerLine>>),
    /// Rotate a session now.
    Rotate(SessionId),
    /// Withdraw a binary digest.
    Disallow([u8; 32]),
    /// A requester was removed.
    RemoveRequester(NodeId),
    /// A peer's enrolment was withdrawn.
    RemovePeer(NodeId),
    /// Lift a peer's quarantine; answers what was lifted.
    Unquarantine(NodeId, oneshot::Sender<Result<String, super::AdminError>>),
    /// Revoke a session once nothing holds it (`None`: no such session).
    Revoke(
        SessionId,
        oneshot::Sender<Result<Option<crate::db::SessionRecord>, crate::db::DbError>>,
    ),
    /// Running totals (rotations by cause, intake counters) for the simulator and reports.
    Figures(oneshot::Sender<CoordinatorFigures>),
    /// Audit every live session's holders at the next tick (the simulator, before its last
    /// sample, so every holder reachable then has been checked).
    AuditHoldersNow,
    /// Start a master-key rotation (decision 0046).
    RotateMasterKey(oneshot::Sender<Result<MasterKeyRotation, super::AdminError>>),
}

/// A master-key rotation started.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct MasterKeyRotation {
    /// The key that retires.
    pub old: MasterKeyId,
    /// The key that seals from now on.
    pub new: MasterKeyId,
    /// Sessions sealed under the old key, to be re-sealed by rotation.
    pub sessions: usize,
}

/// A snapshot of the coordinator's running totals.
#[derive(Debug, Clone, Default)]
pub struct CoordinatorFigures {
    /// Committed rotations by cause (`Period`, `Repair`, `Quarantine`, `Manual`).
    pub rotations_by_cause: BTreeMap<String, u64>,
    /// Sessions rotating (or being deleted, or audited) right now.
    pub rotating: usize,
    /// Holder audits due now and not started yet.
    pub holder_audits_due: usize,
    /// Intake counters: clones, replays, credited bits.
    pub intake: crate::intake::IntakeStats,
}
