//! Tests for the CPU-load source against fake `/proc/stat` texts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::tests::{FakeRoot, find, names, samples_for};
use super::*;
use crate::sources::linux::detect;

/// A `/proc/stat` head as a 2-CPU kernel prints it, with the aggregate line's counters given.
fn stat(counters: [u64; 10]) -> String {
    let line: Vec<String> = counters.iter().map(u64::to_string).collect();
    format!(
        "cpu  {}\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\nintr 12345 0 0\nctxt 999\n",
        line.join(" ")
    )
}

#[test]
fn the_cpu_line_gives_eight_counters_and_ignores_guest_time() {
    let times = parse_cpu_times(Path::new("stat"), &stat([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).unwrap();
    assert_eq!(times, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn an_old_kernels_four_counters_are_enough_and_the_rest_read_as_zero() {
    let times = parse_cpu_times(Path::new("stat"), "cpu 10 20 30 40\n").unwrap();
    assert_eq!(times, [10, 20, 30, 40, 0, 0, 0, 0]);
}

#[test]
fn garbage_cpu_lines_are_typed_errors() {
    for text in [
        "",
        "cpu0 1 2 3 4 5 6 7 8\n",
        "intr 1 2 3\ncpu 1 2 3 4\n",
        "cpu 1 2 3\n",
        "cpu 1 2 x 4 5\n",
        "cpu 1 2 -3 4 5\n",
    ] {
        let err = parse_cpu_times(Path::new("p"), text).unwrap_err();
        assert!(matches!(err, SysfsError::Malformed { .. }), "{text:?}");
    }
}

#[test]
fn the_mix_is_the_xor_of_every_counters_change_masked() {
    let before = [100, 0, 50, 1000, 3, 0, 1, 0];
    // Changes 1, 0, 2, 3, 0, 0, 1, 0: XOR = 1 ^ 2 ^ 3 ^ 1 = 1.
    let after = [101, 0, 52, 1003, 3, 0, 2, 0];
    assert_eq!(mix_changes(&before, &after, 0b11), 1);
    // Nothing moved: 0.
    assert_eq!(mix_changes(&before, &before, 0b11), 0);
    // A counter going down wraps instead of panicking: change -1 keeps its low bits (11).
    let mut down = before;
    down[3] = 999;
    assert_eq!(mix_changes(&before, &down, 0b11), 3);
}

#[test]
fn cpu_load_is_offered_from_proc_stat_and_samples_the_mixed_changes() {
    let root = FakeRoot::new();
    let file = root.write("proc/stat", &stat([100, 0, 50, 1000, 3, 0, 1, 0, 0, 0]));
    let (mut sources, _) = detect(&root.config());
    assert!(names(&sources).contains(&"cpu:load".to_owned()));
    let source = find(&mut sources, "cpu:load");
    assert_eq!(source.spec().bits_per_sample(), 2);
    let out = samples_for(
        source,
        &file,
        &[
            // user +1, system +2, idle +3, softirq +1: 1 ^ 2 ^ 3 ^ 1 = 1.
            &stat([101, 0, 52, 1003, 3, 0, 2, 0, 0, 0]),
            // idle +2 only.
            &stat([101, 0, 52, 1005, 3, 0, 2, 0, 0, 0]),
            // Nothing moved.
            &stat([101, 0, 52, 1005, 3, 0, 2, 0, 0, 0]),
            // user +7: low bits 11.
            &stat([108, 0, 52, 1005, 3, 0, 2, 0, 0, 0]),
        ],
    );
    assert_eq!(out, [1, 2, 0, 3]);
}

#[test]
fn missing_or_garbage_proc_stat_is_skipped_and_a_vanished_one_is_unavailable() {
    let root = FakeRoot::new();
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "cpu:load").unwrap();
    assert!(entry.reason.contains("proc/stat"), "{entry:?}");

    let file = root.write("proc/stat", "intr 1 2 3\n");
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "cpu:load").unwrap();
    assert!(entry.reason.contains("malformed"), "{entry:?}");

    std::fs::write(&file, stat([1; 10])).unwrap();
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "cpu:load");
    std::fs::remove_file(&file).unwrap();
    let err = source.read_samples(&mut Vec::new(), 1).unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }));
}
