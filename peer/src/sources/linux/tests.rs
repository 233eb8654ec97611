//! Tests for the Linux sources against fake sysfs/procfs trees in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::jitter::check_timer;
use super::*;
use protocols::entropy::SourceSpec;
use std::fs;
use tempfile::TempDir;

/// A fake root with files written relative to it (shared with the sources' own test modules).
pub(super) struct FakeRoot(TempDir);

impl FakeRoot {
    pub(super) fn new() -> Self {
        FakeRoot(tempfile::tempdir().unwrap())
    }
    pub(super) fn path(&self) -> &Path {
        self.0.path()
    }
    pub(super) fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.0.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }
    pub(super) fn config(&self) -> DetectConfig {
        DetectConfig {
            root: self.path().to_owned(),
            sensor_poll: Duration::ZERO,
            iio_poll: Duration::ZERO,
            interrupts_poll: Duration::ZERO,
            net_poll: Duration::ZERO,
            softnet_poll: Duration::ZERO,
            wireless_poll: Duration::ZERO,
            cpu_load_poll: Duration::ZERO,
            packet_capture: false,
            packets_all_interfaces: false,
            jitter: false,
            feeds: Vec::new(),
        }
    }
}

pub(super) fn names(sources: &[Box<dyn EntropySource>]) -> Vec<String> {
    sources.iter().map(|s| s.name().to_owned()).collect()
}

pub(super) fn skipped_names(skipped: &[SkippedSource]) -> Vec<&str> {
    skipped.iter().map(|s| s.name.as_str()).collect()
}

pub(super) fn find<'a>(
    sources: &'a mut [Box<dyn EntropySource>],
    name: &str,
) -> &'a mut dyn EntropySource {
    sources
        .iter_mut()
        .find(|s| s.name() == name)
        .unwrap()
        .as_mut()
}

/// Reads one sample after writing each value in turn to `file`.
pub(super) fn samples_for(source: &mut dyn EntropySource, file: &Path, values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        fs::write(file, v).unwrap();
        source.read_samples(&mut out, 1).unwrap();
    }
    out
}

const INTERRUPTS: &str = "           CPU0       CPU1
  0:         10          0   IO-APIC   2-edge      timer
  1:          5          4   IO-APIC   1-edge      i8042
LOC:        100        200   Local timer interrupts
ERR:          7
MIS:          0
";

#[test]
fn every_built_in_claim_is_a_valid_spec() {
    for (bits, h) in [
        (THERMAL_BITS_PER_SAMPLE, THERMAL_MIN_ENTROPY),
        (HWMON_BITS_PER_SAMPLE, HWMON_MIN_ENTROPY),
        (IIO_BITS_PER_SAMPLE, IIO_MIN_ENTROPY),
        (INTERRUPTS_BITS_PER_SAMPLE, INTERRUPTS_MIN_ENTROPY),
        (NET_BITS_PER_SAMPLE, NET_MIN_ENTROPY),
        (JITTER_BITS_PER_SAMPLE, JITTER_MIN_ENTROPY),
        (HWRNG_BITS_PER_SAMPLE, HWRNG_MIN_ENTROPY),
        (CPU_LOAD_BITS_PER_SAMPLE, CPU_LOAD_MIN_ENTROPY),
        (SOFTNET_BITS_PER_SAMPLE, SOFTNET_MIN_ENTROPY),
        (WIRELESS_BITS_PER_SAMPLE, WIRELESS_MIN_ENTROPY),
        (INPUT_BITS_PER_SAMPLE, INPUT_MIN_ENTROPY),
        (PACKETS_BITS_PER_SAMPLE, PACKETS_MIN_ENTROPY),
    ] {
        let spec = SourceSpec::new(bits, h).unwrap();
        assert!(
            spec.min_entropy_per_sample() <= 1.0,
            "claims stay at or under one bit"
        );
    }
}

