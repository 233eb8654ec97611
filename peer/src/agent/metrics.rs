//! Peer metrics in the Prometheus text format, served with `/health` on an optional local address.

use crate::node::Protocol;
use protocols::wire::Refusal;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
        Protocol::Audit => "audit",
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
            *m.entry((protocol_label(protocol), refusal.label()))
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

/// Serves `GET /metrics` and `GET /health` on `addr` (bind it to loopback or a management network):
/// the agent's figures and the events its node dropped.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<PeerMetrics>,
    node: &crate::node::NodeHandle,
) -> std::io::Result<SocketAddr> {
    crate::metrics_http::serve_with_node(addr, node, move || metrics.render()).await
}
