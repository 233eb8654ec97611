//! Taking a device's trust away and giving it back on a running coordinator, as an operator
//! types it: a withdrawn binary quarantines the peer at its next attestation, `allow` and
//! `peers unquarantine` make it trusted again, `peers remove` withdraws its enrolment (its
//! entropy is refused as `unenrolled` from then on) and the audit trail lists each step. Holds
//! the fleet slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::*;
use common::*;
use sha2::Digest;
use std::path::Path;
use std::time::{Duration, Instant};

/// The line of `coordinator peers list` for `peer` (None once it is not listed).
fn peer_line(coordinator: &Path, peer: &str) -> Option<String> {
    let listed = run_ok(
        &["coordinator", "peers", "list"],
        &[("--data-dir", coordinator)],
    );
    listed
        .lines()
        .find(|l| l.starts_with(peer))
        .map(str::to_string)
}

/// Waits until `peer`'s line satisfies `ok` (a bound on a hang, not an expected time).
fn wait_line(coordinator: &Path, peer: &str, what: &str, ok: impl Fn(Option<&str>) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let line = peer_line(coordinator, peer);
        if ok(line.as_deref()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peer never {what}; last line: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn trusted(line: Option<&str>) -> bool {
    line.is_some_and(|l| l.split_whitespace().nth(4) == Some("yes") && !l.contains("QUARANTINED"))
}

#[test]
fn a_peer_is_quarantined_unquarantined_and_removed_on_a_running_coordinator() {
    let coord = spawn_coordinator_with(512, 1, &[]);
    let c = coord.dir.path().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    init_peer(dir.path(), &coord.addr, "eu", "a", 700);
    let node = enrol_peer(&coord, dir.path(), "eu", "a");
    let peer = peer::identity::peer_id(&node).unwrap().to_string();
    let _running = spawn_peer(dir.path());
    wait_line(&c, &peer, "trusted", trusted);

    // Nothing to lift on a trusted peer: refused, non-zero.
    let out = entroshard()
        .args(["coordinator", "peers", "unquarantine", &peer, "--data-dir"])
        .arg(&c)
        .output()
        .unwrap();
    assert_refused(&out, &["not quarantined"]);

    // Withdraw the binary the peer runs: its next attestation quarantines it.
    let sha = hex::encode(sha2::Sha256::digest(
        std::fs::read(env!("CARGO_BIN_EXE_entroshard")).unwrap(),
    ));
    run_ok(&["coordinator", "disallow", &sha], &[("--data-dir", &c)]);
    wait_line(&c, &peer, "quarantined", |l| {
        l.is_some_and(|l| l.contains("QUARANTINED"))
    });

    // Allowed again and lifted: trusted after its next attestation.
    run_ok(&["coordinator", "allow", &sha], &[("--data-dir", &c)]);
    run_ok(
        &["coordinator", "peers", "unquarantine", &peer],
        &[("--data-dir", &c)],
    );
    wait_line(&c, &peer, "trusted again", trusted);

    // Removed: no longer listed, and what it keeps sending is refused as unenrolled.
    run_ok(
        &["coordinator", "peers", "remove", &peer],
        &[("--data-dir", &c)],
    );
    assert_eq!(peer_line(&c, &peer), None);
    let series = "entroshard_intake_rejections_total{reason=\"unenrolled\"}";
    let deadline = Instant::now() + DEADLINE;
    while metric(&http_get(&coord.metrics, "/metrics"), series).unwrap_or(0.0) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "a removed peer's contributions were never refused"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let trail = run_ok(&["coordinator", "audit"], &[("--data-dir", &c)]);
    let position = |what: &str| {
        trail
            .lines()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in the audit trail:\n{trail}"))
    };
    assert!(position("disallow") < position("peers unquarantine"));
    assert!(position("peers unquarantine") < position("peers remove"));
    let lifted = &trail.lines().nth(position("peers unquarantine")).unwrap();
    assert!(lifted.contains("BadEvidence"), "{lifted}");
}
