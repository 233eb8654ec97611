//! Thermal zones (`/sys/class/thermal/thermal_zone*/temp`): LSB of each reading in sensor steps.
//!
//! Claim: 1 bit per sample, 0.1 bit of min-entropy. Zone temperatures are millidegrees that most
//! sensors resolve only to 1 °C (sometimes 0.1 °C or coarser) and that move slowly, so whether the
//! last step was up or down between two reads 10 ms apart is mostly predictable; 0.1 bit allows a
//! 90 %-likely LSB and still lets the repetition-count test (cut-off 201) catch a frozen zone.

use super::sensor::{PolledSensor, polled_sensor_source};
use super::{DetectConfig, Detected, OpenError, sorted_entries};
use protocols::entropy::SourceSpec;
use std::path::Path;
use std::time::Duration;

/// Bits kept from each thermal reading.
pub const THERMAL_BITS_PER_SAMPLE: u8 = 1;
/// Min-entropy claimed per thermal sample.
pub const THERMAL_MIN_ENTROPY: f64 = 0.1;

/// One thermal zone, named `thermal:thermal_zoneN`.
pub struct ThermalSource(PolledSensor);

polled_sensor_source!(ThermalSource);

impl ThermalSource {
    /// Opens the zone directory `zone_dir` (holding `temp`), reading it once to check it.
    pub fn open(zone_dir: &Path, poll: Duration) -> Result<Self, OpenError> {
        let zone = zone_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = SourceSpec::new(THERMAL_BITS_PER_SAMPLE, THERMAL_MIN_ENTROPY)?;
        let sensor =
            PolledSensor::open(format!("thermal:{zone}"), zone_dir.join("temp"), spec, poll)?;
        Ok(Self(sensor))
    }

    /// The attribute this source reads.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let dir = config.root.join("sys/class/thermal");
    let zones = match sorted_entries(&dir, |n| n.starts_with("thermal_zone")) {
        Ok(zones) => zones,
        Err(e) => return found.skip("thermal", format!("{}: {e}", dir.display())),
    };
    if zones.is_empty() {
        return found.skip("thermal", format!("no thermal_zone* in {}", dir.display()));
    }
    for (zone, path) in zones {
        match ThermalSource::open(&path, config.sensor_poll) {
            Ok(source) => found.add(Box::new(source)),
            Err(e) => found.skip(&format!("thermal:{zone}"), e),
        }
    }
}
