//! End-to-end: the `entroshard demo` binary runs the whole core pipeline and reports each step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

fn demo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_entroshard"))
        .arg("demo")
        .arg("--core")
        .args(args)
        .output()
        .expect("the entroshard binary runs")
}

/// The key itself is never printed, only its fingerprint: at least four are shown, all the same.
fn assert_one_fingerprint_only(stdout: &str) {
    let fingerprints: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split("key fingerprint ").nth(1))
        .map(|f| f.split_whitespace().next().unwrap_or(""))
        .collect();
    assert!(
        fingerprints.len() >= 4 && fingerprints.windows(2).all(|w| w[0] == w[1]),
        "{fingerprints:?}"
    );
}

#[test]
fn demo_runs_every_step_and_both_requesters_get_the_same_key() {
    let out = demo(&["--seed", "11"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "CUT OFF at sample 123 (RCT cutoff 41)",
        "clones flagged 2",
        "excluded: peer-6 (sent cloned entropy)",
        "same key as A",
        "holder refused: the connection's peer is not the ticket's requester",
        "rejected: share 1 of holder",
        "commitment 0 unchanged",
        "same key after rotation",
        "demo finished",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert_one_fingerprint_only(&stdout);
}

#[test]
fn demo_with_too_few_peers_exits_non_zero_with_the_reason() {
    let out = demo(&["--peers", "3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 4 peers"));
}

#[test]
fn demo_with_impossible_threshold_is_refused_with_the_parameters() {
    let out = demo(&["--seed", "3", "--n", "5", "--k", "6"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid sharing parameters n = 5, k = 6"),
        "{stderr}"
    );
}

#[test]
fn demo_whose_quorum_cannot_be_placed_names_the_failing_step() {
    // 7 peers but one is excluded as a clone: 6 eligible cannot hold n = 7.
    let out = demo(&["--seed", "3", "--n", "7", "--k", "4"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(quorum: 7 of 7 devices"), "{stderr}");
}

#[test]
fn networked_demo_runs_every_step_with_real_processes() {
    let _fleet = common::fleet_slot();
    let out = Command::new(env!("CARGO_BIN_EXE_entroshard"))
        .arg("demo")
        .output()
        .expect("the entroshard binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "7 of 7 peers attested",
        "entropy receipt:",
        "same as A",
        "ticket refused (not named by the session)",
        "the connection's peer is not the ticket's requester",
        "same key from the remaining holders",
        "epoch 1:",
        "B received: \"hello from A to B over the session key\"",
        "holds a different session key",
        "demo finished",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert_one_fingerprint_only(&stdout);
}
