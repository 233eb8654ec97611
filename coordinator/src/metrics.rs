//! Coordinator metrics in the Prometheus text format: sessions, rotations by cause, quarantines,
//! credited entropy per peer, intake rejections and refused requests by reason.

use peer::metrics_http::{CounterFamily, sample};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges of one coordinator, shared by the loop and its tasks.
#[derive(Debug, Default)]
pub struct CoordinatorMetrics {
    /// Sessions created (acknowledged by enough holders and recorded).
    pub sessions_created: AtomicU64,
    /// Live sessions in the database (set by the upkeep sweep and on create).
    pub sessions_live: AtomicU64,
    /// Sessions deleted at expiry.
    pub sessions_expired: AtomicU64,
    /// Enrolled peers (gauge).
    pub peers_enrolled: AtomicU64,
    /// Peers currently quarantined (gauge).
    pub peers_quarantined: AtomicU64,
    /// Bits in the pool not yet used by a key (gauge).
    pub pool_pending_bits: AtomicU64,
    /// Committed rotations by cause (`period`, `repair`, `quarantine`, `manual`, `reseal`).
    pub rotations: CounterFamily,
    /// Rotations that failed and left the session on its epoch, by cause.
    pub rotations_failed: CounterFamily,
    /// Quarantines by reason (`bad_evidence`, `no_answer`, `cloned_entropy`).
    pub quarantines: CounterFamily,
    /// Credited min-entropy bits per peer (PeerId).
    pub credited_bits: CounterFamily,
    /// Contributions not credited, by reason.
    pub intake_rejections: CounterFamily,
    /// Gossip messages rejected before intake, by reason.
    pub gossip_refused: CounterFamily,
    /// Coordinator requests refused, by reason.
    pub requests_refused: CounterFamily,
    /// Attestation answers judged, by outcome (`good`, `bad`).
    pub attestations: CounterFamily,
    /// Entropy audits by outcome (`assessed`, `failed`, `overclaim`).
    pub entropy_audits: CounterFamily,
}

impl CoordinatorMetrics {
    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, v: &AtomicU64| {
            sample(out, name, "gauge", v.load(Ordering::Relaxed))
        };
        sample(
            &mut out,
            "entroshard_sessions_created_total",
            "counter",
            self.sessions_created.load(Ordering::Relaxed),
        );
        sample(
            &mut out,
            "entroshard_sessions_expired_total",
            "counter",
            self.sessions_expired.load(Ordering::Relaxed),
        );
        gauge(&mut out, "entroshard_sessions_live", &self.sessions_live);
        gauge(&mut out, "entroshard_peers_enrolled", &self.peers_enrolled);
        gauge(
            &mut out,
            "entroshard_peers_quarantined",
            &self.peers_quarantined,
        );
        gauge(
            &mut out,
            "entroshard_pool_pending_bits",
            &self.pool_pending_bits,
        );
        self.rotations
            .render(&mut out, "entroshard_rotations_total", "cause");
        self.rotations_failed
            .render(&mut out, "entroshard_rotations_failed_total", "cause");
        self.quarantines
            .render(&mut out, "entroshard_quarantines_total", "reason");
        self.credited_bits
            .render(&mut out, "entroshard_credited_bits_total", "peer");
        self.intake_rejections
            .render(&mut out, "entroshard_intake_rejections_total", "reason");
        self.gossip_refused
            .render(&mut out, "entroshard_gossip_refused_total", "reason");
        self.requests_refused
            .render(&mut out, "entroshard_requests_refused_total", "reason");
        self.attestations
            .render(&mut out, "entroshard_attestations_total", "outcome");
        self.entropy_audits
            .render(&mut out, "entroshard_entropy_audits_total", "outcome");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_and_gauges() {
        let m = CoordinatorMetrics::default();
        m.rotations.inc("quarantine");
        m.rotations.inc("quarantine");
        m.intake_rejections.inc("unenrolled");
        m.sessions_live.store(7, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("entroshard_rotations_total{cause=\"quarantine\"} 2\n"));
        assert!(text.contains("entroshard_intake_rejections_total{reason=\"unenrolled\"} 1\n"));
        assert!(text.contains("entroshard_sessions_live 7\n"));
        assert!(text.contains("# TYPE entroshard_credited_bits_total counter\n"));
    }
}
