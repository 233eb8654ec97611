//! The observer: samples the process (RSS), the coordinator (peer table, running totals,
//! sessions) and the workload at a fixed period, and notes when each misbehaving device was
//! first caught and how; before the last sample, has every holder audited once more.

use crate::fleet::Fleet;
use crate::workload::WorkloadStats;
use crate::{ByzantineKind, Role};
use coordinator::admin::PeerLine;
use coordinator::db::CoordinatorDb;
use coordinator::service::{AdminRequest, Handle, figures::CoordinatorFigures};
use protocols::ids::NodeId;
use protocols::wire::SourceState;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// The process's resident set size in MiB, from `/proc/self/status` (measured, not estimated).
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One sample of the whole system.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds into the run.
    pub t_s: f64,
    /// Devices running.
    pub live_peers: usize,
    /// Resident memory of the process.
    pub rss_mib: f64,
    /// Fetches that succeeded so far.
    pub fetch_ok: u64,
    /// Fetches that failed so far.
    pub fetch_failed: u64,
    /// Sessions the coordinator keeps.
    pub sessions: usize,
    /// Fewest running holders of any session.
    pub holders_min: usize,
    /// Median running holders per session.
    pub holders_median: f64,
    /// Sessions with fewer running holders than k.
    pub sessions_below_k: usize,
    /// Devices quarantined now.
    pub quarantined: usize,
    /// Committed rotations by cause so far.
    pub rotations: BTreeMap<String, u64>,
    /// Bits credited so far, over all devices.
    pub credited_bits: u64,
}

/// How and when a misbehaving device was caught.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// Seconds into the run.
    pub at_s: f64,
    /// Seconds from the misbehaviour's start to its detection.
    pub after_s: f64,
    /// What caught it.
    pub how: String,
}

/// Everything observed.
pub struct Observer {
    t0: Instant,
    /// Samples in time order.
    pub samples: Vec<Sample>,
    /// First detection of each misbehaving device, by fleet index.
    pub detections: BTreeMap<usize, Detection>,
    /// First quarantine of each device: (seconds into the run, reason).
    pub quarantined: BTreeMap<NodeId, (f64, String)>,
    /// The latest peer table.
    pub last_lines: Vec<PeerLine>,
    /// The latest running totals.
    pub last_figures: CoordinatorFigures,
    /// (session, epoch) placements that broke the region or operator bound.
    pub placement_violations: std::collections::BTreeSet<(protocols::ids::SessionId, u32)>,
    /// Placements checked.
    pub placements_checked: std::collections::BTreeSet<(protocols::ids::SessionId, u32)>,
    /// Devices the coordinator counted as holding a share at some sample.
    pub held_share: std::collections::BTreeSet<usize>,
}

impl Observer {
    /// An observer whose time zero is `t0`.
    pub fn new(t0: Instant) -> Self {
        Self {
            t0,
            samples: Vec::new(),
            detections: BTreeMap::new(),
            quarantined: BTreeMap::new(),
            last_lines: Vec::new(),
            last_figures: CoordinatorFigures::default(),
            placement_violations: Default::default(),
            placements_checked: Default::default(),
            held_share: Default::default(),
        }
    }

    /// Seconds since time zero (negative before it).
    pub fn now_s(&self) -> f64 {
        let now = Instant::now();
        if now >= self.t0 {
            now.duration_since(self.t0).as_secs_f64()
        } else {
            -self.t0.duration_since(now).as_secs_f64()
        }
    }