#[test]
fn an_empty_root_skips_every_kind_with_a_reason() {
    let root = FakeRoot::new();
    let (sources, skipped) = detect(&root.config());
    assert!(sources.is_empty());
    let names = skipped_names(&skipped);
    for kind in [
        "thermal",
        "hwmon",
        "iio",
        "interrupts",
        "hwrng",
        "net",
        "softnet",
        "packets",
        "wireless",
        "cpu:load",
        "input",
        "jitter",
    ] {
        assert!(names.contains(&kind), "{kind} missing from {names:?}");
    }
    assert!(skipped.iter().all(|s| !s.reason.is_empty()));
}

#[test]
fn thermal_zones_are_found_in_natural_order_and_sample_the_lsb_in_sensor_steps() {
    let root = FakeRoot::new();
    root.write("sys/class/thermal/thermal_zone10/temp", "30000\n");
    let zone2 = root.write("sys/class/thermal/thermal_zone2/temp", "45000\n");
    root.write("sys/class/thermal/cooling_device0/cur_state", "0\n");
    let (mut sources, _) = detect(&root.config());
    assert_eq!(
        names(&sources),
        ["thermal:thermal_zone2", "thermal:thermal_zone10"]
    );
    let zone = find(&mut sources, "thermal:thermal_zone2");
    assert_eq!(zone.spec().bits_per_sample(), 1);
    // Whole-degree steps: the step is learnt from the first change, then 45/46/47 °C give 1/0/1.
    let out = samples_for(zone, &zone2, &["46000", "45000", "47000", "47000", "44000"]);
    assert_eq!(out, [0, 1, 1, 1, 0]);
}

#[test]
fn a_thermal_zone_holding_garbage_is_skipped_not_offered() {
    let root = FakeRoot::new();
    root.write("sys/class/thermal/thermal_zone0/temp", "hot\n");
    let (sources, skipped) = detect(&root.config());
    assert!(names(&sources).iter().all(|n| !n.starts_with("thermal")));
    let entry = skipped
        .iter()
        .find(|s| s.name == "thermal:thermal_zone0")
        .unwrap();
    assert!(entry.reason.contains("malformed"), "{}", entry.reason);
}

#[test]
fn a_sensor_that_turns_to_garbage_or_vanishes_becomes_unavailable() {
    let root = FakeRoot::new();
    let temp = root.write("sys/class/thermal/thermal_zone0/temp", "40000\n");
    let (mut sources, _) = detect(&root.config());
    let zone = find(&mut sources, "thermal:thermal_zone0");
    fs::write(&temp, "\u{0}\u{1}garbage").unwrap();
    let err = zone.read_samples(&mut Vec::new(), 4).unwrap_err();
    let SourceError::Unavailable {
        source_name,
        reason,
    } = err;
    assert_eq!(source_name, "thermal:thermal_zone0");
    assert!(reason.contains("malformed"), "{reason}");
    fs::remove_file(&temp).unwrap();
    assert!(zone.read_samples(&mut Vec::new(), 1).is_err());
}

#[test]
fn hwmon_channels_of_every_type_are_named_by_device_and_channel() {
    let root = FakeRoot::new();
    for (file, value) in [
        ("temp1_input", "41000"),
        ("in0_input", "1200"),
        ("curr1_input", "350"),
        ("power1_input", "4500000"),
        ("fan1_input", "2400"),
        ("temp1_label", "Package id 0"),
        ("temp1_crit", "100000"),
        ("name", "coretemp"),
    ] {
        root.write(&format!("sys/class/hwmon/hwmon1/{file}"), value);
    }
    root.write("sys/class/hwmon/hwmon0/name", "acpitz");
    let (sources, skipped) = detect(&root.config());
    assert_eq!(
        names(&sources),
        [
            "hwmon:hwmon1/curr1",
            "hwmon:hwmon1/fan1",
            "hwmon:hwmon1/in0",
            "hwmon:hwmon1/power1",
            "hwmon:hwmon1/temp1"
        ]
    );
    assert!(skipped_names(&skipped).contains(&"hwmon:hwmon0"));
}

