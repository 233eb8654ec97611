//! The report: every figure in `report.json`, a summary table in `report.md`, and plots.

mod build;
mod checks;
mod markdown;
mod plots;

pub use build::build;

use crate::observe::Sample;
use crate::workload::FetchRecord;
use crate::{Role, Scenario};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A fault event as applied, for the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedEvent {
    /// Seconds into the run.
    pub t_s: f64,
    /// What happened.
    pub what: String,
}

/// Facts the run loop gathers for the report.
#[derive(Debug, Default)]
pub struct RunFacts {
    /// RSS with the coordinator and no device.
    pub rss_baseline_mib: f64,
    /// RSS once every device ran and the first session was keyed.
    pub rss_after_start_mib: f64,
    /// Seconds to start the devices.
    pub startup_s: f64,
    /// Seconds until the first session.
    pub warmup_s: f64,
    /// Seconds of the run proper.
    pub run_s: f64,
    /// Devices that left at least once.
    pub left: BTreeSet<usize>,
    /// Leaves that were for good.
    pub left_for_good: u64,
    /// Returns after a leave.
    pub returned: u64,
    /// New devices.
    pub joined: u64,
    /// Partitions and outages.
    pub events: Vec<AppliedEvent>,
    /// Events the coordinator's node dropped because its loop was behind.
    pub coordinator_dropped: DroppedCounts,
    /// Events the devices' nodes dropped, over the whole run.
    pub devices_dropped: DroppedCounts,
    /// What each misbehaving device saw at the end (only those still running).
    pub device_views: BTreeMap<usize, DeviceView>,
}

/// Events a node could not hand to its owner (see `peer::node::DroppedEvents`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DroppedCounts {
    /// Gossip messages neither validated nor forwarded.
    pub gossip: u64,
    /// Requests answered busy.
    pub requests: u64,
    /// Connection and ping events.
    pub other: u64,
}

impl DroppedCounts {
    /// Adds a node's counters.
    pub fn add(&mut self, d: &peer::node::DroppedEvents) {
        self.gossip += d.gossip();
        self.requests += d.requests();
        self.other += d.other();
    }
}

/// One device's own view at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// Open connections of its node.
    pub connections: usize,
    /// Whether one of them is to the coordinator.
    pub connected_to_coordinator: bool,
    /// Contributions it published (this boot).
    pub contributions_sent: u64,
    /// Events its node dropped (this boot).
    pub dropped: DroppedCounts,
    /// Whether the coordinator's node has a connection to it.
    pub coordinator_connected: bool,
    /// The coordinator's gossipsub score of it (its gossip is ignored below -80).
    pub coordinator_gossip_score: Option<f64>,
}

/// Quantiles of a set of values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quantiles {
    /// Count.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Quantiles {
    /// Quantiles of `values` (nearest rank).
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if values.is_empty() {
                return 0.0;
            }
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values.get(i).copied().unwrap_or(0.0)
        };
        Self {
            count: values.len(),
            min: values.first().copied().unwrap_or(0.0),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: values.last().copied().unwrap_or(0.0),
        }
    }
}

/// Fetch outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct FetchSummary {
    /// Operations.
    pub operations: usize,
    /// Succeeded.
    pub ok: usize,
    /// Failed.
    pub failed: usize,
    /// ok / operations.
    pub success_rate: f64,
    /// Not started because too many were in flight.
    pub shed: u64,
    /// Latency of successful operations, ms.
    pub latency_ms: Quantiles,
    /// Failures by reason.
    pub failures_by_reason: BTreeMap<String, u64>,
}

/// How one kind of misbehaviour fared.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    /// Devices of this kind.
    pub devices: usize,
    /// Caught.
    pub detected: usize,
    /// Seconds from misbehaviour to detection, over the caught ones.
    pub time_to_detection_s: Quantiles,
    /// What caught them.
    pub how: Vec<String>,
    /// Bits credited to them in total.
    pub credited_bits: u64,
    /// Devices quarantined.
    pub quarantined: usize,
    /// For share misbehaviour: devices that held a share at some point (the others never had
    /// a chance to misbehave).
    pub held_a_share: usize,
    /// Of those, detected.
    pub held_a_share_detected: usize,
    /// For entropy misbehaviour (biased, replayed, cloned): devices that left for good before
    /// their first lie reached the network (nothing to detect, nothing credited).
    pub left_before_misbehaving: usize,
    /// For entropy misbehaviour: devices still running at the end whose lie never went out
    /// (no lie published yet, or every copy of a clone was of a block its original dropped).
    #[serde(default)]
    pub never_lied: usize,
    /// Devices running at the end from which the coordinator never received a heartbeat: their
    /// gossip, lies included, never reached it (nothing to detect there).
    #[serde(default)]
    pub never_heard: usize,
}

/// A cloned device and its original, as the coordinator credited them.
#[derive(Debug, Clone, Serialize)]
pub struct ClonePair {
    /// The clone's index.
    pub clone: usize,
    /// Its original's index.
    pub original: usize,
    /// Bits credited to the clone.
    pub clone_credited_bits: u64,
    /// Bits credited to the original.
    pub original_credited_bits: u64,
    /// Whether the clone was detected.
    pub detected: bool,
    /// The original's contributions the coordinator refused, by reason (`cloned_entropy` when a
    /// copy reached it first).
    pub original_refusals: BTreeMap<String, u64>,
}

/// Memory, measured from `/proc/self/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// RSS with the coordinator and no device, MiB.
    pub baseline_mib: f64,
    /// RSS with every device running and the first session keyed, MiB.
    pub after_start_mib: f64,
    /// Highest RSS sampled, MiB.
    pub peak_mib: f64,
    /// (after_start − baseline) / devices, KiB.
    pub per_device_kib_after_start: f64,
    /// (peak − baseline) / devices, KiB.
    pub per_device_kib_peak: f64,
}

