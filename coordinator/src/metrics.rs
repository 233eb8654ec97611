//! Coordinator metrics: sessions, rotations by cause, quarantines, credited entropy per peer,
//! intake rejections, refused requests by reason, pool readiness, and latency histograms for
//! session creation, ticket issuance and rotation; registered with HELP text for `/metrics`.

use crate::core::schedule::Cause;
use peer::telemetry::{self, CountGauge, LabelledCounter};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Rotation causes, served from the start so that an alert on `increase()` sees the first.
const CAUSES: [&str; 4] = [
    Cause::Period.label(),
    Cause::Repair.label(),
    Cause::Quarantine.label(),
    Cause::Manual.label(),
];

/// Why a peer is quarantined (attestation, clone detection, holder audits), served from the start.
const QUARANTINE_REASONS: [&str; 5] = [
    "bad_evidence",
    "no_answer",
    "cloned_entropy",
    "bad_share",
    "withheld_share",
];

/// Counters, gauges and histograms of one coordinator, shared by the loop and its tasks.
#[derive(Debug)]
pub struct CoordinatorMetrics {
    /// Sessions created (acknowledged by enough holders and recorded).
    pub sessions_created: Counter,
    /// Live sessions in the database (set by the upkeep sweep and on create).
    pub sessions_live: CountGauge,
    /// Sessions deleted at expiry.
    pub sessions_expired: Counter,
    /// Enrolled peers.
    pub peers_enrolled: CountGauge,
    /// Peers currently quarantined.
    pub peers_quarantined: CountGauge,
    /// Bits in the pool not yet used by a key.
    pub pool_pending_bits: CountGauge,
    /// 1 when a session could be created now (the `/ready` verdict), else 0.
    pub pool_ready: CountGauge,
    /// Peers a new session's quorum could be chosen from now.
    pub holders_eligible: CountGauge,
    /// Committed rotations by cause (`period`, `repair`, `quarantine`, `manual`).
    pub rotations: LabelledCounter,
    /// Rotations that failed and left the session on its epoch, by cause.
    pub rotations_failed: LabelledCounter,
    /// Quarantines by reason (`bad_evidence`, `no_answer`, `cloned_entropy`, …).
    pub quarantines: LabelledCounter,
    /// Credited min-entropy bits per peer (PeerId).
    pub credited_bits: LabelledCounter,
    /// Contributions not credited, by reason.
    pub intake_rejections: LabelledCounter,
    /// Gossip messages rejected before intake, by reason.
    pub gossip_refused: LabelledCounter,
    /// Coordinator requests refused, by reason.
    pub requests_refused: LabelledCounter,
    /// Attestation answers judged, by outcome.
    pub attestations: LabelledCounter,
    /// Entropy audits by outcome (`assessed`, `failed`, `overclaim`).
    pub entropy_audits: LabelledCounter,
    /// Seconds from a `CreateSession` request to its session's commit, sessions created.
    pub session_create_seconds: Histogram,
    /// Seconds from a `GetTicket` request to the ticket (database check, grant, audit entry).
    pub ticket_issue_seconds: Histogram,
    /// Seconds a committed rotation took, from its start to its commit.
    pub rotation_seconds: Histogram,
}

impl Default for CoordinatorMetrics {
    fn default() -> Self {
        Self {
            sessions_created: Counter::default(),
            sessions_live: CountGauge::default(),
            sessions_expired: Counter::default(),
            peers_enrolled: CountGauge::default(),
            peers_quarantined: CountGauge::default(),
            pool_pending_bits: CountGauge::default(),
            pool_ready: CountGauge::default(),
            holders_eligible: CountGauge::default(),
            rotations: LabelledCounter::with_values("cause", &CAUSES),
            rotations_failed: LabelledCounter::with_values("cause", &CAUSES),
            quarantines: LabelledCounter::with_values("reason", &QUARANTINE_REASONS),
            credited_bits: LabelledCounter::new("peer"),
            intake_rejections: LabelledCounter::new("reason"),
            gossip_refused: LabelledCounter::new("reason"),
            requests_refused: LabelledCounter::new("reason"),
            attestations: LabelledCounter::new("outcome"),
            entropy_audits: LabelledCounter::new("outcome"),
            session_create_seconds: telemetry::histogram(&telemetry::ROUND_TRIP_BUCKETS),
            ticket_issue_seconds: telemetry::histogram(&telemetry::REQUEST_BUCKETS),
            rotation_seconds: telemetry::histogram(&telemetry::ROUND_TRIP_BUCKETS),
        }
    }
}

impl CoordinatorMetrics {
    /// Adds what the core counted.
    pub fn count(&self, counts: Vec<crate::core::gossip::Count>) {
        use crate::core::gossip::Count;
        for c in counts {
            match c {
                Count::GossipRefused(label) => self.gossip_refused.inc(label),
                Count::IntakeRejected(label) => self.intake_rejections.inc(label),
                Count::Credited { contributor, bits } => {
                    if let Some(peer) = peer::identity::peer_id(&contributor) {
                        self.credited_bits.add(&peer.to_string(), bits);
                    }
                }
                Count::Quarantined(label) => self.quarantines.inc(label),
                Count::EntropyAudit(label) => self.entropy_audits.inc(label),
            }
        }
    }

    /// Sets the gauges the loop refreshes at each upkeep tick.
    pub fn set_gauges(&self, g: crate::core::state::Gauges) {
        self.sessions_live.set(g.sessions_live);
        self.peers_enrolled.set(g.peers_enrolled);
        self.peers_quarantined.set(g.peers_quarantined);
        self.pool_pending_bits.set(g.pool_pending_bits);
    }