#[test]
fn hwmon_samples_follow_a_changing_voltage_in_its_own_steps() {
    let root = FakeRoot::new();
    let file = root.write("sys/class/hwmon/hwmon3/in1_input", "1200\n");
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "hwmon:hwmon3/in1");
    // Steps of 4 mV: 1204/4 = 301 (odd), 1208/4 = 302, 1212/4 = 303.
    let out = samples_for(source, &file, &["1204", "1208", "1212", "1212"]);
    assert_eq!(out, [1, 0, 1, 1]);
}

#[test]
fn iio_channels_of_the_sampled_kinds_are_found_and_others_ignored() {
    let root = FakeRoot::new();
    for file in [
        "in_accel_x_raw",
        "in_accel_y_raw",
        "in_illuminance_raw",
        "in_intensity_ir_raw",
        "in_anglvel_z_raw",
        "in_magn_x_raw",
        "in_voltage0_raw",
        "in_accel_scale",
    ] {
        root.write(&format!("sys/bus/iio/devices/iio:device0/{file}"), "-17\n");
    }
    root.write("sys/bus/iio/devices/iio:device1/in_voltage0_raw", "5");
    root.write("sys/bus/iio/devices/trigger0/name", "t");
    let (sources, skipped) = detect(&root.config());
    assert_eq!(
        names(&sources),
        [
            "iio:iio:device0/in_accel_x",
            "iio:iio:device0/in_accel_y",
            "iio:iio:device0/in_anglvel_z",
            "iio:iio:device0/in_illuminance",
            "iio:iio:device0/in_intensity_ir",
            "iio:iio:device0/in_magn_x"
        ]
    );
    assert!(skipped_names(&skipped).contains(&"iio:iio:device1"));
    assert!(sources.iter().all(|s| s.spec().bits_per_sample() == 2));
}

#[test]
fn iio_samples_keep_two_low_bits_of_negative_and_positive_counts() {
    let root = FakeRoot::new();
    let file = root.write("sys/bus/iio/devices/iio:device0/in_accel_z_raw", "-3\n");
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "iio:iio:device0/in_accel_z");
    let out = samples_for(source, &file, &["-2", "1", "6", "-5"]);
    assert_eq!(out, [2, 1, 2, 3]);
}

#[test]
fn interrupt_totals_sum_every_cpu_column_and_single_count_lines() {
    let total = parse_interrupt_total(Path::new("/proc/interrupts"), INTERRUPTS).unwrap();
    assert_eq!(total, 10 + 5 + 4 + 100 + 200 + 7);
}

#[test]
fn garbage_interrupt_tables_are_typed_errors() {
    for text in [
        "",
        "hello world\n 0: 1 2\n",
        "  CPU0\n",
        "  CPU0 CPU1\nnot a label 5 6\n",
        "  CPU0 CPU1\n  0: x y timer\n",
    ] {
        let err = parse_interrupt_total(Path::new("p"), text).unwrap_err();
        assert!(matches!(err, SysfsError::Malformed { .. }), "{text:?}");
    }
}

#[test]
fn the_interrupts_source_samples_low_bits_of_count_changes() {
    let root = FakeRoot::new();
    let file = root.write("proc/interrupts", INTERRUPTS);
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "interrupts");
    let with_loc = |loc: u64| INTERRUPTS.replace("100        200", &format!("{loc}        200"));
    let out = samples_for(
        source,
        &file,
        &[
            &with_loc(101),
            &with_loc(104),
            &with_loc(104),
            &with_loc(111),
        ],
    );
    assert_eq!(out, [1, 3, 0, 3]);
}

