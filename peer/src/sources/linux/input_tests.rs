//! Tests for the key-timing source on hand-built evdev record streams and a fake sysfs tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::tests::{FakeRoot, find, names};
use super::*;
use crate::sources::linux::detect;

const EV_SYN: u16 = 0;
const EV_MSC: u16 = 4;
const KEY_A: u16 = 30;

/// One record in this target's layout, field by field.
fn record(micros: u64, kind: u16, code: u16, value: i32) -> Vec<u8> {
    let (seconds, microseconds) = (micros / 1_000_000, micros % 1_000_000);
    let mut bytes = Vec::new();
    #[cfg(target_pointer_width = "64")]
    {
        bytes.extend(seconds.to_ne_bytes());
        bytes.extend(microseconds.to_ne_bytes());
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        bytes.extend((seconds as u32).to_ne_bytes());
        bytes.extend((microseconds as u32).to_ne_bytes());
    }
    bytes.extend(kind.to_ne_bytes());
    bytes.extend(code.to_ne_bytes());
    bytes.extend(value.to_ne_bytes());
    assert_eq!(bytes.len(), INPUT_EVENT_BYTES);
    bytes
}

/// A key event followed by the report's `EV_SYN`, as a keyboard driver emits them.
fn key(micros: u64, value: i32) -> Vec<u8> {
    [
        record(micros, EV_KEY, KEY_A, value),
        record(micros, EV_SYN, 0, 0),
    ]
    .concat()
}

/// Presses and releases at 1.000000, 1.150003 (+150003 µs), 1.230010 (+80007), an
/// auto-repeat at 1.260000 and a press at 1.400021 (+170011): samples 3, 7 and 11.
fn typing() -> Vec<u8> {
    [
        key(1_000_000, 1),
        key(1_150_003, 0),
        key(1_230_010, 1),
        key(1_260_000, 2),
        key(1_400_021, 0),
    ]
    .concat()
}

#[cfg(all(target_pointer_width = "64", target_endian = "little"))]
#[test]
fn a_recorded_key_press_and_release_parse_and_give_one_sample() {
    #[rustfmt::skip]
    let stream: [u8; 5 * 24] = [
        // 1694498816.100000 EV_MSC MSC_SCAN 0x1e
        0x00, 0x00, 0x00, 0x65, 0, 0, 0, 0,  0xa0, 0x86, 0x01, 0, 0, 0, 0, 0,  4, 0,  4, 0,  0x1e, 0, 0, 0,
        // 1694498816.100000 EV_KEY KEY_A press
        0x00, 0x00, 0x00, 0x65, 0, 0, 0, 0,  0xa0, 0x86, 0x01, 0, 0, 0, 0, 0,  1, 0,  30, 0,  1, 0, 0, 0,
        // 1694498816.100000 EV_SYN SYN_REPORT
        0x00, 0x00, 0x00, 0x65, 0, 0, 0, 0,  0xa0, 0x86, 0x01, 0, 0, 0, 0, 0,  0, 0,  0, 0,  0, 0, 0, 0,
        // 1694498816.180013 EV_KEY KEY_A release
        0x00, 0x00, 0x00, 0x65, 0, 0, 0, 0,  0x2d, 0xbf, 0x02, 0, 0, 0, 0, 0,  1, 0,  30, 0,  0, 0, 0, 0,
        // 1694498816.180013 EV_SYN SYN_REPORT
        0x00, 0x00, 0x00, 0x65, 0, 0, 0, 0,  0x2d, 0xbf, 0x02, 0, 0, 0, 0, 0,  0, 0,  0, 0,  0, 0, 0, 0,
    ];
    let events: Vec<InputEvent> = parse_input_events(&stream).collect();
    assert_eq!(events.len(), 5);
    assert_eq!(
        events[0],
        InputEvent {
            seconds: 0x6500_0000,
            microseconds: 100_000,
            kind: EV_MSC,
            code: 4,
            value: 0x1e
        }
    );
    assert_eq!(
        (events[3].kind, events[3].code, events[3].value),
        (EV_KEY, KEY_A, 0)
    );
    assert_eq!(events[3].microseconds, 180_013);
    let mut sampler = KeyTimingSampler::new(4);
    let samples: Vec<u8> = events.iter().filter_map(|e| sampler.push(e)).collect();
    // 80013 µs = 0x1388d: low nibble 0xd.
    assert_eq!(samples, [0xd]);
}

