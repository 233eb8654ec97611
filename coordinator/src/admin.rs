//! Admin commands on a local Unix socket (mode 0600 in the data directory) while the coordinator
//! runs, or on its database directly when it is stopped.

mod fleet;
mod lines;
pub mod requests;
pub mod rfc3339;

pub use fleet::{
    AdminError, EnrolledPeer, LivePeer, RequesterLine, enrolled_peers, peer_text, requester_lines,
};
pub use lines::{MAX_REASON_CHARS, PeerLine, SourceLine, SourceStanding};

use crate::db::{AuditEntry, CoordinatorDb, Enrolment, JoinToken, SessionRecord};
use crate::os::now_ms;
use protocols::ids::{NodeId, SessionId, hex8};
use requests::AdminRequest;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Largest admin frame.
const MAX_FRAME: usize = 1 << 20;

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

/// How long a connection may take to send its command before it is dropped.
pub const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// Admin connections served at once; a connection beyond them is closed at once.
pub const MAX_CONNECTIONS: usize = 8;

/// Bounds on the admin socket's connections.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Time to send the command (the answer is not bounded: `status` waits for the loop).
    pub read_deadline: std::time::Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for AdminLimits {
    fn default() -> Self {
        Self {
            read_deadline: READ_DEADLINE,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves the admin socket with the default [`AdminLimits`]. The socket file is created with
/// mode 0600.
pub async fn serve(
    path: &Path,
    db: Arc<CoordinatorDb>,
    to_loop: mpsc::Sender<AdminRequest>,
) -> std::io::Result<()> {
    serve_with(path, db, to_loop, AdminLimits::default()).await
}

/// Serves the admin socket: each connection sends one command within `limits.read_deadline`
/// and gets one answer; at most `limits.max_connections` are served at once. Refused
/// connections (too many, too slow, a bad frame) are logged and closed; the socket keeps serving.
pub async fn serve_with(
    path: &Path,
    db: Arc<CoordinatorDb>,
    to_loop: mpsc::Sender<AdminRequest>,
    limits: AdminLimits,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            let mut stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or similar: wait instead of spinning on the error.
                    tracing::warn!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    limit = limits.max_connections,
                    "admin socket: connection refused, too many at once"
                );
                drop(stream);
                continue;
            };
            let (db, to_loop) = (db.clone(), to_loop.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let call = match tokio::time::timeout(
                    limits.read_deadline,
                    read_frame::<AdminCall, _>(&mut stream),
                )
                .await
                {
                    Ok(Ok(call)) => call,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "admin socket: command refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(
                            deadline = ?limits.read_deadline,
                            "admin socket: no command within the deadline, connection closed"
                        );
                        return;
                    }
                };
                let actor = socket_actor(&stream);
                let answer = answer(call, db, &to_loop, actor).await;
                let _ = write_frame(&mut stream, &answer).await;
            });
        }
    });
    Ok(())
}

/// Carries out one command for `actor`, asking the running loop where it must.
async fn answer(
    call: AdminCall,
    db: Arc<CoordinatorDb>,
    to_loop: &mpsc::Sender<AdminRequest>,
    actor: String,
) -> AdminAnswer {
    match answer_or_refuse(call, db, to_loop, actor).await {
        Ok(answer) => answer,
        Err(e) => AdminAnswer::Error(e.to_string()),
    }
}

async fn answer_or_refuse(
    call: AdminCall,
    db: Arc<CoordinatorDb>,
    to_loop: &mpsc::Sender<AdminRequest>,
    actor: String,
) -> Result<AdminAnswer, AdminError> {
    match call {
        AdminCall::Status => Ok(AdminAnswer::Status(status_lines(to_loop).await?)),
        AdminCall::Peers => {
            let lines = status_lines(to_loop).await?;
            blocking(db, move |db| {
                Ok(AdminAnswer::Peers(enrolled_peers(db, Some(&lines))?))
            })
            .await
        }
        AdminCall::Unquarantine { node } => {
            let (tx, rx) = oneshot::channel();
            let _ = to_loop.send(AdminRequest::Unquarantine(node, tx)).await;
            let reason = rx.await.map_err(|_| AdminError::Stopping)??;
            blocking(db, move |db| {
                fleet::audit(db, &actor, "peers unquarantine", peer_text(&node), reason);
                Ok(AdminAnswer::Done)
            })
            .await
        }
        AdminCall::RevokeSession { session } => {
            // The loop revokes once no rotation or audit holds the session.
            let (tx, rx) = oneshot::channel();
            let _ = to_loop.send(AdminRequest::Revoke(session, tx)).await;
            let record = rx
                .await
                .map_err(|_| AdminError::Stopping)??
                .ok_or_else(|| session_not_found(&session))?;
            blocking(db, move |db| {
                audit_revoked(db, &actor, &record);
                Ok(AdminAnswer::Revoked {
                    holders: record.holders.len(),
                })
            })
            .await
        }
        call => {
            let (answer, update) = tokio::task::spawn_blocking(move || apply(&db, &call, &actor))
                .await
                .map_err(|_| AdminError::Stopping)??;
            if let Some(update) = update {
                let _ = to_loop.send(update).await;
            }
            Ok(answer)
        }
    }
}