    /// Takes one sample.
    pub async fn sample(
        &mut self,
        fleet: &Fleet,
        coordinator: &Handle,
        db: &Arc<CoordinatorDb>,
        workload: &WorkloadStats,
        (n, k): (usize, usize),
    ) {
        let t_s = self.now_s();
        let (tx, rx) = oneshot::channel();
        if coordinator
            .admin
            .send(AdminRequest::Status(tx))
            .await
            .is_ok()
            && let Ok(lines) = rx.await
        {
            self.last_lines = lines;
        }
        let (tx, rx) = oneshot::channel();
        if coordinator
            .admin
            .send(AdminRequest::Figures(tx))
            .await
            .is_ok()
            && let Ok(f) = rx.await
        {
            self.last_figures = f;
        }
        let by_node: HashMap<NodeId, usize> =
            fleet.peers.iter().map(|p| (p.node, p.index)).collect();
        for line in &self.last_lines {
            if line.shares_held > 0
                && let Some(i) = by_node.get(&line.node)
            {
                self.held_share.insert(*i);
            }
            if let Some(q) = &line.quarantine {
                self.quarantined
                    .entry(line.node)
                    .or_insert_with(|| (t_s, q.clone()));
            }
        }
        self.detect(fleet, &by_node, workload, t_s);
        let store = db.clone();
        let sessions = tokio::task::spawn_blocking(move || store.sessions())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let now_ms = peer::agent::now_ms();
        let mut live_counts = Vec::new();
        for s in sessions.iter().filter(|s| s.expires_at_ms > now_ms) {
            let running = s
                .holders
                .iter()
                .filter(|h| {
                    by_node
                        .get(&h.node)
                        .and_then(|i| fleet.peers.get(*i))
                        .is_some_and(|p| p.is_running())
                })
                .count();
            live_counts.push(running);
            let placement = (s.session, s.epoch);
            if self.placements_checked.insert(placement) {
                let mut regions: BTreeMap<&str, usize> = BTreeMap::new();
                let mut operators: BTreeMap<&str, usize> = BTreeMap::new();
                for h in &s.holders {
                    if let Some(p) = by_node.get(&h.node).and_then(|i| fleet.peers.get(*i)) {
                        *regions.entry(p.region.as_str()).or_insert(0) += 1;
                        *operators.entry(p.operator.as_str()).or_insert(0) += 1;
                    }
                }
                let (nn, kk) = (s.holders.len().max(n), k);
                if regions.values().any(|c| *c > nn.saturating_sub(kk))
                    || operators.values().any(|c| *c + 1 > kk)
                {
                    self.placement_violations.insert(placement);
                }
            }
        }
        live_counts.sort_unstable();
        let median = match live_counts.len() {
            0 => 0.0,
            len if len % 2 == 1 => live_counts.get(len / 2).copied().unwrap_or(0) as f64,
            len => {
                let a = live_counts.get(len / 2 - 1).copied().unwrap_or(0);
                let b = live_counts.get(len / 2).copied().unwrap_or(0);
                (a + b) as f64 / 2.0
            }
        };
        let (fetch_ok, fetch_failed) = workload.fetch_counts();
        self.samples.push(Sample {
            t_s,
            live_peers: fleet.peers.iter().filter(|p| p.is_running()).count(),
            rss_mib: rss_mib().unwrap_or(0.0),
            fetch_ok,
            fetch_failed,
            sessions: live_counts.len(),
            holders_min: live_counts.first().copied().unwrap_or(0),
            holders_median: median,
            sessions_below_k: live_counts.iter().filter(|c| **c < k).count(),
            quarantined: self
                .last_lines
                .iter()
                .filter(|l| l.quarantine.is_some())
                .count(),
            rotations: self.last_figures.rotations_by_cause.clone(),
            credited_bits: self.last_figures.intake.credited,
        });
    }

