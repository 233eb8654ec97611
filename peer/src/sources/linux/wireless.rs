//! Radio signal noise (`/proc/net/wireless`): LSBs of each Wi-Fi interface's signal and noise level.
//!
//! The kernel prints one line per wireless interface: status, link quality, signal level and
//! noise level (integers, dBm on cfg80211 drivers), each followed by `.` when the driver refreshed
//! it, then discard and missed-beacon counters. Each poll (100 ms by default, about one beacon
//! interval) reads the interface's line; the sample is the low 2 bits of the signal level XOR the
//! noise level, each counted only when marked refreshed. Link quality is left out: cfg80211
//! derives it from the level, so it adds nothing, and most drivers report no noise level
//! (`-256`, unmarked), leaving the signal level alone.
//!
//! Claim: 2 bits per sample, 0.05 bit of min-entropy. The level is the last frame's received
//! power, rounded to 1 dB, and dithers by a dB or two with fading, interference and receiver
//! noise; but it moves only when frames arrive, a nearby transmitter can steer it, and it was not
//! measured on a board. The device's SP 800-90B assessment is the check on this upper bound.
//!
//! An interface that reports no refreshed level (not associated) is skipped at detection and
//! becomes unavailable if it loses its association later; a vanished line is unavailable too.

use super::{DetectConfig, Detected, OpenError, SysfsError, read_text, unavailable};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bits kept from each signal/noise reading.
pub const WIRELESS_BITS_PER_SAMPLE: u8 = 2;
/// Min-entropy claimed per wireless sample.
pub const WIRELESS_MIN_ENTROPY: f64 = 0.05;

/// Lines before the first interface line.
const HEADER_LINES: usize = 2;

/// One interface's line of `/proc/net/wireless`; each level with whether the driver refreshed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirelessReading {
    /// Interface name, e.g. `wlan0`.
    pub interface: String,
    /// Link quality and whether it is marked refreshed.
    pub link: (i64, bool),
    /// Signal level and whether it is marked refreshed.
    pub level: (i64, bool),
    /// Noise level and whether it is marked refreshed.
    pub noise: (i64, bool),
}

impl WirelessReading {
    /// Whether the driver refreshed the signal or the noise level for this reading.
    pub fn is_fresh(&self) -> bool {
        self.level.1 || self.noise.1
    }

    /// The sample: the low bits (under `mask`) of the refreshed signal level XOR the refreshed
    /// noise level (a level that is not refreshed counts as 0).
    pub fn sample(&self, mask: u8) -> u8 {
        let fresh = |(value, refreshed): (i64, bool)| if refreshed { value } else { 0 };
        ((fresh(self.level) ^ fresh(self.noise)) as u8) & mask
    }
}

/// Every interface line of a `/proc/net/wireless` text (possibly none).
pub fn parse_wireless(path: &Path, text: &str) -> Result<Vec<WirelessReading>, SysfsError> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.by_ref().take(HEADER_LINES).collect();
    if header.len() < HEADER_LINES || !header.iter().all(|l| l.contains('|')) {
        return Err(SysfsError::malformed(
            path,
            "missing the two header lines",
            text,
        ));
    }
    let mut readings = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (interface, rest) = line
            .split_once(':')
            .ok_or_else(|| SysfsError::malformed(path, "line without an interface", line))?;
        let mut fields = rest.split_whitespace();
        let status = fields.next().unwrap_or_default();
        if u32::from_str_radix(status, 16).is_err() {
            return Err(SysfsError::malformed(path, "bad status", line));
        }
        let mut next_level = || {
            fields
                .next()
                .and_then(parse_level)
                .ok_or_else(|| SysfsError::malformed(path, "bad link, level or noise", line))
        };
        let (link, level, noise) = (next_level()?, next_level()?, next_level()?);
        readings.push(WirelessReading {
            interface: interface.trim().to_owned(),
            link,
            level,
            noise,
        });
    }
    Ok(readings)
}

/// `-56.` → `(-56, true)`, `-256` → `(-256, false)`.
fn parse_level(token: &str) -> Option<(i64, bool)> {
    let (number, refreshed) = match token.strip_suffix('.') {
        Some(number) => (number, true),
        None => (token, false),
    };
    number.parse().ok().map(|value| (value, refreshed))
}

/// The reading of `interface` in the file at `path`, `None` when it has no line.
fn reading_of(path: &Path, interface: &str) -> Result<Option<WirelessReading>, SysfsError> {
    let readings = parse_wireless(path, &read_text(path)?)?;
    Ok(readings.into_iter().find(|r| r.interface == interface))
}

/// One Wi-Fi interface's signal and noise levels, named `wireless:<if>` (e.g. `wireless:wlan0`).
pub struct WirelessSource {
    name: String,
    interface: String,
    path: PathBuf,
    spec: SourceSpec,
    poll: Duration,
}

impl WirelessSource {
    /// Opens `interface` in `path` (normally `/proc/net/wireless`), refusing it unless its line
    /// is there with a refreshed level.
    pub fn open(path: PathBuf, interface: &str, poll: Duration) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(WIRELESS_BITS_PER_SAMPLE, WIRELESS_MIN_ENTROPY)?;
        let source = Self {
            name: format!("wireless:{interface}"),
            interface: interface.to_owned(),
            path,
            spec,
            poll,
        };
        source.read().map_err(OpenError::Unsuitable)?;
        Ok(source)
    }

    /// The interface's current reading, or why it gives none.
    fn read(&self) -> Result<WirelessReading, String> {
        match reading_of(&self.path, &self.interface) {
            Err(e) => Err(e.to_string()),
            Ok(None) => Err(format!(
                "{} is no longer listed in {}",
                self.interface,
                self.path.display()
            )),
            Ok(Some(r)) if !r.is_fresh() => Err(format!(
                "{} reports no refreshed signal or noise level (not associated?)",
                self.interface
            )),
            Ok(Some(r)) => Ok(r),
        }
    }
}

impl EntropySource for WirelessSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Appends exactly `max` samples, one per `poll`; takes about `max × poll`.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let mask = self.spec.sample_mask();
        out.reserve(max);
        for _ in 0..max {
            std::thread::sleep(self.poll);
            let reading = self.read().map_err(|e| unavailable(&self.name, e))?;
            out.push(reading.sample(mask));
        }
        Ok(())
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let path = config.root.join("proc/net/wireless");
    if !path.exists() {
        let reason = format!(
            "{} does not exist (a kernel without wireless extensions)",
            path.display()
        );
        return found.skip("wireless", reason);
    }
    let readings = match read_text(&path).and_then(|text| parse_wireless(&path, &text)) {
        Ok(readings) => readings,
        Err(e) => return found.skip("wireless", e),
    };
    if readings.is_empty() {
        let reason = format!("no wireless interfaces in {}", path.display());
        return found.skip("wireless", reason);
    }
    for reading in readings {
        let name = format!("wireless:{}", reading.interface);
        match WirelessSource::open(path.clone(), &reading.interface, config.wireless_poll) {
            Ok(source) => found.add(Box::new(source)),
            Err(e) => found.skip(&name, e),
        }
    }
}

#[cfg(test)]
#[path = "wireless_tests.rs"]
mod tests;
