//! The report written from a fixed, made-up run: every file is there, `report.md` names every
//! plot, and the plots draw faults, detections and a second axis without error.

use super::checks::checks;
use super::*;
use crate::ByzantineKind;
use crate::observe::Sample;
use crate::workload::FetchRecord;

/// A report as a 100 s run with one region outage, two kinds of misbehaviour and a failed fetch
/// now and then would give.
fn made_up() -> Report {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/region_outage.toml"
    ));
    let mut scenario = Scenario::load(path).expect("scenario");
    scenario.duration_s = 100.0;
    let samples: Vec<Sample> = (0..50u32)
        .map(|i| {
            let t_s = f64::from(i) * 2.0;
            let down = (40.0..70.0).contains(&t_s);
            Sample {
                t_s,
                live_peers: if down { 24 } else { 30 },
                rss_mib: 40.0 + t_s / 10.0,
                fetch_ok: u64::from(i) * 10,
                fetch_failed: u64::from(i / 10),
                sessions: if i == 0 { 0 } else { 5 },
                holders_min: if down { 5 } else { 9 },
                holders_median: if down { 7.0 } else { 9.0 },
                sessions_below_k: 0,
                quarantined: (i / 20) as usize,
                rotations: BTreeMap::from([
                    ("due".to_string(), u64::from(i / 5)),
                    ("departure".to_string(), u64::from(i / 12)),
                ]),
                credited_bits: u64::from(i) * 1000,
            }
        })
        .collect();
    let fetches: Vec<FetchRecord> = (0..400)
        .map(|i| FetchRecord {
            at_s: f64::from(i) / 4.0,
            ok: i % 97 != 0,
            latency_ms: 20.0 + f64::from(i % 37) * 3.0,
            error: (i % 97 == 0).then(|| "only 3 of 4 holders failed: down".to_string()),
        })
        .collect();
    let credited: Vec<Credited> = (0..30)
        .map(|index| Credited {
            index,
            role: if index % 10 == 3 {
                Role::Byzantine(ByzantineKind::Stuck)
            } else {
                Role::Honest
            },
            bits: if index % 10 == 3 {
                0
            } else {
                20_000 + index as u64 * 500
            },
        })
        .collect();
    let detections = vec![
        DetectionLine {
            index: 3,
            kind: "stuck".into(),
            at_s: -2.0,
            after_s: 8.0,
            how: "health test".into(),
        },
        DetectionLine {
            index: 13,
            kind: "stuck".into(),
            at_s: 12.0,
            after_s: 9.0,
            how: "health test".into(),
        },
        DetectionLine {
            index: 17,
            kind: "tampered_shares".into(),
            at_s: 55.0,
            after_s: 30.0,
            how: "bad share named".into(),
        },
    ];
    let quarantines = vec![QuarantineLine {
        index: 3,
        role: Role::Byzantine(ByzantineKind::Stuck),
        at_s: 1.0,
        reason: "EvidenceRefused".into(),
        category: "evidence refused".into(),
    }];
    let mut report = Report {
        scenario,
        peers: 30,
        wall_s: BTreeMap::from([("run".to_string(), 100.0)]),
        fetch: FetchSummary {
            operations: fetches.len(),
            ok: fetches.iter().filter(|f| f.ok).count(),
            failed: fetches.iter().filter(|f| !f.ok).count(),
            success_rate: 395.0 / 400.0,
            shed: 0,
            latency_ms: Quantiles::of(fetches.iter().map(|f| f.latency_ms).collect()),
            failures_by_reason: BTreeMap::from([("not enough shares".to_string(), 5)]),
        },
        wrong_keys_accepted: 0,
        sessions_created: 5,
        session_create_failures: BTreeMap::new(),
        samples_with_session_below_k: 0,
        min_running_holders: 5,
        rotations_by_cause: BTreeMap::from([("due".to_string(), 9), ("departure".to_string(), 4)]),
        intake: BTreeMap::new(),
        byzantine: BTreeMap::new(),
        honest_quarantined: 0,
        honest_quarantined_unreachable: 0,
        clone_originals_quarantined: 0,
        clone_pairs: Vec::new(),
        undetected: Vec::new(),
        lie_publish_failures: BTreeMap::new(),
        node_events_dropped: BTreeMap::new(),
        honest_named_bad_share: 0,
        quarantines,
        detections,
        credited,
        memory: Memory {
            baseline_mib: 30.0,
            after_start_mib: 40.0,
            peak_mib: 49.8,
            per_device_kib_after_start: 341.0,
            per_device_kib_peak: 675.0,
        },
        churn: BTreeMap::new(),
        placements: BTreeMap::from([("checked".to_string(), 45), ("violations".to_string(), 0)]),
        events: Vec::new(),
        checks: Vec::new(),
        samples,
        fetches,
    };
    report.checks = checks(&report);
    report
}

#[test]
fn writes_json_markdown_and_every_plot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = made_up();
    write(&report, dir.path(), true).expect("report written");
    let md = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    let json = std::fs::read_to_string(dir.path().join("report.json")).expect("report.json");
    assert!(json.contains("\"rotations_by_cause\""));
    let stems = [
        "fetch_success",
        "fetch_latency_cdf",
        "live_holders",
        "rotations",
        "quarantines",
        "credited_entropy",
        "memory",
    ];
    for stem in stems {
        for ext in ["svg", "png"] {
            let file = dir.path().join(format!("{stem}.{ext}"));
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} is {len} bytes", file.display());
        }
        assert!(
            md.contains(&format!("{stem}.svg")),
            "report.md does not show {stem}"
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("fetch_success.svg")).expect("svg");
    assert!(
        svg.contains("region outage"),
        "the outage is not shaded and named"
    );
}