    /// Registers every series of the coordinator in `registry`, each with its HELP text.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "entroshard_sessions_created",
            "Sessions created: acknowledged by enough holders and recorded",
            self.sessions_created.clone(),
        );
        r.register(
            "entroshard_sessions_expired",
            "Sessions deleted at their expiry",
            self.sessions_expired.clone(),
        );
        let gauges = [
            (
                "entroshard_sessions_live",
                "Live (unexpired) sessions in the database",
                &self.sessions_live,
            ),
            (
                "entroshard_peers_enrolled",
                "Enrolled peers",
                &self.peers_enrolled,
            ),
            (
                "entroshard_peers_quarantined",
                "Enrolled peers now in quarantine",
                &self.peers_quarantined,
            ),
            (
                "entroshard_pool_pending_entropy",
                "Min-entropy in the pool not yet used by a key, in bits",
                &self.pool_pending_bits,
            ),
            (
                "entroshard_pool_ready",
                "1 when a session could be created now (pool credit, and a 2-of-3 quorum could \
                 be placed), else 0",
                &self.pool_ready,
            ),
            (
                "entroshard_holders_eligible",
                "Peers a new session's holders could be chosen from now (attested, fresh \
                 heartbeat, free store, not flagged)",
                &self.holders_eligible,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        let labelled = [
            (
                "entroshard_rotations",
                "Rotations committed, by cause (period, repair, quarantine, manual)",
                &self.rotations,
            ),
            (
                "entroshard_rotations_failed",
                "Rotations that failed and left the session on its epoch, by cause",
                &self.rotations_failed,
            ),
            (
                "entroshard_quarantines",
                "Peers quarantined, by reason",
                &self.quarantines,
            ),
            (
                "entroshard_credited_entropy",
                "Min-entropy credited, in bits, by contributing peer (PeerId)",
                &self.credited_bits,
            ),
            (
                "entroshard_intake_rejections",
                "Contributions not credited, by reason",
                &self.intake_rejections,
            ),
            (
                "entroshard_gossip_refused",
                "Gossip messages rejected before intake, by reason",
                &self.gossip_refused,
            ),
            (
                "entroshard_requests_refused",
                "Coordinator requests refused, by reason",
                &self.requests_refused,
            ),
            (
                "entroshard_attestations",
                "Attestation challenges judged, by outcome",
                &self.attestations,
            ),
            (
                "entroshard_entropy_audits",
                "Entropy audits of peers' sources, by outcome (assessed, failed, overclaim)",
                &self.entropy_audits,
            ),
        ];
        for (name, help, counter) in labelled {
            counter.register(r, name, help);
        }
        r.register(
            "entroshard_session_create_duration_seconds",
            "Seconds from a session request to its commit on enough holders, sessions created",
            self.session_create_seconds.clone(),
        );
        r.register(
            "entroshard_ticket_issue_duration_seconds",
            "Seconds from a ticket request to the ticket (authorisation check, grant, audit \
             entry): the coordinator's part of every fetch",
            self.ticket_issue_seconds.clone(),
        );
        r.register(
            "entroshard_rotation_duration_seconds",
            "Seconds from a rotation's start to its commit, rotations committed",
            self.rotation_seconds.clone(),
        );
    }

    /// The coordinator's exposition in the Prometheus text format (build info and these series;
    /// no node counters): what tests read.
    pub fn render(&self) -> String {
        let mut registry = telemetry::registry("coordinator");
        self.register(&mut registry);
        telemetry::exposition::encode(&registry, telemetry::exposition::Format::Text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_labelled_counters_and_gauges_under_their_old_names() {
        let m = CoordinatorMetrics::default();
        m.rotations.inc("quarantine");
        m.rotations.inc("quarantine");
        m.intake_rejections.inc("unenrolled");
        m.sessions_live.set(7);
        let text = m.render();
        assert!(text.contains("entroshard_rotations_total{cause=\"quarantine\"} 2\n"));
        assert!(text.contains("entroshard_intake_rejections_total{reason=\"unenrolled\"} 1\n"));
        assert!(text.contains("entroshard_sessions_live 7\n"));
        assert!(text.contains("# TYPE entroshard_credited_entropy_total counter\n"));
        assert!(text.contains("entroshard_sessions_created_total 0\n"));
        assert!(text.contains("entroshard_quarantines_total{reason=\"withheld_share\"} 0\n"));
        assert!(text.contains("entroshard_rotations_failed_total{cause=\"repair\"} 0\n"));
    }

    #[test]
    fn every_coordinator_series_has_help_and_type() {
        let m = CoordinatorMetrics::default();
        m.quarantines.inc("bad_evidence");
        m.session_create_seconds.observe(0.4);
        m.ticket_issue_seconds.observe(0.003);
        let checked = telemetry::exposition::check(&m.render()).unwrap();
        for (family, kind) in [
            ("entroshard_build_info", "gauge"),
            ("entroshard_sessions_created_total", "counter"),
            ("entroshard_pool_ready", "gauge"),
            ("entroshard_quarantines_total", "counter"),
            ("entroshard_session_create_duration_seconds", "histogram"),
            ("entroshard_ticket_issue_duration_seconds", "histogram"),
            ("entroshard_rotation_duration_seconds", "histogram"),
        ] {
            assert_eq!(checked.families[family].kind, kind, "{family}");
        }
        assert!(checked.families.values().all(|f| !f.help.is_empty()));
    }
}
