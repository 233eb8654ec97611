//! Peer metrics in the Prometheus text format, served with `/health` on an optional local address.

use crate::node::Protocol;
use protocols::wire::Refusal;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counters and gauges of one peer.
#[derive(Debug, Default)]
pub struct PeerMetrics {
    /// Contributions published.
    pub contributions_sent: AtomicU64,
    /// Shares in the store.
    pub shares_held: AtomicU64,
    /// Connected peers.
    pub gossip_peers: AtomicI64,
    served: Mutex<BTreeMap<&'static str, u64>>,
    refused: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    health: Mutex<Vec<(String, u64, u64)>>,
}

fn protocol_label(p: Protocol) -> &'static str {
    match p {
        Protocol::Attest => "attest",
        Protocol::Store => "store",
        Protocol::Fetch => "fetch",
        Protocol::Coord => "coord",
    }
}

impl PeerMetrics {
    /// Counts a request answered.
    pub fn served(&self, protocol: Protocol) {
        if let Ok(mut m) = self.served.lock() {
            *m.entry(protocol_label(protocol)).or_default() += 1;
        }
    }

    /// Counts a refusal by protocol and reason.
    pub fn refused(&self, protocol: Protocol, refusal: &Refusal) {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry((
                protocol_label(protocol),
                super::handlers::refusal_label(refusal),
            ))
            .or_default() += 1;
        }
    }

    /// Refusals counted for (protocol, reason).
    pub fn refusals(&self, protocol: Protocol, reason: &str) -> u64 {
        self.refused
            .lock()
            .map(|m| {
                m.get(&(protocol_label(protocol), reason))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Records per-source health-test failures and samples.
    pub fn set_source_health(&self, lines: Vec<(String, u64, u64)>) {
        if let Ok(mut h) = self.health.lock() {
            *h = lines;
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE entroshard_contributions_sent_total counter");
        let _ = writeln!(
            out,
            "entroshard_contributions_sent_total {}",
            self.contributions_sent.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE entroshard_shares_held gauge");
        let _ = writeln!(
            out,
            "entroshard_shares_held {}",
            self.shares_held.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE entroshard_gossip_peers gauge");
        let _ = writeln!(
            out,
            "entroshard_gossip_peers {}",
            self.gossip_peers.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(out, "# TYPE entroshard_requests_served_total counter");
        if let Ok(m) = self.served.lock() {
            for (p, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entroshard_requests_served_total{{protocol=\"{p}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# TYPE entroshard_requests_refused_total counter");
        if let Ok(m) = self.refused.lock() {
            for ((p, r), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "entroshard_requests_refused_total{{protocol=\"{p}\",reason=\"{r}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# TYPE entroshard_source_samples_total counter");
        let _ = writeln!(
            out,
            "# TYPE entroshard_source_health_failures_total counter"
        );
        if let Ok(h) = self.health.lock() {
            for (name, samples, failures) in h.iter() {
                let name = name.replace(['"', '\\', '\n'], "_");
                let _ = writeln!(
                    out,
                    "entroshard_source_samples_total{{source=\"{name}\"}} {samples}"
                );
                let _ = writeln!(
                    out,
                    "entroshard_source_health_failures_total{{source=\"{name}\"}} {failures}"
                );
            }
        }
        out
    }
}

/// Largest request head read, in bytes.
const MAX_HEAD: usize = 4096;

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

/// Serves `GET /metrics` and `GET /health` on `addr` (bind it to loopback or a management network).
/// Each connection is bounded: 4 KiB of request head, 5 s, at most 16 at once.
pub async fn serve(addr: SocketAddr, metrics: Arc<PeerMetrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(16));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let read =
                    tokio::time::timeout(std::time::Duration::from_secs(5), read_head(&mut stream))
                        .await;
                let head = match read {
                    Ok(Ok(head)) => head,
                    _ => return,
                };
                let request = String::from_utf8_lossy(&head);
                let (status, body) = match request
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    ["GET", "/metrics"] => ("200 OK", metrics.render()),
                    ["GET", "/health"] => ("200 OK", "ok\n".to_string()),
                    _ => ("404 Not Found", "not found\n".to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}