#[test]
fn records_in_this_targets_layout_parse_field_by_field_and_a_partial_tail_is_ignored() {
    let mut bytes = record(3_000_042, EV_KEY, KEY_A, -7);
    bytes.extend(&record(5, EV_SYN, 0, 0)[..INPUT_EVENT_BYTES - 1]);
    let events: Vec<InputEvent> = parse_input_events(&bytes).collect();
    let expected = InputEvent {
        seconds: 3,
        microseconds: 42,
        kind: EV_KEY,
        code: KEY_A,
        value: -7,
    };
    assert_eq!(events, [expected]);
    assert_eq!(expected.micros(), 3_000_042);
}

#[test]
fn only_later_presses_and_releases_give_samples() {
    let events: Vec<InputEvent> = parse_input_events(&typing()).collect();
    let mut sampler = KeyTimingSampler::new(4);
    let samples: Vec<u8> = events.iter().filter_map(|e| sampler.push(e)).collect();
    assert_eq!(
        samples,
        [3, 7, 11],
        "the repeat and the SYN events give none"
    );

    let mut sampler = KeyTimingSampler::new(4);
    let press = |micros| {
        parse_input_events(&record(micros, EV_KEY, KEY_A, 1))
            .next()
            .unwrap()
    };
    assert_eq!(sampler.push(&press(1_000_000)), None, "first press");
    assert_eq!(sampler.push(&press(1_000_000)), None, "same report");
    assert_eq!(sampler.push(&press(900_000)), None, "clock stepped back");
    assert_eq!(
        sampler.push(&press(900_017)),
        Some(1),
        "restarted from the earlier time"
    );
}

#[test]
fn the_ev_key_bit_is_read_from_the_lowest_bitmask_word() {
    let path = Path::new("ev");
    assert!(reports_key_events(path, "120013\n").unwrap(), "keyboard");
    assert!(reports_key_events(path, "17\n").unwrap(), "mouse");
    assert!(
        !reports_key_events(path, "9\n").unwrap(),
        "accelerometer: SYN and ABS"
    );
    assert!(
        !reports_key_events(path, "2 0\n").unwrap(),
        "bit 1 of a higher word"
    );
    for text in ["", " \n", "zz\n"] {
        let err = reports_key_events(path, text).unwrap_err();
        assert!(matches!(err, SysfsError::Malformed { .. }), "{text:?}");
    }
}

#[test]
fn key_devices_are_offered_and_others_skipped_with_the_reason() {
    let root = FakeRoot::new();
    for (device, ev) in [("event0", "120013"), ("event1", "9"), ("event2", "17")] {
        root.write(
            &format!("sys/class/input/{device}/device/capabilities/ev"),
            ev,
        );
    }
    root.write("sys/class/input/event3/device/name", "no capabilities");
    root.write("sys/class/input/mice/device/capabilities/ev", "17");
    root.write("dev/input/event0", "");
    let (sources, skipped) = detect(&root.config());
    assert_eq!(
        names(&sources)
            .into_iter()
            .filter(|n| n.starts_with("input"))
            .collect::<Vec<_>>(),
        ["input:event0"]
    );
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.reason.clone())
            .unwrap()
    };
    assert!(reason("input:event1").contains("EV_KEY"));
    assert!(
        reason("input:event2").contains("dev/input/event2"),
        "no device node"
    );
    assert!(reason("input:event3").contains("capabilities/ev"));
    assert!(skipped.iter().all(|s| s.name != "input:mice"));
}

#[test]
fn a_device_delivers_between_one_and_max_samples_per_read_then_ends_unavailable() {
    let root = FakeRoot::new();
    root.write("sys/class/input/event4/device/capabilities/ev", "120013");
    let device = root.path().join("dev/input/event4");
    std::fs::create_dir_all(device.parent().unwrap()).unwrap();
    std::fs::write(&device, typing()).unwrap();
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "input:event4");
    assert_eq!(source.spec().bits_per_sample(), 4);
    let mut out = Vec::new();
    let err = loop {
        let before = out.len();
        match source.read_samples(&mut out, 2) {
            Ok(()) => assert!((1..=2).contains(&(out.len() - before)), "{out:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(out, [3, 7, 11]);
    assert!(err.to_string().contains("stopped delivering"), "{err}");
}

#[test]
fn no_input_class_or_no_event_devices_skip_input_with_why() {
    let root = FakeRoot::new();
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "input").unwrap();
    assert!(entry.reason.contains("sys/class/input"), "{entry:?}");
    root.write("sys/class/input/mice/device/capabilities/ev", "17");
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "input").unwrap();
    assert!(entry.reason.contains("no event devices"), "{entry:?}");
}