    fn detect(
        &mut self,
        fleet: &Fleet,
        by_node: &HashMap<NodeId, usize>,
        workload: &WorkloadStats,
        t_s: f64,
    ) {
        let named = workload.named.lock().map(|n| n.clone()).unwrap_or_default();
        for line in &self.last_lines {
            let Some(p) = by_node.get(&line.node).and_then(|i| fleet.peers.get(*i)) else {
                continue;
            };
            let Role::Byzantine(kind) = p.role else {
                continue;
            };
            if self.detections.contains_key(&p.index) {
                continue;
            }
            let refused = |reason: &str| line.refusals.get(reason).copied().unwrap_or(0) > 0;
            let quarantine = line.quarantine.as_deref().unwrap_or("");
            let named_for = |problem: &str| {
                named
                    .get(&line.node)
                    .is_some_and(|n| n.by_problem.contains_key(problem))
            };
            let how = match kind {
                ByzantineKind::Stuck
                    if line.sources.iter().any(|s| s.state == SourceState::CutOff) =>
                {
                    Some("source cut off by its health tests (reported in heartbeats)")
                }
                ByzantineKind::Biased if refused("source_quarantined") => Some(
                    "its entropy audit found far less than it claims: source quarantined, not credited",
                ),
                ByzantineKind::Cloned if quarantine.starts_with("ClonedEntropy") => {
                    Some("quarantined for cloned entropy")
                }
                ByzantineKind::Cloned if refused("cloned_entropy") => {
                    Some("cloned contribution refused, not credited")
                }
                ByzantineKind::Replayed if refused("sequence") || refused("replayed_entropy") => {
                    Some("replayed contributions refused, not credited")
                }
                ByzantineKind::FalseHeartbeats if refused("heartbeat_labels") => {
                    Some("heartbeat labels differ from enrolment: claim refused and counted")
                }
                ByzantineKind::FailingAttestation if quarantine.starts_with("BadEvidence") => {
                    Some("quarantined: attestation evidence refused")
                }
                ByzantineKind::TamperedShares | ByzantineKind::Withholding
                    if quarantine.starts_with("BadShare") =>
                {
                    Some("share failed the coordinator's check, holder quarantined")
                }
                ByzantineKind::TamperedShares | ByzantineKind::Withholding
                    if quarantine.starts_with("WithheldShare") =>
                {
                    Some("share withheld from the coordinator's check, holder quarantined")
                }
                ByzantineKind::TamperedShares if named_for("bad_share") => {
                    Some("share rejected by the requester, holder named")
                }
                ByzantineKind::Withholding if named_for("not_found") => {
                    Some("share withheld, holder named by the requester")
                }
                _ => None,
            };
            if let Some(how) = how {
                let since = p
                    .misbehaving_since
                    .lock()
                    .ok()
                    .and_then(|s| *s)
                    .or(p.first_started);
                let after_s = since.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
                self.detections.insert(
                    p.index,
                    Detection {
                        at_s: t_s,
                        after_s,
                        how: how.to_string(),
                    },
                );
            }
        }
    }
}

/// Has the coordinator audit every live session's holders now and waits until none of those
/// audits is due or under way (bounded only as a hang: 120 s).
pub(crate) async fn audit_every_holder(admin: &tokio::sync::mpsc::Sender<AdminRequest>) {
    if admin.send(AdminRequest::AuditHoldersNow).await.is_err() {
        return;
    }
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < bound {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if admin.send(AdminRequest::Figures(tx)).await.is_err() {
            return;
        }
        match rx.await {
            Ok(f) if f.holder_audits_due == 0 && f.rotating == 0 => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
    tracing::warn!("holder audits still running after 120 s; sampling anyway");
}

/// Waits until no deletion owed with a share proof is left (docs/protocol/holder-audits.md): a
/// holder that was away when its session was rotated off it is judged only when that deletion
/// reaches it, and the run must not be sampled before. Bounded only as a hang (60 s); a holder
/// still down at the end keeps its deletion owed.
pub(crate) async fn settle_proven_deletions(db: &Arc<CoordinatorDb>) {
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < bound {
        let d = db.clone();
        let owed = tokio::task::spawn_blocking(move || d.owed_deletions())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|o| o.iter().filter(|d| d.prove.is_some()).count())
            .unwrap_or(0);
        if owed == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    tracing::warn!("deletions owed with a proof still undelivered after 60 s; sampling anyway");
}
