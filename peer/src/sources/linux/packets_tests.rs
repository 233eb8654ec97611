//! Tests for the packet-timing source: the gap → sample rule, and a live capture on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::tests::{FakeRoot, names, skipped_names};
use super::*;
use crate::sources::linux::detect;
use std::net::UdpSocket;

/// Most datagrams the live test sends.
const MAX_DATAGRAMS: usize = 500;
/// Datagrams sent before each read.
const BATCH: usize = 20;
/// Samples the live test waits for.
const WANTED: usize = 32;

#[test]
fn a_gap_keeps_its_low_bits_under_the_mask() {
    assert_eq!(arrival_gap_sample(1_000, 1_023, 0x0f), Some(23 & 0x0f));
    assert_eq!(arrival_gap_sample(5, 5 + 0x1234_5678, 0x0f), Some(0x8));
    assert_eq!(arrival_gap_sample(0, 0xff, 0x03), Some(0x3));
    assert_eq!(
        arrival_gap_sample(7, 7 + 256, 0xff),
        Some(0),
        "only low bits count"
    );
}

#[test]
fn a_gap_of_zero_or_a_clock_stepped_back_gives_no_sample() {
    assert_eq!(arrival_gap_sample(1_000, 1_000, 0x0f), None);
    assert_eq!(arrival_gap_sample(1_000, 999, 0x0f), None);
}

#[test]
fn the_first_arrival_gives_no_sample_and_each_later_one_gives_its_gap() {
    let mut sampler = ArrivalSampler::new(PACKETS_BITS_PER_SAMPLE);
    assert_eq!(sampler.push(1_000_000_000), None);
    assert_eq!(sampler.push(1_000_000_037), Some(37 & 0x0f));
    assert_eq!(sampler.push(1_000_150_000), Some((149_963 % 16) as u8));
    assert_eq!(sampler.push(1_000_150_000), None, "same timestamp");
}

#[test]
fn after_the_clock_steps_back_sampling_restarts_from_the_new_time() {
    let mut sampler = ArrivalSampler::new(4);
    sampler.push(2_000_000_000);
    assert_eq!(sampler.push(1_000_000_000), None);
    assert_eq!(
        sampler.push(1_000_000_005),
        Some(5),
        "gap from the stepped-back time"
    );
}

#[test]
fn kernel_timestamps_convert_to_nanoseconds_and_impossible_ones_are_refused() {
    assert_eq!(timestamp_nanos(0i64, 0i64), Some(0));
    assert_eq!(
        timestamp_nanos(1_700_000_000i64, 123_456_789i64),
        Some(1_700_000_000_123_456_789)
    );
    assert_eq!(timestamp_nanos(-1i64, 0i64), None, "before the epoch");
    assert_eq!(
        timestamp_nanos(1i64, 1_000_000_000i64),
        None,
        "nanoseconds out of range"
    );
    assert_eq!(timestamp_nanos(1i64, -1i64), None);
    assert_eq!(
        timestamp_nanos(i64::MAX, 0i64),
        None,
        "overflows u64 nanoseconds"
    );
    assert_eq!(
        timestamp_nanos(1i32, 5i32),
        Some(1_000_000_005),
        "32-bit time fields"
    );
}

#[test]
fn only_frames_that_arrived_from_the_network_are_sampled() {
    // PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST.
    for kept in 0..=3 {
        assert!(is_arrival(kept), "{kept}");
    }
    // PACKET_OUTGOING, PACKET_LOOPBACK, PACKET_USER, PACKET_KERNEL.
    for dropped in 4..=7 {
        assert!(!is_arrival(dropped), "{dropped}");
    }
}

#[test]
fn capture_disabled_by_configuration_is_skipped_with_that_reason() {
    let root = FakeRoot::new();
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "packets").unwrap();
    assert_eq!(entry.reason, "disabled by configuration");
}

#[test]
fn a_root_without_interfaces_skips_packets_with_the_directory() {
    let root = FakeRoot::new();
    let config = DetectConfig {
        packet_capture: true,
        ..root.config()
    };
    let (sources, skipped) = detect(&config);
    assert!(names(&sources).iter().all(|n| !n.starts_with("packets")));
    let entry = skipped.iter().find(|s| s.name == "packets").unwrap();
    assert!(entry.reason.contains("sys/class/net"), "{entry:?}");
}

/// Opens `packets:lo`, or says why this machine cannot and returns `None`.
fn loopback_capture() -> Option<PacketSource> {
    match PacketSource::open(Some("lo")) {
        Ok(source) => Some(source),
        Err(e) => {
            println!("live capture test skipped: {e}");
            None
        }
    }
}

#[test]
fn a_loopback_only_root_offers_packets_lo_or_skips_the_kind_with_the_refusal() {
    let root = FakeRoot::new();
    root.write("sys/class/net/lo/operstate", "unknown");
    root.write("sys/class/net/ifb0/operstate", "down");
    let config = DetectConfig {
        packet_capture: true,
        ..root.config()
    };
    let (sources, skipped) = detect(&config);
    let packet_sources: Vec<String> = names(&sources)
        .into_iter()
        .filter(|n| n.starts_with("packets"))
        .collect();
    let skipped_names = skipped_names(&skipped);
    assert!(skipped_names.contains(&"packets:ifb0"), "{skipped:?}");
    match loopback_capture() {
        Some(_) => {
            assert_eq!(packet_sources, ["packets:lo"]);
            let opt_in = skipped.iter().find(|s| s.name == "packets").unwrap();
            assert!(opt_in.reason.contains("opt-in"), "{opt_in:?}");
        }
        None => {
            assert!(packet_sources.is_empty(), "{packet_sources:?}");
            let refusal = skipped.iter().find(|s| s.name == "packets").unwrap();
            assert!(
                refusal.reason.contains("CAP_NET_RAW") || refusal.reason.contains("AF_PACKET"),
                "{refusal:?}"
            );
        }
    }
}

#[test]
fn an_interface_the_kernel_does_not_know_is_refused_by_name() {
    let Err(e) = PacketSource::open(Some("entroshard-no-such-if0")) else {
        panic!("opened a capture on a missing interface");
    };
    assert!(e.to_string().contains("entroshard-no-such-if0"), "{e}");
}

#[test]
fn loopback_datagrams_sent_by_the_test_become_samples_when_capture_is_allowed() {
    let Some(mut source) = loopback_capture() else {
        return;
    };
    assert_eq!(source.name(), "packets:lo");
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = receiver.local_addr().unwrap();
    // A bound on a hang, not the expected duration: each read waits at most RECEIVE_TIMEOUT.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut out, mut sent) = (Vec::new(), 0usize);
    while out.len() < WANTED && Instant::now() < deadline {
        for _ in 0..BATCH.min(MAX_DATAGRAMS - sent) {
            sender.send_to(b"entroshard packet timing", target).unwrap();
            sent += 1;
        }
        let missing = WANTED - out.len();
        source.read_samples(&mut out, missing).unwrap();
        if sent == MAX_DATAGRAMS && out.len() < WANTED {
            // Everything is sent; one more read takes what is still queued, then give up.
            let missing = WANTED - out.len();
            source.read_samples(&mut out, missing).unwrap();
            break;
        }
    }
    assert!(
        out.len() >= WANTED,
        "{} samples from {sent} datagrams",
        out.len()
    );
    assert!(out.len() <= WANTED, "never more than asked for");
    assert!(out.iter().all(|&s| s < 16), "{out:?}");
    println!("{} samples from {sent} datagrams: {out:?}", out.len());
}
