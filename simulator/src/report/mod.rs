//! The report: every figure in `report.json`, a summary table in `report.md`, and plots.

mod markdown;
mod plots;

use crate::fleet::Fleet;
use crate::observe::{Observer, Sample};
use crate::workload::{FetchRecord, WorkloadStats};
use crate::{ByzantineKind, Role, Scenario};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::Ordering;

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
    /// Whether this kind can be detected at all by the system today.
    pub detectable: bool,
    /// For share misbehaviour: devices that held a share at some point (the others never had
    /// a chance to misbehave).
    pub held_a_share: usize,
    /// Of those, detected.
    pub held_a_share_detected: usize,
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
    /// `cloned entropy`, `evidence refused`, or `unreachable` (a challenge that could not be
    /// delivered: the device was down).
    pub category: String,
}

/// Sorts a coordinator quarantine reason into what it means.
fn quarantine_category(reason: &str) -> &'static str {
    if reason.starts_with("ClonedEntropy") {
        "cloned entropy"
    } else if reason.starts_with("NoAnswer")
        || reason.contains("Failed to dial")
        || reason.contains("request to")
        || reason.contains("has shut down")
    {
        "unreachable"
    } else {
        "evidence refused"
    }
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
    /// Honest devices quarantined (clone originals counted apart).
    pub honest_quarantined: usize,
    /// Honest devices quarantined only because a challenge could not reach them (down).
    pub honest_quarantined_unreachable: usize,
    /// Honest devices whose blocks were cloned and that were quarantined too.
    pub clone_originals_quarantined: usize,
    /// Honest holders named for a bad share.
    pub honest_named_bad_share: usize,
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

fn reason_of(error: &str) -> String {
    let e = error.to_ascii_lowercase();
    if let Some(why) = error.split("holders failed: ").nth(1) {
        format!("not enough shares ({why})")
    } else if e.contains("shares") {
        "not enough shares".into()
    } else if e.starts_with("ticket") {
        "no ticket".into()
    } else {
        "other".into()
    }
}

