//! Admin commands on a local Unix socket (mode 0600 in the data directory) while the coordinator
//! runs, or on its database directly when it is stopped: what each command does and leaves in
//! the audit trail. The socket itself is in `socket`.

mod fleet;
mod lines;
pub mod requests;
pub mod rfc3339;
mod socket;

pub use fleet::{
    AdminError, EnrolledPeer, LivePeer, RequesterLine, enrolled_peers, peer_text, requester_lines,
};
pub use lines::{MAX_REASON_CHARS, PeerLine, SourceLine, SourceStanding};
pub use socket::{
    AdminLimits, MAX_CONNECTIONS, READ_DEADLINE, call, read_admin_call, serve, serve_with,
};

use crate::db::{AuditEntry, CoordinatorDb, DbSnapshot, Enrolment, JoinToken, SessionRecord};
use crate::os::now_ms;
use protocols::ids::{NodeId, SessionId, hex8};
use requests::AdminRequest;
use serde::{Deserialize, Serialize};

/// Largest admin command frame (what the socket reads from a client).
const MAX_FRAME: usize = 1 << 20;
/// Largest answer frame a client reads from the coordinator: a database snapshot for a backup,
/// or a long audit trail (100,000 entries of about 200 bytes), is far larger than a command.
pub const MAX_ANSWER_FRAME: usize = 512 << 20;

/// An admin command (docs/protocol/admin-socket.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AdminCall {
    /// Enrol (or relabel) a peer.
    Enrol {
        /// The peer.
        node: NodeId,
        /// Region.
        region: String,
        /// Operator.
        operator: String,
    },
    /// Make a one-time join token.
    JoinToken {
        /// Region of the peer that redeems it.
        region: String,
        /// Operator of the peer that redeems it.
        operator: String,
        /// Lifetime.
        ttl_s: u64,
    },
    /// Allow a binary's SHA-256.
    Allow {
        /// Digest.
        #[serde(with = "serde_bytes")]
        sha256: [u8; 32],
    },
    /// Authorise a requester.
    AddRequester {
        /// The requester.
        node: NodeId,
    },
    /// Rotate a session now (running coordinator only).
    Rotate {
        /// The session.
        session: SessionId,
    },
    /// The peer table.
    Status,
    /// Every session.
    Sessions,
    /// Withdraw a binary's SHA-256.
    Disallow {
        /// Digest.
        #[serde(with = "serde_bytes")]
        sha256: [u8; 32],
    },
    /// Every allowed binary.
    AllowedBinaries,
    /// Remove a requester: no more sessions, no more tickets.
    RemoveRequester {
        /// The requester.
        node: NodeId,
    },
    /// Every requester known.
    Requesters,
    /// Every enrolled peer.
    Peers,
    /// Withdraw a peer's enrolment.
    RemovePeer {
        /// The peer.
        node: NodeId,
    },
    /// Lift a peer's quarantine (running coordinator only).
    Unquarantine {
        /// The peer.
        node: NodeId,
    },
    /// One session.
    Session {
        /// The session.
        session: SessionId,
    },
    /// Revoke a session: its record goes, its holders owe the deletion of their shares.
    RevokeSession {
        /// The session.
        session: SessionId,
    },
    /// The audit trail from a time on.
    Audit {
        /// Entries written at or after this time (ms since the Unix epoch).
        since_ms: u64,
    },
    /// Every table of the database at one committed state, for a backup.
    Snapshot,
    /// Start a master-key rotation (running coordinator only).
    RotateMasterKey,
}

/// The answer to an admin command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AdminAnswer {
    /// Done.
    Done,
    /// A join token to hand to the device operator.
    Token(String),
    /// The peer table.
    Status(Vec<PeerLine>),
    /// Sessions.
    Sessions(Vec<SessionRecord>),
    /// It failed.
    Error(String),
    /// Allowed binaries.
    Binaries(Vec<[u8; 32]>),
    /// Requesters.
    Requesters(Vec<RequesterLine>),
    /// Enrolled peers.
    Peers(Vec<EnrolledPeer>),
    /// One session.
    Session(Box<SessionRecord>),
    /// A session revoked; this many holders owe a deletion.
    Revoked {
        /// Holders of the current epoch.
        holders: usize,
    },
    /// Audit entries, oldest first.
    Audit(Vec<AuditEntry>),
    /// The database at one committed state.
    Snapshot(Box<DbSnapshot>),
    /// A master-key rotation started.
    MasterKeyRotated(requests::MasterKeyRotation),
}

