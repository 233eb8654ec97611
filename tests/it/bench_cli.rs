//! End-to-end: `entroshard bench --json` starts a coordinator and peers, measures, and prints one
//! JSON document whose figures are all positive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use serde_json::Value;
use std::process::Command;

fn positive(doc: &Value, pointer: &str) -> f64 {
    let value = doc
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {doc:#}"));
    assert!(value > 0.0, "{pointer} is {value}, not positive");
    value
}

#[test]
fn a_short_bench_prints_positive_figures_as_json() {
    let _fleet = common::fleet_slot();
    let out = Command::new(env!("CARGO_BIN_EXE_entroshard"))
        .args([
            "bench",
            "--requests",
            "20",
            "--cold",
            "3",
            "--no-large",
            "--json",
            // What is tested is the bench's report, not the estimators: short windows and two
            // rotations start and finish a debug fleet sooner on a busy machine (decision 0052).
            "--window-samples",
            common::TEST_WINDOW_SAMPLES,
            "--rotations",
            "2",
            // The fewest peers the bench takes and one second of session creation: the figures'
            // shape is tested, and each debug peer costs start-up time on a busy machine.
            "--peers",
            "5",
            "--rate-seconds",
            "1",
        ])
        .output()
        .expect("the entroshard binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    for kind in ["warm", "cold"] {
        positive(&doc, &format!("/bare/{kind}/p50_ms"));
        positive(&doc, &format!("/bare/{kind}/p99_ms"));
    }
    assert_eq!(doc.pointer("/bare/warm/samples"), Some(&Value::from(20)));
    assert_eq!(doc.pointer("/bare/cold/samples"), Some(&Value::from(3)));

    assert_eq!(doc.pointer("/bare_fan_out/0/k"), Some(&Value::from(3)));
    for kind in ["warm", "cold"] {
        positive(&doc, &format!("/bare_fan_out/0/{kind}/p50_ms"));
    }

    let fetch = doc["fetch"].as_array().expect("fetch is a list");
    assert_eq!(fetch.len(), 1, "only (5,3) with --no-large: {fetch:?}");
    assert_eq!(
        (fetch[0]["n"].as_u64(), fetch[0]["k"].as_u64()),
        (Some(5), Some(3))
    );
    for kind in ["warm", "cold"] {
        for field in ["p50_ms", "p99_ms", "p50_ratio_to_bare", "p99_ratio_to_bare"] {
            positive(&doc, &format!("/fetch/0/{kind}/{field}"));
        }
    }

    positive(&doc, "/sessions/seconds");
    positive(&doc, "/sessions/created");
    positive(&doc, "/sessions/sessions_per_s");
    assert!(
        doc.pointer("/sessions/not_ready_refusals")
            .and_then(Value::as_u64)
            .is_some()
    );

    positive(&doc, "/rotation/median_ms");
    positive(&doc, "/rss/coordinator_kib");
    positive(&doc, "/rss/peer_kib");
    assert_eq!(doc.pointer("/rss/with_live_sessions"), Some(&Value::Null));
    assert_eq!(doc.pointer("/setup/peers"), Some(&Value::from(5)));
    assert!(
        stderr.contains("[bench]"),
        "no progress on stderr:\n{stderr}"
    );
}

/// Process ids whose parent is `parent`, and the state letter of a process (None once gone).
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat_fields(*pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// (state, parent pid) of `pid` from /proc/PID/stat.
fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: read after the last ')'.
    let mut rest = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

#[test]
fn a_bench_killed_with_sigkill_leaves_no_coordinator_or_peer_running() {
    let _fleet = common::fleet_slot();
    use std::io::BufRead;
    let mut bench = Command::new(env!("CARGO_BIN_EXE_entroshard"))
        .args([
            "bench",
            "--requests",
            "5",
            "--cold",
            "1",
            "--no-large",
            "--peers",
            "5",
        ])
        .args(["--window-samples", common::TEST_WINDOW_SAMPLES])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the entroshard binary runs");
    let stderr = bench.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    // Killed as soon as its coordinator and every peer run (before they are attested: what is
    // tested is that no child outlives the bench, whenever it dies).
    let starting = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("starting 5 peers"));
    assert!(starting, "the bench never started its peers");
    let deadline = std::time::Instant::now() + common::DEADLINE;
    let running = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"run"))
    };
    let children = loop {
        let children: Vec<u32> = children_of(bench.id())
            .into_iter()
            .filter(running)
            .collect();
        if children.len() >= 6 {
            break children;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a coordinator and 5 peers expected, found {children:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    bench.kill().unwrap();
    bench.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let running: Vec<u32> = children
            .iter()
            .copied()
            .filter(|pid| stat_fields(*pid).is_some_and(|(state, _)| state != 'Z'))
            .collect();
        if running.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 20 s after the bench was killed: {running:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