#[test]
fn network_interfaces_skip_loopback_and_down_links() {
    let root = FakeRoot::new();
    for (iface, state) in [("eth0", "up"), ("lo", "unknown"), ("ifb0", "down")] {
        root.write(&format!("sys/class/net/{iface}/operstate"), state);
        for c in ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"] {
            root.write(&format!("sys/class/net/{iface}/statistics/{c}"), "0");
        }
    }
    let (sources, skipped) = detect(&root.config());
    assert_eq!(names(&sources), ["net:eth0"]);
    let skipped = skipped_names(&skipped);
    assert!(skipped.contains(&"net:lo") && skipped.contains(&"net:ifb0"));
}

#[test]
fn a_loopback_only_host_offers_lo_and_samples_counter_changes() {
    let root = FakeRoot::new();
    let stats = "sys/class/net/lo/statistics";
    root.write("sys/class/net/lo/operstate", "unknown");
    for c in ["rx_packets", "tx_packets", "tx_bytes"] {
        root.write(&format!("{stats}/{c}"), "10");
    }
    let rx_bytes = root.write(&format!("{stats}/rx_bytes"), "1000");
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "net:lo");
    let out = samples_for(source, &rx_bytes, &["1001", "1003", "1003", "1064"]);
    assert_eq!(out, [1, 0, 0, 1]);
    fs::write(&rx_bytes, "-4").unwrap();
    assert!(source.read_samples(&mut Vec::new(), 1).is_err());
}

#[test]
fn the_sensor_sampler_learns_the_step_from_the_changes_it_sees() {
    let mut sampler = SensorSampler::new(2);
    assert_eq!(sampler.push(45001), 1, "step 1 until a change is seen");
    assert_eq!(sampler.step(), 1);
    sampler.push(45001);
    assert_eq!(sampler.step(), 1, "an unchanged reading teaches nothing");
    sampler.push(46001);
    assert_eq!(sampler.step(), 1000);
    sampler.push(45501);
    assert_eq!(sampler.step(), 500);
    assert_eq!(sampler.push(47001), 2, "47001 / 500 = 94, low bits 10");
}

#[test]
fn natural_order_puts_two_before_ten() {
    let mut names = ["zone10", "zone2", "zone1", "a", "zone02x"];
    names.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(names, ["a", "zone1", "zone2", "zone02x", "zone10"]);
}

#[test]
fn jitter_produces_samples_that_are_not_all_equal() {
    let mut source = JitterSource::open().unwrap();
    let mut out = Vec::new();
    source.read_samples(&mut out, 4096).unwrap();
    assert_eq!(out.len(), 4096);
    assert!(out.iter().all(|&s| s < 16));
    assert!(out.iter().any(|&s| s != out[0]), "all samples equal");
}

#[test]
fn jitter_samples_pass_the_continuous_health_tests_at_their_claim() {
    let mut source = JitterSource::open().unwrap();
    let mut health = protocols::entropy::HealthTester::new(source.spec());
    let mut out = Vec::new();
    source.read_samples(&mut out, 10_000).unwrap();
    for sample in out {
        health.feed(sample);
    }
    assert_eq!(health.failure(), None, "{:?}", health.counters());
}

#[test]
fn the_timer_check_refuses_a_stuck_or_coarse_clock() {
    assert!(check_timer(&[], 0x0f).is_err());
    assert!(check_timer(&[100, 0, 120], 0x0f).is_err());
    assert!(check_timer(&[1000; 256], 0x0f).is_err());
    let fine: Vec<u64> = (0..256).map(|i| 1000 + i * 7).collect();
    assert!(check_timer(&fine, 0x0f).is_ok());
}

#[test]
fn detect_on_this_machine_lists_what_exists() {
    let (mut sources, skipped) = detect(&DetectConfig::default());
    for source in &mut sources {
        let spec = source.spec();
        if source.name().starts_with("input:") {
            // Event-driven: a read blocks until someone presses a key.
            println!(
                "found {} (not read: it waits for key presses)",
                source.name()
            );
            continue;
        }
        let mut out = Vec::new();
        let result = source.read_samples(&mut out, 16);
        println!(
            "found {} (bits {}, claim {}): {:?} {:?}",
            source.name(),
            spec.bits_per_sample(),
            spec.min_entropy_per_sample(),
            out,
            result.err()
        );
    }
    for s in &skipped {
        println!("skipped {}: {}", s.name, s.reason);
    }
}

