//! What the inventory and revocation commands answer (`requesters list`, `peers list`), why an
//! admin command is refused, and the audit line each admin command leaves.

use crate::db::{AuditEntry, CoordinatorDb, DbError, Enrolment};
use protocols::ids::NodeId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an admin command was refused; nothing was written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The PeerId, session or digest named is not known.
    #[error("{what} {id} not found")]
    NotFound {
        /// `peer`, `requester`, `session`, `binary`.
        what: &'static str,
        /// As the operator typed it (a PeerId, a session id, a digest).
        id: String,
    },
    /// The peer is enrolled but not quarantined.
    #[error("peer {0} is not quarantined")]
    NotQuarantined(String),
    /// The command needs the running coordinator.
    #[error("{0}")]
    NeedsRunning(&'static str),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The running coordinator is stopping.
    #[error("the coordinator is stopping")]
    Stopping,
    /// A master-key rotation is already under way.
    #[error(
        "a master-key rotation is already under way: {sessions} sessions are still sealed under \
         master key {key}, which is erased once they are re-sealed (`entroshard coordinator \
         master-key` shows it)"
    )]
    MasterKeyRotating {
        /// The retiring key.
        key: String,
        /// Sessions still sealed under it.
        sessions: usize,
    },
    /// `master.key` could not be written; nothing changed.
    #[error("the master key file could not be written, nothing changed: {0}")]
    MasterKeyFile(String),
}

/// A node as people read it: its PeerId (the 64-hex node id if it is not an Ed25519 key).
pub fn peer_text(node: &NodeId) -> String {
    peer::identity::peer_id(node)
        .map(|p| p.to_string())
        .unwrap_or_else(|| protocols::ids::hex8(&node.0))
}

/// One requester in `requesters list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequesterLine {
    /// The requester.
    pub node: NodeId,
    /// May create sessions.
    pub authorised: bool,
    /// Removed: refused every ticket.
    pub removed: bool,
    /// Stored sessions it created.
    pub created: usize,
    /// Stored sessions that name it.
    pub named: usize,
}

/// Every requester the database knows: authorised, removed, or named by a session.
pub fn requester_lines(db: &CoordinatorDb) -> Result<Vec<RequesterLine>, DbError> {
    let authorised = db.requesters()?;
    let removed = db.revoked_requesters()?;
    let sessions = db.sessions()?;
    let mut nodes: std::collections::BTreeSet<NodeId> =
        authorised.union(&removed).copied().collect();
    for s in &sessions {
        nodes.insert(s.creator);
        nodes.extend(s.policy.requesters.iter().copied());
    }
    Ok(nodes
        .into_iter()
        .map(|node| RequesterLine {
            node,
            authorised: authorised.contains(&node),
            removed: removed.contains(&node),
            created: sessions.iter().filter(|s| s.creator == node).count(),
            named: sessions
                .iter()
                .filter(|s| s.policy.requesters.contains(&node))
                .count(),
        })
        .collect())
}

/// One enrolled peer in `peers list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolledPeer {
    /// The peer.
    pub node: NodeId,
    /// Its labels and enrolment time.
    pub enrolment: Enrolment,
    /// What the running coordinator knows of it (absent when it is stopped).
    pub live: Option<LivePeer>,
}

/// The running coordinator's view of an enrolled peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LivePeer {
    /// Attested and not quarantined.
    pub trusted: bool,
    /// Quarantine reason.
    pub quarantine: Option<String>,
    /// Shares it holds.
    pub shares_held: u32,
}

/// Every enrolled peer, with the running coordinator's `status` lines where given.
pub fn enrolled_peers(
    db: &CoordinatorDb,
    live: Option<&[super::PeerLine]>,
) -> Result<Vec<EnrolledPeer>, DbError> {
    Ok(db
        .enrolments()?
        .into_iter()
        .map(|(node, enrolment)| EnrolledPeer {
            node,
            enrolment,
            live: live.map(|lines| {
                let line = lines.iter().find(|l| l.node == node);
                LivePeer {
                    trusted: line.is_some_and(|l| l.trusted),
                    quarantine: line.and_then(|l| l.quarantine.clone()),
                    shares_held: line.map(|l| l.shares_held).unwrap_or(0),
                }
            }),
        })
        .collect())
}

/// Appends an operator's action to the audit trail; a failure to record it is logged (the action
/// itself has committed and stands).
pub fn audit(db: &CoordinatorDb, actor: &str, action: &str, subject: String, detail: String) {
    let entry = AuditEntry::new(crate::os::now_ms(), actor, action, subject, detail);
    if let Err(e) = db.append_audit(entry) {
        tracing::error!(error = %e, action, "audit entry not recorded");
    }
}