/// Runs `f` on the database on a blocking thread.
async fn blocking(
    db: Arc<CoordinatorDb>,
    f: impl FnOnce(&CoordinatorDb) -> Result<AdminAnswer, AdminError> + Send + 'static,
) -> Result<AdminAnswer, AdminError> {
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|_| AdminError::Stopping)?
}

/// The running loop's peer table.
async fn status_lines(to_loop: &mpsc::Sender<AdminRequest>) -> Result<Vec<PeerLine>, AdminError> {
    let (tx, rx) = oneshot::channel();
    let _ = to_loop.send(AdminRequest::Status(tx)).await;
    rx.await.map_err(|_| AdminError::Stopping)
}

/// Who is on the other end of an admin connection, for the audit trail.
fn socket_actor(stream: &tokio::net::UnixStream) -> String {
    match stream.peer_cred() {
        Ok(cred) => format!("operator (admin socket, uid {})", cred.uid()),
        Err(_) => "operator (admin socket)".to_string(),
    }
}

/// Who applies a command to the database of a stopped coordinator, for the audit trail.
pub fn database_actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(user) if !user.is_empty() => format!("operator (database, user {user})"),
        _ => "operator (database)".to_string(),
    }
}

/// Sends one command to a running coordinator's socket.
pub async fn call(path: &Path, call: &AdminCall) -> std::io::Result<AdminAnswer> {
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    write_frame(&mut stream, call).await?;
    read_frame(&mut stream).await
}

async fn write_frame<T: Serialize>(
    stream: &mut tokio::net::UnixStream,
    value: &T,
) -> std::io::Result<()> {
    let bytes = protocols::wire::encode(value);
    let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// Reads one admin command frame as the socket does (length checked before the body is read,
/// bounded CBOR), for the fuzz target `admin_call`. The socket itself reads through the same
/// private function.
#[doc(hidden)]
pub async fn read_admin_call<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
) -> std::io::Result<AdminCall> {
    read_frame(stream).await
}

async fn read_frame<T: serde::de::DeserializeOwned, R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "admin frame over the limit",
        ));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    protocols::wire::decode_bounded(&buf, MAX_FRAME)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn admin_frames_over_the_limit_are_refused_before_their_body_is_read() {
        let mut bytes = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes().to_vec();
        bytes.extend([0u8; 64]);
        let mut stream = &bytes[..];
        let err = futures::executor::block_on(read_admin_call(&mut stream)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(stream.len(), 64, "the body was read");
    }

    #[test]
    fn admin_commands_read_back_as_written_and_garbage_is_invalid_data() {
        let call = AdminCall::Rotate {
            session: protocols::ids::SessionId([3; 16]),
        };
        let bytes = framed(&protocols::wire::encode(&call));
        let read = futures::executor::block_on(read_admin_call(&mut &bytes[..])).unwrap();
        assert!(matches!(read, AdminCall::Rotate { session } if session.0 == [3; 16]));
        let garbage = framed(&[0xff, 0x00, 0x13]);
        let err = futures::executor::block_on(read_admin_call(&mut &garbage[..])).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    /// Reads until the server closes the connection; true if it did within `within`.
    async fn closed_by_server(stream: &mut tokio::net::UnixStream, within: Duration) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(within, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    use std::time::Duration;

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

    #[tokio::test]
    async fn silent_surplus_and_garbage_connections_are_closed_and_the_socket_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(CoordinatorDb::open(&dir.path().join("c.redb")).unwrap());
        let (to_loop, _from_admin) = mpsc::channel(4);
        let path = dir.path().join("admin.sock");
        let limits = AdminLimits {
            read_deadline: Duration::from_millis(400),
            max_connections: 2,
        };
        serve_with(&path, db, to_loop, limits).await.unwrap();

        let mut silent_a = tokio::net::UnixStream::connect(&path).await.unwrap();
        let mut silent_b = tokio::net::UnixStream::connect(&path).await.unwrap();
        // Both slots are held: a third connection is closed at once, long before the deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut surplus = tokio::net::UnixStream::connect(&path).await.unwrap();
        assert!(closed_by_server(&mut surplus, Duration::from_millis(200)).await);
        // The silent ones are closed at the deadline, not before.
        assert!(!closed_by_server(&mut silent_a, Duration::from_millis(100)).await);
        assert!(closed_by_server(&mut silent_a, Duration::from_secs(2)).await);
        assert!(closed_by_server(&mut silent_b, Duration::from_secs(2)).await);

        let mut garbage = tokio::net::UnixStream::connect(&path).await.unwrap();
        garbage
            .write_all(&framed(&[0xff, 0x00, 0x13]))
            .await
            .unwrap();
        assert!(closed_by_server(&mut garbage, Duration::from_secs(2)).await);

        let answer = call(&path, &AdminCall::Sessions).await.unwrap();
        assert!(matches!(answer, AdminAnswer::Sessions(s) if s.is_empty()));
    }
}