/// Carries out a command on the database as `actor` (recorded in the audit trail); returns what
/// the running loop must also learn. A refused command writes nothing.
pub fn apply(
    db: &CoordinatorDb,
    call: &AdminCall,
    actor: &str,
) -> Result<(AdminAnswer, Option<AdminRequest>), AdminError> {
    let audit = |action: &str, subject: String, detail: String| {
        fleet::audit(db, actor, action, subject, detail)
    };
    Ok(match call {
        AdminCall::Enrol {
            node,
            region,
            operator,
        } => {
            db.enrol(
                node,
                &Enrolment {
                    region: region.clone(),
                    operator: operator.clone(),
                    enrolled_at_ms: now_ms(),
                    share_key: None,
                },
            )?;
            audit(
                "peers enrol",
                peer_text(node),
                format!("region {region}, operator {operator}"),
            );
            (
                AdminAnswer::Done,
                Some(AdminRequest::Enrol {
                    node: *node,
                    region: region.clone(),
                    operator: operator.clone(),
                }),
            )
        }
        AdminCall::JoinToken {
            region,
            operator,
            ttl_s,
        } => {
            let token: [u8; 32] = crate::os::os_random();
            let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token).into();
            let expires_at_ms = now_ms().saturating_add(ttl_s.saturating_mul(1000));
            db.add_join_token(
                digest,
                &JoinToken {
                    region: region.clone(),
                    operator: operator.clone(),
                    expires_at_ms,
                },
            )?;
            audit(
                "join-token",
                format!("token sha256 {}", hex8(&digest)),
                format!(
                    "region {region}, operator {operator}, expires {}",
                    rfc3339::format_ms(expires_at_ms)
                ),
            );
            (AdminAnswer::Token(hex8(&token)), None)
        }
        AdminCall::Allow { sha256 } => {
            db.allow_binary(*sha256)?;
            audit("allow", hex8(sha256), String::new());
            (AdminAnswer::Done, Some(AdminRequest::Allow(*sha256)))
        }
        AdminCall::Disallow { sha256 } => {
            if !db.disallow_binary(sha256)? {
                return Err(AdminError::NotFound {
                    what: "binary",
                    id: hex8(sha256),
                });
            }
            audit("disallow", hex8(sha256), String::new());
            (AdminAnswer::Done, Some(AdminRequest::Disallow(*sha256)))
        }
        AdminCall::AllowedBinaries => (
            AdminAnswer::Binaries(db.allowed_binaries()?.into_iter().collect()),
            None,
        ),
        AdminCall::AddRequester { node } => {
            db.add_requester(node)?;
            audit("requesters add", peer_text(node), String::new());
            (AdminAnswer::Done, Some(AdminRequest::AddRequester(*node)))
        }
        AdminCall::RemoveRequester { node } => {
            if !db.revoke_requester(node)? {
                return Err(AdminError::NotFound {
                    what: "requester",
                    id: peer_text(node),
                });
            }
            audit("requesters remove", peer_text(node), String::new());
            (
                AdminAnswer::Done,
                Some(AdminRequest::RemoveRequester(*node)),
            )
        }
        AdminCall::Requesters => (AdminAnswer::Requesters(requester_lines(db)?), None),
        AdminCall::Peers => (AdminAnswer::Peers(enrolled_peers(db, None)?), None),
        AdminCall::RemovePeer { node } => {
            if !db.unenrol(node)? {
                return Err(AdminError::NotFound {
                    what: "peer",
                    id: peer_text(node),
                });
            }
            audit("peers remove", peer_text(node), String::new());
            (AdminAnswer::Done, Some(AdminRequest::RemovePeer(*node)))
        }
        AdminCall::Unquarantine { node } => {
            if !db.enrolments()?.iter().any(|(n, _)| n == node) {
                return Err(AdminError::NotFound {
                    what: "peer",
                    id: peer_text(node),
                });
            }
            return Err(AdminError::NeedsRunning(
                "the coordinator is not running: quarantines live in the running coordinator, \
                 and a restart clears them",
            ));
        }
        AdminCall::Status => (
            AdminAnswer::Error("status needs a running coordinator".into()),
            None,
        ),
        AdminCall::Sessions => (AdminAnswer::Sessions(db.sessions()?), None),
        AdminCall::Session { session } => match db.session(session)? {
            Some(record) => (AdminAnswer::Session(Box::new(record)), None),
            None => return Err(session_not_found(session)),
        },
        AdminCall::RevokeSession { session } => {
            let Some(record) = db.revoke_session(session)? else {
                return Err(session_not_found(session));
            };
            audit_revoked(db, actor, &record);
            (
                AdminAnswer::Revoked {
                    holders: record.holders.len(),
                },
                None,
            )
        }
        AdminCall::Audit { since_ms } => (AdminAnswer::Audit(db.audit_since(*since_ms)?), None),
        AdminCall::Snapshot => {
            let snapshot = db.snapshot()?;
            audit(
                "backup",
                "coordinator.redb".into(),
                format!(
                    "database snapshot taken ({} sessions, {} audit entries)",
                    snapshot.rows_of("sessions"),
                    snapshot.rows_of("audit_log")
                ),
            );
            (AdminAnswer::Snapshot(Box::new(snapshot)), None)
        }
        AdminCall::RotateMasterKey => {
            return Err(AdminError::NeedsRunning(
                "rotating the master key needs a running coordinator: it re-seals every session \
                 by rotating it to a fresh quorum; start the coordinator and run this again",
            ));
        }
        AdminCall::Rotate { session } => {
            // Checked here, before the loop is asked: the loop answers nothing back.
            if db.session(session)?.is_none() {
                return Err(session_not_found(session));
            }
            audit("rotate", session.to_string(), String::new());
            (AdminAnswer::Done, Some(AdminRequest::Rotate(*session)))
        }
    })
}

