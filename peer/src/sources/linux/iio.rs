//! Industrial-I/O sensors (`/sys/bus/iio/devices/iio:device*/in_<kind>…_raw`): raw-count LSBs.
//!
//! Sampled kinds: accelerometers, gyroscopes (`anglvel`), magnetometers, light (`illuminance`,
//! `intensity`). Claim: 2 bits per sample, 0.2 bit of min-entropy. A raw read in direct mode
//! triggers a fresh conversion, and MEMS accelerometers, gyroscopes and magnetometers show several
//! LSBs of thermal and quantisation noise even at rest; light sensors in steady light show less,
//! so the claim is set for the quietest kind and the two bits only give the noise room.

use super::sensor::{PolledSensor, polled_sensor_source};
use super::{DetectConfig, Detected, OpenError, sorted_entries};
use protocols::entropy::SourceSpec;
use std::path::Path;
use std::time::Duration;

/// Bits kept from each IIO reading.
pub const IIO_BITS_PER_SAMPLE: u8 = 2;
/// Min-entropy claimed per IIO sample.
pub const IIO_MIN_ENTROPY: f64 = 0.2;

const CHANNEL_KINDS: [&str; 5] = ["accel", "illuminance", "intensity", "anglvel", "magn"];

/// One IIO channel, named `iio:iio:deviceN/<channel>` (e.g. `iio:iio:device0/in_accel_x`).
pub struct IioSource(PolledSensor);

polled_sensor_source!(IioSource);

impl IioSource {
    /// Opens `<device_dir>/<channel>_raw`, reading it once to check it.
    pub fn open(device_dir: &Path, channel: &str, poll: Duration) -> Result<Self, OpenError> {
        let device = device_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = SourceSpec::new(IIO_BITS_PER_SAMPLE, IIO_MIN_ENTROPY)?;
        let path = device_dir.join(format!("{channel}_raw"));
        let sensor = PolledSensor::open(format!("iio:{device}/{channel}"), path, spec, poll)?;
        Ok(Self(sensor))
    }

    /// The attribute this source reads.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// The channel (`in_accel_x`) named by an `in_accel_x_raw`-style attribute, if we sample it.
///
/// Accepts `in_<kind>_raw`, `in_<kind>N_raw` and `in_<kind>[N]_<modifier>_raw`, so
/// `in_illuminance_raw`, `in_intensity_ir_raw` and `in_accel_x_raw` all qualify.
pub(crate) fn channel_of(file: &str) -> Option<&str> {
    let channel = file.strip_suffix("_raw")?;
    let rest = channel.strip_prefix("in_")?;
    let kind = rest.split('_').next()?;
    let kind = kind.trim_end_matches(|c: char| c.is_ascii_digit());
    CHANNEL_KINDS.contains(&kind).then_some(channel)
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let dir = config.root.join("sys/bus/iio/devices");
    let devices = match sorted_entries(&dir, |n| n.starts_with("iio:device")) {
        Ok(devices) => devices,
        Err(e) => return found.skip("iio", format!("{}: {e}", dir.display())),
    };
    if devices.is_empty() {
        return found.skip("iio", format!("no iio:device* in {}", dir.display()));
    }
    for (device, path) in devices {
        let channels = match sorted_entries(&path, |n| channel_of(n).is_some()) {
            Ok(channels) => channels,
            Err(e) => {
                found.skip(&format!("iio:{device}"), format!("{}: {e}", path.display()));
                continue;
            }
        };
        if channels.is_empty() {
            found.skip(
                &format!("iio:{device}"),
                "no in_{accel,illuminance,intensity,anglvel,magn}*_raw channels",
            );
        }
        for (file, _) in channels {
            let Some(channel) = channel_of(&file) else {
                continue;
            };
            match IioSource::open(&path, channel, config.iio_poll) {
                Ok(source) => found.add(Box::new(source)),
                Err(e) => found.skip(&format!("iio:{device}/{channel}"), e),
            }
        }
    }
}
