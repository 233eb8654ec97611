//! End-to-end, as README "Five minutes on real machines" runs it on one machine: a coordinator
//! with its default entropy floor (2,048 credited bits from 3 attested peers), three peers on
//! this machine's own sources as shipped (every source detected, each assessed on 1,000,000
//! samples at the first start, a contribution a minute), and a requester using the CLI. The
//! session is created from real noise and its key fetched; each source's model is stored and
//! shown by `entropy models`; the coordinator audited the sources it credited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::{create_session, requester};
use common::*;
use std::time::Instant;

const PLACES: [(&str, &str); 3] = [
    ("eu-west", "alpha"),
    ("us-east", "bravo"),
    ("ap-south", "charlie"),
];

#[test]
fn three_peers_on_real_sources_with_coordinator_defaults_key_a_session_that_is_fetched() {
    let coord = spawn_coordinator_with(2048, 3, &["--attestation-interval", "30"]);
    let mut peers = Vec::new();
    for (region, operator) in PLACES {
        let dir = tempfile::tempdir().unwrap();
        init_peer_with(
            dir.path(),
            &coord.addr,
            region,
            operator,
            0,
            &[
                "--assess-samples",
                "1000000",
                "--contribution-interval",
                "60",
                "--heartbeat-interval",
                "15",
            ],
        );
        enrol_peer(&coord, dir.path(), region, operator);
        peers.push(dir);
    }
    let started = Instant::now();
    let _procs: Vec<Proc> = peers.iter().map(|d| spawn_peer(d.path())).collect();

    let req = tempfile::tempdir().unwrap();
    let pid = requester(&coord, req.path());
    run_ok(
        &["coordinator", "requesters", "add", &pid],
        &[("--data-dir", coord.dir.path())],
    );
    let ticket = req.path().join("ticket.cbor");
    let session = create_session(req.path(), &ticket, 3, 2, &[]);
    let to_session = started.elapsed();
    let key = fetch_key(req.path(), &ticket, "hex");
    let key = String::from_utf8(key).unwrap();
    assert_eq!(key.trim().len(), 64, "a 32-byte key in hex: {key}");
    eprintln!(
        "session {session} created {:.1} s after the peers started, on real sources",
        to_session.as_secs_f64()
    );

    // Every peer stores a model per source it uses, from the ten estimators (or its
    // declaration, when that was lower). A fast source (hwrng) can key the session before the
    // jitter source's 1,000,000-sample assessment ends on a busy machine (CI saw it once), so
    // each peer's jitter model is waited for, bounded by DEADLINE.
    for dir in &peers {
        let waited = Instant::now();
        loop {
            let models = run_ok(&["entropy", "models"], &[("--data-dir", dir.path())]);
            assert!(models.contains("SOURCE"), "{models}");
            if models.contains("jitter") {
                break;
            }
            assert!(
                waited.elapsed() < DEADLINE,
                "no jitter model after {} s: {models}",
                DEADLINE.as_secs()
            );
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    // The coordinator audited the sources it credited, itself, and quarantined none.
    let metrics = http_get(&coord.metrics, "/metrics");
    let assessed = metric(
        &metrics,
        "entroshard_entropy_audits_total{outcome=\"assessed\"}",
    );
    assert!(assessed.unwrap_or(0.0) >= 3.0, "{metrics}");
    assert_eq!(
        metric(
            &metrics,
            "entroshard_entropy_audits_total{outcome=\"overclaim\"}"
        ),
        None,
        "an honest device's source was accused:\n{}",
        cluster::log_tail(&coord.log_path())
    );
}
