//! The small HTTP endpoint every role uses for Prometheus `GET /metrics` and `GET /health`, and a
//! labelled counter family for the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Renders the current metrics text on each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

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

/// Serves a daemon's metrics: what `render` writes, then the events its `node` dropped
/// (`entroshard_node_events_dropped_total`). See [`serve`].
pub async fn serve_with_node(
    addr: SocketAddr,
    node: &crate::node::NodeHandle,
    render: impl Fn() -> String + Send + Sync + 'static,
) -> std::io::Result<SocketAddr> {
    let dropped = node.dropped();
    let render = move || {
        let mut out = render();
        dropped.render(&mut out);
        out
    };
    serve(addr, Arc::new(render)).await
}

/// Serves `GET /metrics` (from `render`) and `GET /health` on `addr`; returns the bound address.
/// Bind it to loopback or a management network: it has no authentication.
pub async fn serve(addr: SocketAddr, render: Render) -> std::io::Result<SocketAddr> {
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
            let render = render.clone();
            tokio::spawn(async move {
                let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
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
                    ["GET", "/metrics"] => ("200 OK", render()),
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

/// A counter with one label (`reason`, `cause`, `peer`, …); label values must come from code or
/// from bounded sets such as enrolled peers, never from remote input.
#[derive(Debug, Default)]
pub struct CounterFamily {
    values: Mutex<BTreeMap<String, u64>>,
}

impl CounterFamily {
    /// Adds `by` to the counter labelled `label`.
    pub fn add(&self, label: &str, by: u64) {
        if let Ok(mut m) = self.values.lock() {
            let v = m.entry(label.to_string()).or_default();
            *v = v.saturating_add(by);
        }
    }

    /// Adds one to the counter labelled `label`.
    pub fn inc(&self, label: &str) {
        self.add(label, 1);
    }

    /// The counter labelled `label` (0 when never counted).
    pub fn get(&self, label: &str) -> u64 {
        self.values
            .lock()
            .map(|m| m.get(label).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Writes `# TYPE name counter` and one line per label value.
    pub fn render(&self, out: &mut String, name: &str, label: &str) {
        match self.values.lock() {
            Ok(m) => labelled_counter(out, name, label, m.iter().map(|(v, n)| (v.as_str(), *n))),
            Err(_) => labelled_counter(out, name, label, std::iter::empty()),
        }
    }
}

/// Writes `# TYPE name counter` and one `name{label="value"} n` line per value (quotes,
/// backslashes and newlines in a value become `_`).
pub fn labelled_counter<'a>(
    out: &mut String,
    name: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# TYPE {name} counter");
    for (value, n) in values {
        let value = value.replace(['"', '\\', '\n'], "_");
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// Writes one unlabelled sample with its type line.
pub fn sample(out: &mut String, name: &str, kind: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}
