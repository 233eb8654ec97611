//! Hardware monitors (`/sys/class/hwmon/hwmon*/{temp,in,curr,power,fan}N_input`): reading LSBs.
//!
//! Claim: 1 bit per sample, 0.1 bit of min-entropy, for every channel type. Voltages, currents,
//! power and fan speeds usually wobble by a few steps from conversion to conversion, but chips
//! convert as slowly as once a second and temperatures move in whole degrees, so a read every
//! 10 ms often repeats the last value; 0.1 bit is what a 90 %-predictable LSB still holds.
//! Only attributes directly in `hwmonN/` are read (not the pre-3.x `hwmonN/device/` layout).

use super::sensor::{PolledSensor, polled_sensor_source};
use super::{DetectConfig, Detected, OpenError, sorted_entries};
use protocols::entropy::SourceSpec;
use std::path::Path;
use std::time::Duration;

/// Bits kept from each hwmon reading.
pub const HWMON_BITS_PER_SAMPLE: u8 = 1;
/// Min-entropy claimed per hwmon sample.
pub const HWMON_MIN_ENTROPY: f64 = 0.1;

const CHANNEL_TYPES: [&str; 5] = ["temp", "in", "curr", "power", "fan"];

/// One hwmon channel, named `hwmon:hwmonN/<channel>` (e.g. `hwmon:hwmon1/temp1`).
pub struct HwmonSource(PolledSensor);

polled_sensor_source!(HwmonSource);

impl HwmonSource {
    /// Opens `<device_dir>/<channel>_input`, reading it once to check it.
    pub fn open(device_dir: &Path, channel: &str, poll: Duration) -> Result<Self, OpenError> {
        let device = device_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = SourceSpec::new(HWMON_BITS_PER_SAMPLE, HWMON_MIN_ENTROPY)?;
        let path = device_dir.join(format!("{channel}_input"));
        let sensor = PolledSensor::open(format!("hwmon:{device}/{channel}"), path, spec, poll)?;
        Ok(Self(sensor))
    }

    /// The attribute this source reads.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// The channel (`temp1`) named by a `temp1_input`-style attribute, if it is one we sample.
pub(crate) fn channel_of(file: &str) -> Option<&str> {
    let channel = file.strip_suffix("_input")?;
    let kind = channel.trim_end_matches(|c: char| c.is_ascii_digit());
    let numbered = kind.len() < channel.len();
    (numbered && CHANNEL_TYPES.contains(&kind)).then_some(channel)
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let dir = config.root.join("sys/class/hwmon");
    let devices = match sorted_entries(&dir, |n| n.starts_with("hwmon")) {
        Ok(devices) => devices,
        Err(e) => return found.skip("hwmon", format!("{}: {e}", dir.display())),
    };
    if devices.is_empty() {
        return found.skip("hwmon", format!("no hwmon* in {}", dir.display()));
    }
    for (device, path) in devices {
        let channels = match sorted_entries(&path, |n| channel_of(n).is_some()) {
            Ok(channels) => channels,
            Err(e) => {
                found.skip(
                    &format!("hwmon:{device}"),
                    format!("{}: {e}", path.display()),
                );
                continue;
            }
        };
        if channels.is_empty() {
            found.skip(
                &format!("hwmon:{device}"),
                "no {temp,in,curr,power,fan}N_input attributes",
            );
        }
        for (file, _) in channels {
            let Some(channel) = channel_of(&file) else {
                continue;
            };
            match HwmonSource::open(&path, channel, config.sensor_poll) {
                Ok(source) => found.add(Box::new(source)),
                Err(e) => found.skip(&format!("hwmon:{device}/{channel}"), e),
            }
        }
    }
}