fn session_not_found(session: &SessionId) -> AdminError {
    AdminError::NotFound {
        what: "session",
        id: session.to_string(),
    }
}

/// The audit line of a revoked session.
fn audit_revoked(db: &CoordinatorDb, actor: &str, record: &SessionRecord) {
    fleet::audit(
        db,
        actor,
        "sessions revoke",
        record.session.to_string(),
        format!(
            "epoch {}, {} holders owe a deletion",
            record.epoch,
            record.holders.len()
        ),
    );
}

/// Who applies a command to the database of a stopped coordinator, for the audit trail.
pub fn database_actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(user) if !user.is_empty() => format!("operator (database, user {user})"),
        _ => "operator (database)".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rotating_an_unknown_session_is_refused_by_name_and_never_reaches_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let db = CoordinatorDb::open(&dir.path().join("c.redb")).unwrap();
        let session = protocols::ids::SessionId([7; 16]);
        let Err(err) = apply(&db, &AdminCall::Rotate { session }, "test") else {
            panic!("an unknown session was accepted for rotation");
        };
        assert_eq!(err.to_string(), format!("session {session} not found"));
    }

    #[test]
    fn admin_actions_are_audited_in_order_and_unknown_ids_are_not_found_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = CoordinatorDb::open(&dir.path().join("c.redb")).unwrap();
        let node = protocols::identity::NodeKey::from_secret_bytes(&[5; 32]).node_id();
        let calls = [
            AdminCall::AddRequester { node },
            AdminCall::Enrol {
                node,
                region: "eu".into(),
                operator: "a".into(),
            },
            AdminCall::Allow { sha256: [9; 32] },
            AdminCall::Disallow { sha256: [9; 32] },
            AdminCall::RemovePeer { node },
            AdminCall::RemoveRequester { node },
        ];
        for call in &calls {
            apply(&db, call, "tester").unwrap();
        }
        let before = crate::db::fuzzing::raw_contents(&db).unwrap();
        let stranger = protocols::identity::NodeKey::from_secret_bytes(&[6; 32]).node_id();
        let unknown = [
            AdminCall::Disallow { sha256: [8; 32] },
            AdminCall::RemovePeer { node: stranger },
            AdminCall::RemoveRequester { node: stranger },
            AdminCall::Unquarantine { node: stranger },
            AdminCall::Session {
                session: SessionId([1; 16]),
            },
            AdminCall::RevokeSession {
                session: SessionId([1; 16]),
            },
        ];
        for call in &unknown {
            let Err(err) = apply(&db, call, "tester") else {
                panic!("{call:?} was accepted");
            };
            assert!(err.to_string().ends_with("not found"), "{call:?}: {err}");
        }
        assert_eq!(
            crate::db::fuzzing::raw_contents(&db).unwrap(),
            before,
            "a refused command wrote"
        );
        let trail = db.audit_since(0).unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "requesters add",
                "peers enrol",
                "allow",
                "disallow",
                "peers remove",
                "requesters remove"
            ]
        );
        assert!(trail.iter().all(|e| e.actor == "tester"));
        assert_eq!(trail[0].subject, peer_text(&node));
        assert!(
            trail[0].subject.starts_with("12D3KooW"),
            "{}",
            trail[0].subject
        );
    }
}
