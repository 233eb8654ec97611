//! Peer metrics: the agent's counters, gauges and fetch-latency histogram, registered with HELP
//! text in the registry its `/metrics` endpoint serves with `/health` and `/ready`.

use super::source_series::SourceSeries;
use crate::metrics_http::{Endpoints, Ready};
use crate::node::Protocol;
use crate::telemetry::{self, CountGauge};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use protocols::attestation::SourceFeedback;
use protocols::wire::Refusal;
use std::net::SocketAddr;
use std::sync::Arc;

/// Counters, gauges and histograms of one peer.
#[derive(Debug)]
pub struct PeerMetrics {
    /// Contributions published.
    pub contributions_sent: Counter,
    /// Shares in the store.
    pub shares_held: CountGauge,
    /// Connected peers.
    pub gossip_peers: CountGauge,
    /// 1 while a connection to the coordinator is open.
    pub coordinator_connected: CountGauge,
    /// Sources passing their continuous health tests.
    pub sources_running: CountGauge,
    /// 1 while this device holds a usable membership certificate (carried in its gossip).
    pub membership_held: CountGauge,
    /// Seconds from a share fetch's arrival to its answer, fetches served.
    pub fetch_serve_seconds: Histogram,
    served: Family<[(&'static str, &'static str); 1], Counter>,
    refused: Family<[(&'static str, &'static str); 2], Counter>,
    gossip_refused: Family<[(&'static str, &'static str); 1], Counter>,
    sources: Arc<SourceSeries>,
}

impl Default for PeerMetrics {
    fn default() -> Self {
        Self {
            contributions_sent: Counter::default(),
            shares_held: CountGauge::default(),
            gossip_peers: CountGauge::default(),
            coordinator_connected: CountGauge::default(),
            sources_running: CountGauge::default(),
            membership_held: CountGauge::default(),
            fetch_serve_seconds: telemetry::histogram(&telemetry::REQUEST_BUCKETS),
            served: Family::default(),
            refused: Family::default(),
            gossip_refused: Family::default(),
            sources: Arc::new(SourceSeries::default()),
        }
    }
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
        self.served
            .get_or_create(&[("protocol", protocol_label(protocol))])
            .inc();
    }

    /// Counts a refusal by protocol and reason.
    pub fn refused(&self, protocol: Protocol, refusal: &Refusal) {
        self.refused
            .get_or_create(&[
                ("protocol", protocol_label(protocol)),
                ("reason", refusal.label()),
            ])
            .inc();
    }

    /// Counts a gossip message refused for forwarding, by reason.
    pub fn gossip_refused(&self, reason: &'static str) {
        self.gossip_refused
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Gossip messages refused for `reason` so far.
    pub fn gossip_refused_count(&self, reason: &'static str) -> u64 {
        self.gossip_refused
            .get_or_create(&[("reason", reason)])
            .get()
    }

    /// Records per-source health-test failures and samples.
    pub fn set_source_health(&self, lines: Vec<(String, u64, u64)>) {
        self.sources.set_health(lines);
    }

    /// Keeps the coordinator's feedback on this device's sources; returns the one it replaces.
    pub fn replace_source_feedback(&self, feedback: Vec<SourceFeedback>) -> Vec<SourceFeedback> {
        self.sources.replace_feedback(feedback)
    }

    /// The coordinator's last feedback on this device's sources.
    pub fn source_feedback(&self) -> Vec<SourceFeedback> {
        self.sources.feedback()
    }

    /// Registers every series of the peer in `registry`, each with its HELP text.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "entroshard_contributions_sent",
            "Entropy contributions this peer published to the coordinator",
            self.contributions_sent.clone(),
        );
        registry.register(
            "entroshard_shares_held",
            "Key shares in this peer's store",
            self.shares_held.clone(),
        );
        registry.register(
            "entroshard_gossip_peers",
            "Peers this node has a connection to",
            self.gossip_peers.clone(),
        );
        registry.register(
            "entroshard_coordinator_connected",
            "1 while a connection to the pinned coordinator is open, else 0",
            self.coordinator_connected.clone(),
        );
        registry.register(
            "entroshard_sources_running",
            "Entropy sources passing their continuous health tests",
            self.sources_running.clone(),
        );
        registry.register(
            "entroshard_membership_held",
            "1 while this device holds a usable membership certificate from the coordinator \
             (carried in its contributions and heartbeats), else 0",
            self.membership_held.clone(),
        );
        registry.register(
            "entroshard_gossip_refused",
            "Gossip messages this device refused to forward, by reason (envelope, missing, \
             forged, other_node, expired: rejected; unknown: no certificate, author being \
             looked up; topic)",
            telemetry::Declared(self.gossip_refused.clone()),
        );
        registry.register(
            "entroshard_requests_served",
            "Requests this peer answered, by protocol (attest, store, fetch, audit)",
            telemetry::Declared(self.served.clone()),
        );
        registry.register(
            "entroshard_requests_refused",
            "Requests this peer refused, by protocol and reason",
            telemetry::Declared(self.refused.clone()),
        );
        registry.register(
            "entroshard_fetch_serve_duration_seconds",
            "Seconds from a share fetch's arrival at this holder to its answer, fetches served",
            self.fetch_serve_seconds.clone(),
        );
        registry.register_collector(Box::new(self.sources.clone()));
    }

    /// The peer's exposition in the Prometheus text format (build info and these series; no
    /// node counters): what tests read.
    pub fn render(&self) -> String {
        let mut registry = telemetry::registry("peer");
        self.register(&mut registry);
        telemetry::exposition::encode(&registry, telemetry::exposition::Format::Text)
    }
}

