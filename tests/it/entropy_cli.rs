//! `entroshard entropy sources|sample|assess`, run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const ESTIMATORS: [&str; 10] = [
    "Most Common Value",
    "Collision",
    "Markov",
    "Compression",
    "t-Tuple",
    "Longest Repeated Substring",
    "MultiMCW Prediction",
    "Lag Prediction",
    "MultiMMC Prediction",
    "LZ78Y Prediction",
];

fn entroshard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_entroshard"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeds(args: &[&str]) -> String {
    let out = entroshard(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs the command, asserts it fails, and returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = entroshard(args);
    assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
    text(&out.stderr)
}

fn sample(source: &str, count: u32, file: &Path) {
    let out = entroshard(&[
        "entropy",
        "sample",
        "--source",
        source,
        "--count",
        &count.to_string(),
        "--raw",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "sample failed: {}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(
        summary.contains(&format!("wrote {count} samples")),
        "{summary}"
    );
}

/// The number on the `min-entropy: X bits per sample` line.
fn overall_min_entropy(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("min-entropy: "))
        .unwrap_or_else(|| panic!("no min-entropy line in:\n{stdout}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn samples_of_a_source_biased_to_ninety_percent_assess_near_a_sixth_of_a_bit_with_all_ten_estimators()
 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("biased.bin");
    // Simulated: the assertion needs a source whose true min-entropy is known (a 90 % bias).
    sample("sim:biased:0.9:1", 20_000, &file);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len(), 20_000);
    assert!(bytes.iter().all(|&b| b <= 1));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let stdout = succeeds(&["entropy", "assess", file.to_str().unwrap(), "--bits", "1"]);
    let h = overall_min_entropy(&stdout);
    // -log2(0.9) ≈ 0.152; the estimators' 99 % bounds pull a little below it.
    assert!((0.05..0.25).contains(&h), "min-entropy {h}:\n{stdout}");
    for name in ESTIMATORS {
        assert!(stdout.contains(name), "{name} missing:\n{stdout}");
    }
}

#[test]
fn assess_as_json_reports_every_estimate_and_the_same_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("correlated.bin");
    // Simulated: the assertion needs a known answer (a sample repeated half the time).
    sample("sim:correlated:4:0.5:3", 5_000, &file);
    let stdout = succeeds(&[
        "entropy",
        "assess",
        file.to_str().unwrap(),
        "--bits",
        "4",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["samples"], 5_000);
    assert_eq!(doc["bits_per_sample"], 4);
    let estimates = doc["estimates"].as_array().unwrap();
    // Seven estimators on the samples, ten on the bit string (less any not defined).
    let skipped = doc["skipped"].as_array().unwrap().len();
    assert_eq!(estimates.len() + skipped, 17);
    let min = estimates
        .iter()
        .map(|e| e["min_entropy_per_sample"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(doc["min_entropy_per_sample"].as_f64().unwrap(), min);
    // Repeats half the time: p_max ≈ 0.53, about 0.9 bit per sample.
    assert!((0.5..1.2).contains(&min), "{min}");
}

#[test]
fn assessing_a_ten_byte_file_fails_because_there_are_too_few_samples() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.bin");
    std::fs::write(&file, [0u8, 1, 0, 1, 1, 0, 0, 1, 0, 1]).unwrap();
    let stderr = fails(&["entropy", "assess", file.to_str().unwrap(), "--bits", "1"]);
    assert!(stderr.contains("too few samples"), "{stderr}");
    assert!(stderr.contains("1000"), "{stderr}");
}

#[test]
fn assessing_samples_wider_than_the_declared_bits_fails_and_names_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide.bin");
    let mut bytes = vec![0u8; 2000];
    bytes[1234] = 2;
    std::fs::write(&file, bytes).unwrap();
    let stderr = fails(&["entropy", "assess", file.to_str().unwrap(), "--bits", "1"]);
    assert!(stderr.contains("sample 1234"), "{stderr}");
    assert!(stderr.contains("--bits 1"), "{stderr}");
}

#[test]
fn assessing_a_file_that_does_not_exist_fails_and_names_it() {
    let stderr = fails(&[
        "entropy",
        "assess",
        "/nonexistent/samples.bin",
        "--bits",
        "4",
    ]);
    assert!(stderr.contains("/nonexistent/samples.bin"), "{stderr}");
}

#[test]
fn sources_lists_the_jitter_source_and_says_why_others_were_skipped() {
    // An empty system root: every sysfs and procfs source is skipped, jitter needs none.
    let root = tempfile::tempdir().unwrap();
    let stdout = succeeds(&[
        "entropy",
        "sources",
        "--seconds",
        "1",
        "--system-root",
        root.path().to_str().unwrap(),
    ]);
    let jitter = stdout
        .lines()
        .find(|l| l.starts_with("jitter "))
        .unwrap_or_else(|| panic!("no jitter line:\n{stdout}"));
    assert!(
        jitter.contains(" 4 ") && jitter.contains("0.500"),
        "{jitter}"
    );
    let skipped: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("skipped: "))
        .collect();
    assert!(skipped.len() >= 5, "{stdout}");
    assert!(skipped.iter().any(|l| l.contains("thermal")), "{stdout}");
}

#[test]
fn sources_on_this_machine_lists_jitter_with_a_live_estimate() {
    let stdout = succeeds(&["entropy", "sources", "--seconds", "1", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let sources = doc["sources"].as_array().unwrap();
    let jitter = sources
        .iter()
        .find(|s| s["name"] == "jitter")
        .unwrap_or_else(|| panic!("no jitter source: {stdout}"));
    assert_eq!(jitter["bits_per_sample"], 4);
    assert_eq!(jitter["rct_cutoff"], 41);
    assert!(jitter["samples"].as_u64().unwrap() > 100, "{jitter}");
    let mcv = jitter["mcv_min_entropy_per_sample"].as_f64().unwrap();
    assert!((0.0..=4.0).contains(&mcv), "{mcv}");
    assert!(doc["skipped"].is_array());
}

#[test]
fn sampling_without_raw_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.bin");
    let stderr = fails(&[
        "entropy",
        "sample",
        "--source",
        "jitter",
        "--count",
        "100",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(stderr.contains("only raw output is supported"), "{stderr}");
    assert!(stderr.contains("--raw"), "{stderr}");
    assert!(!file.exists());
}

#[test]
fn sampling_an_unknown_source_fails_and_lists_the_detected_ones() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = fails(&[
        "entropy",
        "sample",
        "--source",
        "no-such-source",
        "--count",
        "10",
        "--raw",
        "-o",
        dir.path().join("x.bin").to_str().unwrap(),
    ]);
    assert!(stderr.contains("no source named"), "{stderr}");
    assert!(stderr.contains("jitter"), "{stderr}");
}

#[test]
fn a_stuck_simulated_source_writes_the_same_byte_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stuck.bin");
    // Simulated: the fault under test, a source stuck on one value.
    sample("sim:stuck:1", 3_000, &file);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes, vec![1u8; 3_000]);
    let stdout = succeeds(&["entropy", "assess", file.to_str().unwrap(), "--bits", "1"]);
    assert_eq!(overall_min_entropy(&stdout), 0.0, "{stdout}");
}
