//! Tests for the wireless source against fake `/proc/net/wireless` texts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::tests::{FakeRoot, find, names, samples_for};
use super::*;
use crate::sources::linux::detect;

const HEADER: &str =
    "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
";

/// `/proc/net/wireless` with one line per `(interface, link, level, noise)`, as the kernel
/// formats them (`%3d%c  %4d%c  %4d%c`).
fn wireless(lines: &[(&str, &str, &str, &str)]) -> String {
    let mut text = HEADER.to_owned();
    for (interface, link, level, noise) in lines {
        text.push_str(&format!(
            "{interface:>6}: 0000  {link:>4}  {level:>5}  {noise:>5}        0      0      0      0      0        0\n"
        ));
    }
    text
}

#[test]
fn an_interface_line_gives_its_levels_and_which_were_refreshed() {
    let text = format!(
        "{HEADER} wlan0: 0000   54.  -56.  -256        0      0      0      0      0        0\n"
    );
    let readings = parse_wireless(Path::new("w"), &text).unwrap();
    assert_eq!(
        readings,
        [WirelessReading {
            interface: "wlan0".into(),
            link: (54, true),
            level: (-56, true),
            noise: (-256, false),
        }]
    );
    // -56 = ...11001000: low bits 00; the unrefreshed noise does not count.
    assert_eq!(readings[0].sample(0b11), 0);
    assert!(readings[0].is_fresh());
}

#[test]
fn a_refreshed_noise_level_is_mixed_into_the_sample() {
    let text = wireless(&[("wlan1", "40.", "-71.", "-94.")]);
    let readings = parse_wireless(Path::new("w"), &text).unwrap();
    assert_eq!(readings[0].noise, (-94, true));
    // Level -71 alone has low bits 01, noise -94 has 10: mixed, 11.
    assert_eq!(readings[0].sample(0b11), 3);
}

#[test]
fn a_header_without_interfaces_parses_to_none() {
    assert!(parse_wireless(Path::new("w"), HEADER).unwrap().is_empty());
}

#[test]
fn garbage_wireless_tables_are_typed_errors() {
    for text in [
        String::new(),
        "wlan0: 0000 54. -56. -256\n".to_owned(),
        format!("{HEADER}wlan0 0000 54. -56. -256\n"),
        format!("{HEADER}wlan0: zz 54. -56. -256\n"),
        format!("{HEADER}wlan0: 0000 54. -56.\n"),
        format!("{HEADER}wlan0: 0000 54. strong -256\n"),
    ] {
        let err = parse_wireless(Path::new("p"), &text).unwrap_err();
        assert!(matches!(err, SysfsError::Malformed { .. }), "{text:?}");
    }
}

#[test]
fn associated_interfaces_are_offered_and_unassociated_ones_skipped() {
    let root = FakeRoot::new();
    root.write(
        "proc/net/wireless",
        &wireless(&[("wlan0", "54.", "-56.", "-256"), ("wlan1", "0", "0", "0")]),
    );
    let (sources, skipped) = detect(&root.config());
    assert!(names(&sources).contains(&"wireless:wlan0".to_owned()));
    let entry = skipped.iter().find(|s| s.name == "wireless:wlan1").unwrap();
    assert!(entry.reason.contains("not associated"), "{entry:?}");
}

#[test]
fn wireless_samples_follow_the_signal_level_and_stop_when_the_link_goes() {
    let root = FakeRoot::new();
    let at = |level: &str| wireless(&[("wlan0", "54.", level, "-256")]);
    let file = root.write("proc/net/wireless", &at("-56."));
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "wireless:wlan0");
    assert_eq!(source.spec().bits_per_sample(), 2);
    // -57 → 11, -58 → 10, -55 → 01, -56 → 00.
    let out = samples_for(
        source,
        &file,
        &[&at("-57."), &at("-58."), &at("-55."), &at("-56.")],
    );
    assert_eq!(out, [3, 2, 1, 0]);
    // Association lost: the levels are no longer refreshed.
    std::fs::write(&file, wireless(&[("wlan0", "0", "0", "0")])).unwrap();
    let err = source.read_samples(&mut Vec::new(), 1).unwrap_err();
    assert!(err.to_string().contains("not associated"), "{err}");
    // Interface removed.
    std::fs::write(&file, HEADER).unwrap();
    let err = source.read_samples(&mut Vec::new(), 1).unwrap_err();
    assert!(err.to_string().contains("no longer listed"), "{err}");
}

#[test]
fn a_kernel_without_wireless_extensions_or_interfaces_skips_wireless_with_why() {
    let root = FakeRoot::new();
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "wireless").unwrap();
    assert!(entry.reason.contains("does not exist"), "{entry:?}");
    root.write("proc/net/wireless", HEADER);
    let (_, skipped) = detect(&root.config());
    let entry = skipped.iter().find(|s| s.name == "wireless").unwrap();
    assert!(entry.reason.contains("no wireless interfaces"), "{entry:?}");
}