/// Assembles the report from what the run measured.
pub fn build(
    scenario: &Scenario,
    fleet: &Fleet,
    observer: &Observer,
    stats: &WorkloadStats,
    facts: RunFacts,
) -> Report {
    let fetches = stats.fetches.lock().map(|f| f.clone()).unwrap_or_default();
    let ok = fetches.iter().filter(|f| f.ok).count();
    let mut failures_by_reason = BTreeMap::new();
    for f in fetches.iter().filter(|f| !f.ok) {
        *failures_by_reason
            .entry(reason_of(f.error.as_deref().unwrap_or("")))
            .or_insert(0) += 1;
    }
    let fetch = FetchSummary {
        operations: fetches.len(),
        ok,
        failed: fetches.len() - ok,
        success_rate: if fetches.is_empty() {
            0.0
        } else {
            ok as f64 / fetches.len() as f64
        },
        shed: stats.fetches_shed.load(Ordering::Relaxed),
        latency_ms: Quantiles::of(
            fetches
                .iter()
                .filter(|f| f.ok)
                .map(|f| f.latency_ms)
                .collect(),
        ),
        failures_by_reason,
    };
    let lines: BTreeMap<_, _> = observer.last_lines.iter().map(|l| (l.node, l)).collect();
    let credited: Vec<Credited> = fleet
        .peers
        .iter()
        .map(|p| Credited {
            index: p.index,
            role: p.role,
            bits: lines.get(&p.node).map(|l| l.credited_bits).unwrap_or(0),
        })
        .collect();
    let quarantines: Vec<QuarantineLine> = fleet
        .peers
        .iter()
        .filter_map(|p| {
            observer
                .quarantined
                .get(&p.node)
                .map(|(at_s, reason)| QuarantineLine {
                    index: p.index,
                    role: p.role,
                    at_s: *at_s,
                    category: quarantine_category(reason).to_string(),
                    reason: reason.clone(),
                })
        })
        .collect();
    let originals: BTreeSet<usize> = fleet.peers.iter().filter_map(|p| p.clone_of).collect();
    let honest_quarantined = quarantines
        .iter()
        .filter(|q| q.role == Role::Honest && !originals.contains(&q.index))
        .filter(|q| q.category != "unreachable")
        .count();
    let honest_quarantined_unreachable = quarantines
        .iter()
        .filter(|q| q.role == Role::Honest && q.category == "unreachable")
        .count();
    let clone_originals_quarantined = quarantines
        .iter()
        .filter(|q| originals.contains(&q.index))
        .count();
    let named = stats.named.lock().map(|n| n.clone()).unwrap_or_default();
    let honest_named_bad_share = fleet
        .peers
        .iter()
        .filter(|p| p.role == Role::Honest)
        .filter(|p| {
            named
                .get(&p.node)
                .is_some_and(|n| n.by_problem.contains_key("bad_share"))
        })
        .count();

    let mut byzantine = BTreeMap::new();
    for (kind, fraction) in scenario.byzantine.kinds() {
        let devices: Vec<_> = fleet
            .peers
            .iter()
            .filter(|p| p.role == Role::Byzantine(kind))
            .collect();
        if devices.is_empty() && fraction == 0.0 {
            continue;
        }
        let caught: Vec<_> = devices
            .iter()
            .filter_map(|p| observer.detections.get(&p.index))
            .collect();
        let how: BTreeSet<String> = caught.iter().map(|d| d.how.clone()).collect();
        byzantine.insert(
            kind.name().to_string(),
            KindSummary {
                devices: devices.len(),
                detected: caught.len(),
                time_to_detection_s: Quantiles::of(caught.iter().map(|d| d.after_s).collect()),
                how: how.into_iter().collect(),
                credited_bits: devices
                    .iter()
                    .map(|p| lines.get(&p.node).map(|l| l.credited_bits).unwrap_or(0))
                    .sum(),
                quarantined: devices
                    .iter()
                    .filter(|p| observer.quarantined.contains_key(&p.node))
                    .count(),
                detectable: kind != ByzantineKind::FalseHeartbeats,
                held_a_share: devices
                    .iter()
                    .filter(|p| observer.held_share.contains(&p.index))
                    .count(),
                held_a_share_detected: devices
                    .iter()
                    .filter(|p| observer.held_share.contains(&p.index))
                    .filter(|p| observer.detections.contains_key(&p.index))
                    .count(),
            },
        );
    }

    let peak = observer
        .samples
        .iter()
        .map(|s| s.rss_mib)
        .fold(facts.rss_after_start_mib, f64::max);
    let per_device =
        |mib: f64| (mib - facts.rss_baseline_mib).max(0.0) * 1024.0 / scenario.peers.max(1) as f64;
    let memory = Memory {
        baseline_mib: facts.rss_baseline_mib,
        after_start_mib: facts.rss_after_start_mib,
        peak_mib: peak,
        per_device_kib_after_start: per_device(facts.rss_after_start_mib),
        per_device_kib_peak: per_device(peak),
    };
    let figures = &observer.last_figures;
    let intake = BTreeMap::from([
        ("fips_passed".to_string(), figures.intake.fips_passed),
        ("fips_failed".to_string(), figures.intake.fips_failed),
        ("clones".to_string(), figures.intake.clones),
        ("replays".to_string(), figures.intake.replays),
        ("credited_bits".to_string(), figures.intake.credited),
    ]);
    let churn = BTreeMap::from([
        ("devices_that_left".to_string(), facts.left.len() as f64),
        (
            "fraction_that_left".to_string(),
            facts.left.len() as f64 / scenario.peers.max(1) as f64,
        ),
        ("left_for_good".to_string(), facts.left_for_good as f64),
        ("returned".to_string(), facts.returned as f64),
        ("joined".to_string(), facts.joined as f64),
    ]);
    let placements = BTreeMap::from([
        ("checked".to_string(), observer.placements_checked.len()),
        (
            "violations".to_string(),
            observer.placement_violations.len(),
        ),
    ]);
    let wall_s = BTreeMap::from([
        ("starting_devices".to_string(), facts.startup_s),
        ("warm_up".to_string(), facts.warmup_s),
        ("run".to_string(), facts.run_s),
    ]);
    let mut report = Report {
        scenario: scenario.clone(),
        peers: scenario.peers,
        wall_s,
        fetch,
        wrong_keys_accepted: stats.wrong_keys.load(Ordering::Relaxed),
        sessions_created: stats.sessions_created.load(Ordering::Relaxed),
        session_create_failures: stats
            .create_failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
        samples_with_session_below_k: observer
            .samples
            .iter()
            .filter(|s| s.sessions_below_k > 0)
            .count(),
        min_running_holders: observer
            .samples
            .iter()
            .filter(|s| s.sessions > 0)
            .map(|s| s.holders_min)
            .min()
            .unwrap_or(0),
        rotations_by_cause: figures.rotations_by_cause.clone(),
        intake,
        byzantine,
        honest_quarantined,
        honest_quarantined_unreachable,
        clone_originals_quarantined,
        honest_named_bad_share,
        quarantines,
        detections: fleet
            .peers
            .iter()
            .filter_map(|p| match (p.role, observer.detections.get(&p.index)) {
                (Role::Byzantine(kind), Some(d)) => Some(DetectionLine {
                    index: p.index,
                    kind: kind.name().to_string(),
                    at_s: d.at_s,
                    after_s: d.after_s,
                    how: d.how.clone(),
                }),
                _ => None,
            })
            .collect(),
        credited,
        memory,
        churn,
        placements,
        events: facts.events,
        checks: Vec::new(),
        samples: observer.samples.clone(),
        fetches,
    };
    report.checks = checks(&report);
    report
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

fn checks(r: &Report) -> Vec<Check> {
    let mut checks = vec![
        Check {
            name: "fetch success >= 99.9 %".into(),
            passed: r.fetch.operations > 0 && r.fetch.success_rate >= 0.999,
            detail: format!(
                "{} of {} ({:.3} %)",
                r.fetch.ok,
                r.fetch.operations,
                r.fetch.success_rate * 100.0
            ),
        },
        Check {
            name: "no wrong key accepted".into(),
            passed: r.wrong_keys_accepted == 0,
            detail: format!("{} wrong keys", r.wrong_keys_accepted),
        },
        Check {
            name: "no placement over the region or operator bound".into(),
            passed: r.placements.get("violations").copied().unwrap_or(0) == 0,
            detail: format!(
                "{} of {} placements",
                r.placements.get("violations").copied().unwrap_or(0),
                r.placements.get("checked").copied().unwrap_or(0)
            ),
        },
        Check {
            name: "no honest device quarantined for misbehaviour".into(),
            passed: r.honest_quarantined == 0,
            detail: format!(
                "{} (and {} quarantined while unreachable, lifted when they answer again)",
                r.honest_quarantined, r.honest_quarantined_unreachable
            ),
        },
        Check {
            name: "no honest holder named for a bad share".into(),
            passed: r.honest_named_bad_share == 0,
            detail: format!("{} honest holders", r.honest_named_bad_share),
        },
    ];
    for (kind, k) in &r.byzantine {
        if !k.detectable {
            checks.push(Check {
                name: format!("{kind}: claims ignored (not detectable by design)"),
                passed: r.placements.get("violations").copied().unwrap_or(0) == 0,
                detail: format!(
                    "{} devices; placement uses enrolled labels; {} credited bits",
                    k.devices, k.credited_bits
                ),
            });
            continue;
        }
        if matches!(kind.as_str(), "tampered_shares" | "withholding") {
            checks.push(Check {
                name: format!("{kind}: every device that held a share detected"),
                passed: k.held_a_share_detected == k.held_a_share,
                detail: format!(
                    "{} of {} (of {} devices; the others never held a share), median {:.1} s",
                    k.held_a_share_detected, k.held_a_share, k.devices, k.time_to_detection_s.p50
                ),
            });
            continue;
        }
        checks.push(Check {
            name: format!("{kind}: every device detected"),
            passed: k.detected == k.devices,
            detail: format!(
                "{} of {}, median {:.1} s after it started",
                k.detected, k.devices, k.time_to_detection_s.p50
            ),
        });
        if matches!(kind.as_str(), "biased" | "cloned" | "stuck") {
            checks.push(Check {
                name: format!("{kind}: nothing credited"),
                passed: k.credited_bits == 0,
                detail: format!("{} bits credited", k.credited_bits),
            });
        }
    }
    checks
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
