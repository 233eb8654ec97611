//! Peer metrics in the Prometheus text format, served with `/health` on an optional local address.

use crate::node::Protocol;
use protocols::attestation::SourceFeedback;
use protocols::attestation::feedback::DEVICE_WIDE;
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
    /// The coordinator's last word on each source (from its attestation challenge).
    feedback: Mutex<Vec<SourceFeedback>>,
}

/// A label value as Prometheus text takes it (quotes, backslashes and newlines replaced).
fn label(value: &str) -> String {
    value.replace(['"', '\\', '\n'], "_")
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

    /// Keeps the coordinator's feedback on this device's sources; returns the one it replaces.
    pub fn replace_source_feedback(&self, feedback: Vec<SourceFeedback>) -> Vec<SourceFeedback> {
        self.feedback
            .lock()
            .map(|mut f| std::mem::replace(&mut *f, feedback))
            .unwrap_or_default()
    }

    /// The coordinator's last feedback on this device's sources.
    pub fn source_feedback(&self) -> Vec<SourceFeedback> {
        self.feedback.lock().map(|f| f.clone()).unwrap_or_default()
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
                let name = label(name);
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
        self.render_feedback(&mut out);
        out
    }

    /// The coordinator's feedback as series: credited bits per source and refusals per source
    /// and reason (`source="*"`: refusals not tied to one source).
    fn render_feedback(&self, out: &mut String) {
        let Ok(feedback) = self.feedback.lock() else {
            return;
        };
        let _ = writeln!(out, "# TYPE entroshard_source_credited_bits gauge");
        for f in feedback.iter().filter(|f| f.source != DEVICE_WIDE) {
            let _ = writeln!(
                out,
                "entroshard_source_credited_bits{{source=\"{}\"}} {}",
                label(&f.source),
                f.credited_bits
            );
        }
        let _ = writeln!(out, "# TYPE entroshard_contributions_refused_total counter");
        for f in feedback.iter() {
            for (reason, n) in &f.refusals {
                let _ = writeln!(
                    out,
                    "entroshard_contributions_refused_total{{source=\"{}\",reason=\"{}\"}} {n}",
                    label(&f.source),
                    label(reason)
                );
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_feedback_is_served_as_credited_bits_and_refusals_per_source_and_reason() {
        let metrics = PeerMetrics::default();
        metrics.replace_source_feedback(vec![
            SourceFeedback {
                source: DEVICE_WIDE.into(),
                standing: "device".into(),
                audit_h_millibits: None,
                credited_bits: 0,
                refusals: vec![("unattested".into(), 18)],
            },
            SourceFeedback {
                source: "jitter".into(),
                standing: "audited".into(),
                audit_h_millibits: Some(1_820),
                credited_bits: 4_096,
                refusals: vec![("audit_pending".into(), 12), ("cloned_entropy".into(), 1)],
            },
            SourceFeedback {
                source: "odd\"name".into(),
                standing: "unaudited".into(),
                audit_h_millibits: None,
                credited_bits: 0,
                refusals: Vec::new(),
            },
        ]);
        let text = metrics.render();
        for line in [
            "# TYPE entroshard_source_credited_bits gauge\n",
            "entroshard_source_credited_bits{source=\"jitter\"} 4096\n",
            "entroshard_source_credited_bits{source=\"odd_name\"} 0\n",
            "# TYPE entroshard_contributions_refused_total counter\n",
            "entroshard_contributions_refused_total{source=\"*\",reason=\"unattested\"} 18\n",
            "entroshard_contributions_refused_total{source=\"jitter\",reason=\"audit_pending\"} 12\n",
            "entroshard_contributions_refused_total{source=\"jitter\",reason=\"cloned_entropy\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("entroshard_source_credited_bits{source=\"*\"}"));
    }

    #[test]
    fn without_feedback_only_the_type_lines_are_served() {
        let text = PeerMetrics::default().render();
        assert!(text.contains("# TYPE entroshard_contributions_refused_total counter\n"));
        assert!(!text.contains("entroshard_contributions_refused_total{"));
    }
}
