//! End-to-end: `entroshard demo` runs the whole system on loopback (real processes, the machine's
//! own entropy sources) and reports each step; bad options are refused before anything starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

/// `entroshard demo ARGS`. Not `exits_with_this_test`: the demo's own children would inherit it
/// and find their parent (the demo, not this test) a different process.
fn demo_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_entroshard"));
    cmd.arg("demo").args(args);
    cmd
}

fn demo(args: &[&str]) -> std::process::Output {
    demo_command(args)
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
fn demo_with_too_few_peers_exits_non_zero_with_the_reason_and_starts_nothing() {
    let out = demo(&["--peers", "4", "--n", "3", "--k", "2"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least n + 2 peers"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn demo_with_impossible_threshold_is_refused_with_the_parameters() {
    let out = demo(&["--peers", "9", "--n", "5", "--k", "6"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid sharing parameters n = 5, k = 6"),
        "{stderr}"
    );
}

/// `demo ARGS` with its output read as it comes: `on_line` sees each line of stdout.
fn demo_watched(args: &[&str], mut on_line: impl FnMut(&str)) -> (bool, String, String) {
    use std::io::{BufRead, Read};
    let mut child = demo_command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the entroshard binary runs");
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        on_line(&line);
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = child.wait().unwrap();
    (status.success(), stdout, stderr.join().unwrap())
}

#[test]
fn networked_demo_runs_every_step_with_real_processes() {
    let fleet = common::fleet_slot();
    // Every step as shipped, on the machine's own sources; each source assessed and audited on
    // the test window rather than 1,000,000 and 100,000 samples (real_sources runs peers as
    // shipped): what makes a debug fleet slow, not what the steps show. Once its peers are
    // attested the demo's fleet has started (decision 0070).
    let (ok, stdout, stderr) =
        demo_watched(&["--window-samples", common::TEST_WINDOW_SAMPLES], |line| {
            if line.contains("peers attested") {
                fleet.started();
            }
        });
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");
    for expected in [
        "7 of 7 peers attested",
        "entropy receipt:",
        "same as A",
        "ticket refused (not named by the session)",
        "the connection's peer is not the ticket's requester",
        "same key from the remaining holders",
        "epoch 1:",
        "writable regions, no copy of the key",
        "coordinator down: A fetched with the ticket it holds",
        "KiB, no copy of the key",
        "a new ticket, the same key",
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
    // Each step's time, for `--nocapture` and nextest's `--success-output`.
    eprintln!("{stdout}");
}
