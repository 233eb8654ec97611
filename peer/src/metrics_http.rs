//! The small HTTP endpoint every daemon serves: `GET /metrics` (the registry, in the format the
//! scraper asks for), `GET /health` (liveness: the process answers) and `GET /ready` (200 when
//! the daemon can do its work, 503 with the reason when not).

use crate::telemetry::exposition::{self, Format};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether the daemon is ready, and if not why (one line for an operator).
pub type Ready = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the endpoint serves.
#[derive(Clone)]
pub struct Endpoints {
    /// Every series of the daemon, with `entroshard_build_info`.
    pub registry: Arc<Registry>,
    /// The readiness check behind `/ready`.
    pub ready: Ready,
}

/// Longest request head read; the rest of a request is ignored.
const MAX_HEAD: usize = 4096;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a request head: up to the blank line that ends it, the connection's end, or
/// [`MAX_HEAD`] bytes, whichever comes first. A head may arrive in several TCP segments.
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let room = MAX_HEAD - head.len();
        head.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
    }
    Ok(head)
}

/// A response: status line, content type and body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn plain(status: &'static str, body: String) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}

/// The answer to one request head.
fn respond(endpoints: &Endpoints, head: &str) -> Response {
    let mut lines = head.lines();
    let request: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .take(2)
        .collect();
    let accept = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("accept")
            .then(|| value.trim())
    });
    match request.as_slice() {
        ["GET", "/metrics"] => {
            let format = Format::negotiate(accept);
            Response {
                status: "200 OK",
                content_type: format.content_type(),
                body: exposition::encode(&endpoints.registry, format),
            }
        }
        ["GET", "/health"] => Response::plain("200 OK", "ok\n".into()),
        ["GET", "/ready"] => match (endpoints.ready)() {
            Ok(()) => Response::plain("200 OK", "ready\n".into()),
            Err(reason) => Response::plain(
                "503 Service Unavailable",
                format!("not ready: {}\n", reason.replace('\n', " ")),
            ),
        },
        _ => Response::plain("404 Not Found", "not found\n".into()),
    }
}

/// Serves [`Endpoints`] on `addr`; returns the bound address. Bind it to loopback or a
/// management network: it has no authentication.
pub async fn serve(addr: SocketAddr, endpoints: Endpoints) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
                    Ok(Ok(head)) => head,
                    _ => return,
                };
                let r = respond(&endpoints, &String::from_utf8_lossy(&head));
                let response = format!(
                    "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    r.status,
                    r.content_type,
                    r.body.len(),
                    r.body
                );
                let _ = stream.write_all(response.as_bytes()).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(ready: Result<(), String>) -> Endpoints {
        Endpoints {
            registry: Arc::new(crate::telemetry::registry("peer")),
            ready: Arc::new(move || ready.clone()),
        }
    }

    #[test]
    fn ready_answers_503_with_the_reason_until_the_daemon_is_ready() {
        let head = "GET /ready HTTP/1.1\r\nhost: x\r\n\r\n";
        let r = respond(&endpoints(Err("pool empty".into())), head);
        assert_eq!(r.status, "503 Service Unavailable");
        assert_eq!(r.body, "not ready: pool empty\n");
        let r = respond(&endpoints(Ok(())), head);
        assert_eq!((r.status, r.body.as_str()), ("200 OK", "ready\n"));
    }

    #[test]
    fn health_is_liveness_only() {
        let r = respond(
            &endpoints(Err("pool empty".into())),
            "GET /health HTTP/1.1\r\n\r\n",
        );
        assert_eq!((r.status, r.body.as_str()), ("200 OK", "ok\n"));
    }

    #[test]
    fn metrics_follow_the_accept_header() {
        let e = endpoints(Ok(()));
        let open = respond(
            &e,
            "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
        );
        assert!(
            open.content_type
                .starts_with("application/openmetrics-text")
        );
        assert!(open.body.ends_with("# EOF\n"));
        let text = respond(&e, "GET /metrics HTTP/1.1\r\naccept: */*\r\n\r\n");
        assert!(text.content_type.starts_with("text/plain; version=0.0.4"));
        assert!(text.body.contains("entroshard_build_info{"));
        assert_eq!(
            respond(&e, "POST /metrics HTTP/1.1\r\n\r\n").status,
            "404 Not Found"
        );
    }
}