/// Serves `/metrics` (the agent's series, the build info and the events its node dropped),
/// `/health` and `/ready` on `addr` (bind it to loopback or a management network).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<PeerMetrics>,
    node: &crate::node::NodeHandle,
    ready: Ready,
) -> std::io::Result<SocketAddr> {
    let mut registry = telemetry::registry("peer");
    metrics.register(&mut registry);
    registry.register_collector(Box::new(node.dropped()));
    registry.register_collector(Box::new(node.reachability()));
    let endpoints = Endpoints {
        registry: Arc::new(registry),
        ready,
    };
    crate::metrics_http::serve(addr, endpoints).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use protocols::attestation::feedback::DEVICE_WIDE;

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
            "# TYPE entroshard_source_credited_entropy gauge\n",
            "entroshard_source_credited_entropy{source=\"jitter\"} 4096\n",
            "entroshard_source_credited_entropy{source=\"odd\\\"name\"} 0\n",
            "# TYPE entroshard_contributions_refused_total counter\n",
            "entroshard_contributions_refused_total{source=\"*\",reason=\"unattested\"} 18\n",
            "entroshard_contributions_refused_total{source=\"jitter\",reason=\"audit_pending\"} 12\n",
            "entroshard_contributions_refused_total{source=\"jitter\",reason=\"cloned_entropy\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("entroshard_source_credited_entropy{source=\"*\"}"));
        telemetry::exposition::check(&text).unwrap();
    }

    #[test]
    fn without_feedback_only_the_help_and_type_lines_are_served() {
        let text = PeerMetrics::default().render();
        assert!(text.contains("# TYPE entroshard_contributions_refused_total counter\n"));
        assert!(!text.contains("entroshard_contributions_refused_total{"));
    }

    #[test]
    fn every_peer_series_has_help_and_type_and_the_names_operators_know() {
        let metrics = PeerMetrics::default();
        metrics.served(Protocol::Fetch);
        metrics.refused(Protocol::Fetch, &Refusal::NotFound);
        metrics.fetch_serve_seconds.observe(0.002);
        metrics.set_source_health(vec![("jitter".into(), 10, 0)]);
        let checked = telemetry::exposition::check(&metrics.render()).unwrap();
        for family in [
            "entroshard_build_info",
            "entroshard_contributions_sent_total",
            "entroshard_shares_held",
            "entroshard_gossip_peers",
            "entroshard_coordinator_connected",
            "entroshard_sources_running",
            "entroshard_requests_served_total",
            "entroshard_requests_refused_total",
            "entroshard_fetch_serve_duration_seconds",
            "entroshard_source_samples_total",
            "entroshard_source_health_failures_total",
        ] {
            let f = checked.families.get(family);
            assert!(f.is_some_and(|f| !f.help.is_empty()), "{family}");
        }
        assert_eq!(
            checked.families["entroshard_fetch_serve_duration_seconds"].kind,
            "histogram"
        );
    }
}
