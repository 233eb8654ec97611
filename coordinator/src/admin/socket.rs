//! The admin socket: one length-framed CBOR command per connection, bounded in size, time and
//! connections at once; commands that need the running loop are sent to it, the others are
//! applied to the database (docs/protocol/admin-socket.md).

use super::fleet::{self, AdminError};
use super::requests::AdminRequest;
use super::{
    AdminAnswer, AdminCall, MAX_ANSWER_FRAME, MAX_FRAME, PeerLine, apply, audit_revoked,
    enrolled_peers, peer_text, session_not_found,
};
use crate::db::CoordinatorDb;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

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

/// Binds the socket under a temporary name, listens, restricts it to mode 0600 and only then
/// renames it to `path`: whoever sees `path` can connect at once (a client waiting for the file
/// never meets a bound socket that does not listen yet), and it is 0600 before it has its name.
fn bind_ready(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".binding-{}", std::process::id()));
    let staging = std::path::PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    let listener = tokio::net::UnixListener::bind(&staging)?;
    let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staging, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    Ok(listener)
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
    let listener = bind_ready(path)?;
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
        AdminCall::RotateMasterKey => {
            let (tx, rx) = oneshot::channel();
            let _ = to_loop.send(AdminRequest::RotateMasterKey(tx)).await;
            let rotation = rx.await.map_err(|_| AdminError::Stopping)??;
            blocking(db, move |db| {
                fleet::audit(
                    db,
                    &actor,
                    "master-key rotate",
                    rotation.new.to_string(),
                    format!(
                        "master key {} retires once its {} sessions are re-sealed",
                        rotation.old, rotation.sessions
                    ),
                );
                Ok(AdminAnswer::MasterKeyRotated(rotation))
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

/// Sends one command to a running coordinator's socket. Its answer may be as large as
/// [`MAX_ANSWER_FRAME`] (a database snapshot, a long audit trail).
pub async fn call(path: &Path, call: &AdminCall) -> std::io::Result<AdminAnswer> {
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    write_frame(&mut stream, call).await?;
    read_frame_within(&mut stream, MAX_ANSWER_FRAME).await
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
    read_frame_within(stream, MAX_FRAME).await
}

/// Reads one frame of at most `max` bytes (checked before the body is read).
async fn read_frame_within<T: serde::de::DeserializeOwned, R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    max: usize,
) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "admin frame over the limit",
        ));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    protocols::wire::decode_bounded(&buf, max)
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
