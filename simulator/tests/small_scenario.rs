//! A small but complete run: 50 real devices, every kind of misbehaviour, one region down;
//! the report must show no wrong key, bad shares named, cloned and biased entropy not credited,
//! and every session keeping k running holders through the outage.

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
        at_s: 8.0,
        duration_s: 20.0,
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
    // Bad shares are caught and their holders named; no honest holder is.
    assert!(
        kind("tampered_shares").held_a_share_detected >= 1,
        "{summary}"
    );
    assert_eq!(report.honest_named_bad_share, 0, "{summary}");
    // Biased and stuck entropy is never credited. Every clone is detected and quarantined; a
    // clone can be credited only for copies of blocks the coordinator never received from the
    // original (the original not yet attested, or its block lost), which are fresh entropy to
    // the coordinator, and only until its first detected duplicate: at most one round's cap.
    for name in ["biased", "stuck"] {
        assert_eq!(kind(name).credited_bits, 0, "{name}: {summary}");
        assert_eq!(kind(name).detected, kind(name).devices, "{name}: {summary}");
    }
    let cloned = kind("cloned");
    assert_eq!(cloned.detected, cloned.devices, "{summary}");
    assert!(
        cloned.credited_bits <= 1024 * cloned.devices as u64,
        "{summary}"
    );
    assert_eq!(
        kind("cloned").quarantined,
        kind("cloned").devices,
        "{summary}"
    );
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