/// Bytes that look like a generator's output (an LCG), `len` of them.
fn varied_bytes(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

#[test]
fn hwrng_with_a_bound_driver_is_offered_under_its_driver_name_and_yields_whole_bytes() {
    let root = FakeRoot::new();
    root.write("sys/class/misc/hw_random/rng_current", "iproc-rng200\n");
    let bytes = varied_bytes(4096);
    let device = root.path().join("dev/hwrng");
    fs::create_dir_all(device.parent().unwrap()).unwrap();
    fs::write(&device, &bytes).unwrap();
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "hwrng:iproc-rng200");
    assert_eq!(source.spec().bits_per_sample(), 8);
    let mut out = Vec::new();
    source.read_samples(&mut out, 100).unwrap();
    // The open consumed the probe bytes; the samples are the following bytes, unmasked.
    assert_eq!(out, bytes[64..164]);
}

#[test]
fn hwrng_without_a_bound_driver_is_skipped_with_the_reason() {
    let root = FakeRoot::new();
    root.write("sys/class/misc/hw_random/rng_current", "none\n");
    root.write("dev/hwrng", "");
    let (sources, skipped) = detect(&root.config());
    assert!(sources.is_empty());
    let entry = skipped.iter().find(|s| s.name == "hwrng").unwrap();
    assert!(entry.reason.contains("rng_current is none"), "{entry:?}");
}

#[test]
fn hwrng_returning_identical_bytes_at_open_is_refused() {
    let root = FakeRoot::new();
    root.write("sys/class/misc/hw_random/rng_current", "bcm2835-rng\n");
    root.write("dev/hwrng", &"\0".repeat(4096));
    let (sources, skipped) = detect(&root.config());
    assert!(sources.is_empty());
    let entry = skipped
        .iter()
        .find(|s| s.name == "hwrng:bcm2835-rng")
        .unwrap();
    assert!(entry.reason.contains("identical bytes"), "{entry:?}");
}

#[test]
fn hwrng_that_gets_stuck_after_opening_is_cut_off_by_the_health_tests() {
    let root = FakeRoot::new();
    root.write("sys/class/misc/hw_random/rng_current", "bcm2835-rng\n");
    let mut bytes = varied_bytes(64);
    bytes.extend(std::iter::repeat_n(0x5a, 100_000));
    let device = root.path().join("dev/hwrng");
    fs::create_dir_all(device.parent().unwrap()).unwrap();
    fs::write(&device, &bytes).unwrap();
    let (mut sources, _) = detect(&root.config());
    let index = sources
        .iter()
        .position(|s| s.name() == "hwrng:bcm2835-rng")
        .unwrap();
    let mut pipeline = crate::pipeline::SourcePipeline::new(
        sources.swap_remove(index),
        crate::sources::device_conditioning_key(),
    )
    .unwrap();
    let out = pipeline.next_block(0, 100_000).unwrap();
    assert!(matches!(out, crate::pipeline::PipelineOutput::CutOff));
    assert!(pipeline.cut_off_at().is_some());
}

#[test]
fn hwrng_that_ends_becomes_unavailable() {
    let root = FakeRoot::new();
    let device = root.path().join("dev/hwrng");
    fs::create_dir_all(device.parent().unwrap()).unwrap();
    fs::write(&device, varied_bytes(80)).unwrap();
    let (mut sources, _) = detect(&root.config());
    let source = find(&mut sources, "hwrng");
    let mut out = Vec::new();
    source.read_samples(&mut out, 16).unwrap();
    assert!(matches!(
        source.read_samples(&mut out, 16),
        Err(SourceError::Unavailable { .. })
    ));
    assert_eq!(out.len(), 16);
}
