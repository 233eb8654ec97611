//! Tests for the softnet source against fake `/proc/net/softnet_stat` texts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::tests::{FakeRoot, find, samples_for};
use super::*;
use crate::sources::linux::detect;

/// A 2-CPU `softnet_stat` as kernel 6.x prints it, with the CPUs' processed counts given.
fn softnet(cpu0: u64, cpu1: u64) -> String {
    let zeros = " 00000000".repeat(11);
    format!(
        "{cpu0:08x} 00000000 00000001{zeros} 00000000\n{cpu1:08x} 00000000 00000000{zeros} 00000001\n"
    )
}

#[test]
fn the_first_hex_column_of_each_cpu_line_is_its_processed_count() {
    let counts = parse_softnet_processed(Path::new("s"), &softnet(0x10, 0xe94)).unwrap();
    assert_eq!(counts, [0x10, 0xe94]);
}

#[test]
fn garbage_softnet_tables_are_typed_errors() {
    for text in ["", "\n\n", "processed dropped\n", "0000001g 00000000\n"] {
        let err = parse_softnet_processed(Path::new("p"), text).unwrap_err();
        assert!(matches!(err, SysfsError::Malformed { .. }), "{text:?}");
    }
}

#[test]
fn softnet_samples_the_low_bits_of_the_packets_processed_per_window() {
    let root = FakeRoot::new();
    let file = root.write("proc/net/softnet_stat", &softnet(100, 200));
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "softnet");
    assert_eq!(source.spec().bits_per_sample(), 2);
    let out = samples_for(
        source,
        &file,
        &[
            &softnet(101, 200),
            &softnet(103, 203),
            &softnet(103, 203),
            // CPU 1 went offline: the total drops by 203 and wraps; low bits of -203 are 01.
            &format!("{:08x} 00000000 00000000\n", 103),
        ],
    );
    assert_eq!(out, [1, 1, 0, 1]);
}

#[test]
fn a_kernel_without_softnet_stat_skips_it_with_the_path() {
    let root = FakeRoot::new();
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "softnet").unwrap();
    assert!(entry.reason.contains("softnet_stat"), "{entry:?}");
}
