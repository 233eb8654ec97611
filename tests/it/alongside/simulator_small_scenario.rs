//! A small but complete run: 50 real devices, every kind of misbehaviour, one region down;
//! the report must show no wrong key, every bad holder that held a share found, cloned, biased
//! and stuck entropy never credited, no clone's original blamed, and every session keeping k
//! running holders through the outage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use simulator::scenario::{Outage, Scenario};
use simulator::{Options, Progress};

fn scenario() -> Scenario {
    let mut s = Scenario {
        name: "test-small".into(),
        peers: 50,
        seed: 7,
        duration_s: 35.0,
        warmup_max_s: 90.0,
        ..Scenario::default()
    };
    s.outages.push(Outage {
        at_s: 12.0,
        duration_s: 16.0,
        region: "us-east".into(),
    });
    let b = &mut s.byzantine;
    b.tampered_shares = 0.06;
    b.withholding = 0.04;
    b.cloned = 0.04;
    b.biased = 0.02;
    b.stuck = 0.02;
    b.replayed = 0.02;
    b.failing_attestation = 0.02;
    b.false_heartbeats = 0.02;
    s.sessions.create_per_min = 40.0;
    s.sessions.max_live = 15;
    s.sessions.fetch_per_min = 300.0;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_fleet_with_misbehaviour_and_a_region_down_keeps_every_key_right() {
    let out = tempfile::tempdir().unwrap();
    let quiet = |_: &Progress| {};
    let report = simulator::run(
        Options {
            scenario: scenario(),
            out: out.path().to_path_buf(),
            work_dir: None,
            plots: true,
        },
        &quiet,
    )
    .await
    .unwrap();
    let summary = format!(
        "{:#?}\n{:#?}\n{:#?}",
        report.checks, report.byzantine, report.quarantines
    );

    assert_eq!(report.wrong_keys_accepted, 0, "{summary}");
    assert!(report.fetch.operations >= 50, "{summary}");
    assert!(
        report.fetch.success_rate >= 0.99,
        "fetch success {} ({:?})",
        report.fetch.success_rate,
        report.fetch.failures_by_reason
    );
    assert_eq!(
        report.samples_with_session_below_k, 0,
        "a session fell below k running holders with one region down"
    );
    assert!(
        report.events.iter().any(|e| e.what.contains("goes down")),
        "the outage happened: {:?}",
        report.events
    );

    let kind = |name: &str| report.byzantine.get(name).unwrap();
    // Every bad holder that held a share is found (the coordinator checks every holder itself,
    // decision 0014), and no honest holder is blamed.
    for name in ["tampered_shares", "withholding"] {
        let k = kind(name);
        assert!(k.held_a_share >= 1, "{name}: {summary}");
        assert_eq!(k.held_a_share_detected, k.held_a_share, "{name}: {summary}");
    }
    assert_eq!(report.honest_named_bad_share, 0, "{summary}");
    // Biased, stuck and cloned entropy is never credited; every clone is quarantined, and no
    // original with it (decision 0013).
    for name in ["biased", "stuck", "cloned"] {
        assert_eq!(kind(name).credited_bits, 0, "{name}: {summary}");
        assert_eq!(kind(name).detected, kind(name).devices, "{name}: {summary}");
    }
    assert_eq!(
        kind("cloned").quarantined,
        kind("cloned").devices,
        "{summary}"
    );
    assert_eq!(report.clone_originals_quarantined, 0, "{summary}");
    assert_eq!(
        kind("failing_attestation").detected,
        kind("failing_attestation").devices,
        "{summary}"
    );
    assert_eq!(
        kind("replayed").detected,
        kind("replayed").devices,
        "{summary}"
    );
    // A heartbeat claiming other labels than the enrolment is flagged (and never used).
    assert!(kind("false_heartbeats").devices >= 1, "{summary}");
    assert_eq!(
        kind("false_heartbeats").detected,
        kind("false_heartbeats").devices,
        "{summary}"
    );
    assert_eq!(report.honest_quarantined, 0, "{summary}");

    for file in [
        "report.json",
        "report.md",
        "fetch_success.png",
        "memory.svg",
    ] {
        let meta = std::fs::metadata(out.path().join(file)).unwrap();
        assert!(meta.len() > 500, "{file} is nearly empty");
    }
}