/// A misbehaving device the run did not catch, and what the coordinator last knew of it.
#[derive(Debug, Clone, Serialize)]
pub struct Undetected {
    /// Fleet index.
    pub index: usize,
    /// Its kind of misbehaviour.
    pub kind: String,
    /// Whether its lie went out (for the kinds that mark it).
    pub lied: bool,
    /// Whether it was still running at the end.
    pub running: bool,
    /// Attested and not quarantined, in the coordinator's last status.
    pub trusted: bool,
    /// Its quarantine, if any.
    pub quarantine: Option<String>,
    /// Contributions the coordinator refused from it, by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Seconds since its last heartbeat, at the end.
    pub heartbeat_age_s: Option<u64>,
    /// What the device itself saw at the end, if it ran.
    pub view: Option<DeviceView>,
}

/// A device's credited entropy.
#[derive(Debug, Clone, Serialize)]
pub struct Credited {
    /// Fleet index.
    pub index: usize,
    /// Role.
    pub role: Role,
    /// Bits credited.
    pub bits: u64,
}

/// A quarantine.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineLine {
    /// Fleet index.
    pub index: usize,
    /// Role.
    pub role: Role,
    /// Seconds into the run when first seen.
    pub at_s: f64,
    /// Reason, as the coordinator states it.
    pub reason: String,
    /// `cloned entropy`, `bad share` or `withheld share` (found by the coordinator's own check
    /// of a holder), `evidence refused`, or `unreachable` (a challenge that could not be
    /// delivered: the device was down).
    pub category: String,
}

/// One misbehaving device caught.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionLine {
    /// Fleet index.
    pub index: usize,
    /// Its kind.
    pub kind: String,
    /// Seconds into the run.
    pub at_s: f64,
    /// Seconds after its misbehaviour started.
    pub after_s: f64,
    /// What caught it.
    pub how: String,
}

/// A property the run must show, and whether it did.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The property.
    pub name: String,
    /// Held.
    pub passed: bool,
    /// The figure behind it.
    pub detail: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario as run.
    pub scenario: Scenario,
    /// Devices at the start.
    pub peers: usize,
    /// Wall seconds: starting devices, warm-up, run.
    pub wall_s: BTreeMap<String, f64>,
    /// Fetches.
    pub fetch: FetchSummary,
    /// Keys accepted that differ from their session's first key.
    pub wrong_keys_accepted: u64,
    /// Sessions created.
    pub sessions_created: u64,
    /// Session creations refused, by reason.
    pub session_create_failures: BTreeMap<String, u64>,
    /// Samples in which some session had fewer running holders than k.
    pub samples_with_session_below_k: usize,
    /// Fewest running holders of any session in any sample.
    pub min_running_holders: usize,
    /// Committed rotations by cause.
    pub rotations_by_cause: BTreeMap<String, u64>,
    /// Intake counters.
    pub intake: BTreeMap<String, u64>,
    /// Misbehaviour by kind.
    pub byzantine: BTreeMap<String, KindSummary>,
    /// Honest devices quarantined (clone originals quarantined for cloned entropy counted apart).
    pub honest_quarantined: usize,
    /// Honest devices quarantined only because a challenge could not reach them (down).
    pub honest_quarantined_unreachable: usize,
    /// Honest devices whose blocks were cloned and that were quarantined for cloned entropy too.
    pub clone_originals_quarantined: usize,
    /// Honest holders named for a bad share.
    pub honest_named_bad_share: usize,
    /// Every cloned device with its original.
    #[serde(default)]
    pub clone_pairs: Vec<ClonePair>,
    /// Misbehaving devices not caught (share misbehaviour only when they held a share).
    #[serde(default)]
    pub undetected: Vec<Undetected>,
    /// Publications of biased and replaying devices that failed, by error.
    #[serde(default)]
    pub lie_publish_failures: BTreeMap<String, u64>,
    /// Events nodes dropped because their owner was behind: the coordinator's, and all devices'.
    #[serde(default)]
    pub node_events_dropped: BTreeMap<String, DroppedCounts>,
    /// Every quarantine.
    pub quarantines: Vec<QuarantineLine>,
    /// Every misbehaving device caught.
    pub detections: Vec<DetectionLine>,
    /// Credited entropy per device.
    pub credited: Vec<Credited>,
    /// Memory.
    pub memory: Memory,
    /// Churn counts.
    pub churn: BTreeMap<String, f64>,
    /// Placements checked against the region and operator bounds, and violations.
    pub placements: BTreeMap<String, usize>,
    /// Partitions and outages as applied.
    pub events: Vec<AppliedEvent>,
    /// The properties.
    pub checks: Vec<Check>,
    /// Samples over time.
    pub samples: Vec<Sample>,
    /// Every fetch.
    pub fetches: Vec<FetchRecord>,
}

impl Report {
    /// Detection times (seconds into the run) by kind.
    pub fn detections_by_kind(&self) -> BTreeMap<String, Vec<f64>> {
        let mut map: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for d in &self.detections {
            map.entry(d.kind.clone()).or_default().push(d.at_s);
        }
        map
    }
}

/// Writes `report.json`, `report.md` and (when asked) the plots into `dir`.
pub fn write(report: &Report, dir: &Path, with_plots: bool) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("report.json"), json).map_err(|e| format!("report.json: {e}"))?;
    let plots = if with_plots {
        plots::draw_all(report, dir)?
    } else {
        Vec::new()
    };
    std::fs::write(dir.join("report.md"), markdown::render(report, &plots))
        .map_err(|e| format!("report.md: {e}"))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests;
