//! Assembling the report from what the run measured: fetch outcomes, quarantines sorted by
//! cause, misbehaviour by kind, memory, churn and placements.

use super::checks::checks;
use super::{
    ClonePair, Credited, DetectionLine, FetchSummary, KindSummary, Memory, Quantiles,
    QuarantineLine, Report, RunFacts, Undetected,
};
use crate::fleet::Fleet;
use crate::observe::Observer;
use crate::workload::WorkloadStats;
use crate::{ByzantineKind, Role, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

/// Sorts a coordinator quarantine reason into what it means.
fn quarantine_category(reason: &str) -> &'static str {
    if reason.starts_with("ClonedEntropy") {
        "cloned entropy"
    } else if reason.starts_with("BadShare") {
        "bad share"
    } else if reason.starts_with("WithheldShare") {
        "withheld share"
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

/// Sorts a fetch error into a failure reason for the summary.
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
    // An original quarantined with its clone is counted apart; quarantined for anything else
    // (unreachable aside), it is an honest device blamed.
    let with_its_clone =
        |q: &QuarantineLine| originals.contains(&q.index) && q.category == "cloned entropy";
    let honest_quarantined = quarantines
        .iter()
        .filter(|q| q.role == Role::Honest && !with_its_clone(q))
        .filter(|q| q.category != "unreachable")
        .count();
    let honest_quarantined_unreachable = quarantines
        .iter()
        .filter(|q| q.role == Role::Honest && q.category == "unreachable")
        .count();
    let clone_originals_quarantined = quarantines.iter().filter(|q| with_its_clone(q)).count();
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
        // Devices of a kind that marks its first lie, undetected, whose lie never went out:
        // those that left for good (`gone`) or those still running.
        let never_lied = |gone: bool| {
            if !kind.marks_first_lie() {
                return 0;
            }
            devices
                .iter()
                .filter(|p| p.gone == gone && !observer.detections.contains_key(&p.index))
                .filter(|p| p.misbehaving_since.lock().is_ok_and(|s| s.is_none()))
                .count()
        };
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
                held_a_share: devices
                    .iter()
                    .filter(|p| observer.held_share.contains(&p.index))
                    .count(),
                held_a_share_detected: devices
                    .iter()
                    .filter(|p| observer.held_share.contains(&p.index))
                    .filter(|p| observer.detections.contains_key(&p.index))
                    .count(),
                left_before_misbehaving: never_lied(true),
                never_lied: never_lied(false),
                never_heard: devices
                    .iter()
                    .filter(|p| p.is_running() && !observer.detections.contains_key(&p.index))
                    .filter(|p| p.misbehaving_since.lock().is_ok_and(|s| s.is_some()))
                    .filter(|p| {
                        lines
                            .get(&p.node)
                            .is_none_or(|l| l.heartbeat_age_s.is_none())
                    })
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
    let mut intake = BTreeMap::from([
        ("blocks".to_string(), figures.intake.blocks),
        ("clones".to_string(), figures.intake.clones),
        ("cancelled_bits".to_string(), figures.intake.cancelled),
        ("witnessed".to_string(), figures.intake.witnessed),
        ("replays".to_string(), figures.intake.replays),
        ("credited_bits".to_string(), figures.intake.credited),
    ]);
    for (reason, count) in &figures.intake.refused {
        intake.insert(format!("refused_{reason}"), *count);
    }
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
        undetected: fleet
            .peers
            .iter()
            .filter_map(|p| {
                let Role::Byzantine(kind) = p.role else {
                    return None;
                };
                let share_kind = matches!(
                    kind,
                    ByzantineKind::TamperedShares | ByzantineKind::Withholding
                );
                if observer.detections.contains_key(&p.index)
                    || (share_kind && !observer.held_share.contains(&p.index))
                {
                    return None;
                }
                let line = lines.get(&p.node);
                Some(Undetected {
                    index: p.index,
                    kind: kind.name().to_string(),
                    lied: p.misbehaving_since.lock().is_ok_and(|s| s.is_some()),
                    running: p.is_running(),
                    trusted: line.is_some_and(|l| l.trusted),
                    quarantine: line.and_then(|l| l.quarantine.clone()),
                    refusals: line.map(|l| l.refusals.clone()).unwrap_or_default(),
                    heartbeat_age_s: line.and_then(|l| l.heartbeat_age_s),
                    view: facts.device_views.get(&p.index).cloned(),
                })
            })
            .collect(),
        node_events_dropped: BTreeMap::from([
            ("coordinator".to_string(), facts.coordinator_dropped.clone()),
            ("devices".to_string(), facts.devices_dropped.clone()),
        ]),
        lie_publish_failures: fleet
            .lie_failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
        clone_pairs: fleet
            .peers
            .iter()
            .filter_map(|p| {
                let original = fleet.peers.get(p.clone_of?)?;
                let credited = |node| lines.get(node).map(|l| l.credited_bits).unwrap_or(0);
                Some(ClonePair {
                    clone: p.index,
                    original: original.index,
                    clone_credited_bits: credited(&p.node),
                    original_credited_bits: credited(&original.node),
                    detected: observer.detections.contains_key(&p.index),
                    original_refusals: lines
                        .get(&original.node)
                        .map(|l| l.refusals.clone())
                        .unwrap_or_default(),
                })
            })
            .collect(),
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
