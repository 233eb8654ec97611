//! The SIGKILL loop shared by the crash tests of the share store and the coordinator database.
//!
//! A writer process puts records forever and prints `ACK i` once record `i` is durable; the loop
//! kills it with SIGKILL after a random number of ACKs, collects every ACK it printed, checks they
//! continue where the previous run stopped, and lets the caller check the file. Std only, so that
//! crates other than the root package can include it with `#[path]`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Parses an `ACK i` line, failing the test on anything else.
pub fn parse_ack(line: &str) -> u64 {
    line.strip_prefix("ACK ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected writer output {line:?}"))
}

/// Starts `writer`, reads `wait_for` ACKs, SIGKILLs it and returns every ACK it printed, checked
/// to be consecutive and to start at `resume_at` (the writer resumes where the file ends).
pub fn kill_after_acks(mut writer: Command, wait_for: u64, resume_at: u64, run: u32) -> Vec<u64> {
    let mut child = writer
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while (acked.len() as u64) < wait_for {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("run {run}: writer stopped after {} ACKs", acked.len()))
            .unwrap();
        acked.push(parse_ack(&line));
    }
    // SIGKILL: the writer is in the middle of its next put (or of printing its next ACK).
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "run {run}: writer exited on its own: {status}"
    );
    // ACKs printed between our last read and the kill count too.
    for line in lines {
        acked.push(parse_ack(&line.unwrap()));
    }
    assert_eq!(
        acked[0], resume_at,
        "run {run}: writer did not resume where the file ends"
    );
    assert!(
        acked.windows(2).all(|w| w[1] == w[0] + 1),
        "run {run}: ACKs not consecutive"
    );
    acked
}

/// Runs `runs` rounds of [`kill_after_acks`] with `min_acks + random(0..97)` ACKs each.
/// After each round `check(run, last_acked)` must verify every record up to `last_acked` and
/// return how many records the file now holds (where the next run resumes). Returns that total.
pub fn sigkill_rounds(
    runs: u32,
    min_acks: u64,
    mut writer: impl FnMut() -> Command,
    mut check: impl FnMut(u32, u64) -> u64,
) -> u64 {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut stored = 0u64;
    for run in 0..runs {
        let wait_for = min_acks + u64::from(seed.wrapping_add(run * 7919) % 97);
        let acked = kill_after_acks(writer(), wait_for, stored, run);
        let last = *acked.last().unwrap();
        let len = check(run, last);
        // At most the one record whose put was under way when the kill landed is unacknowledged.
        assert!(
            len == last + 1 || len == last + 2,
            "run {run}: {len} records after ACK {last}"
        );
        stored = len;
    }
    stored
}
