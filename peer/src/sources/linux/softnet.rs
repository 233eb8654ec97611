//! Packet processing (`/proc/net/softnet_stat`): LSBs of how many packets the CPUs took in.
//!
//! Each sample is the low 2 bits of how many packets all CPUs' receive paths processed (the
//! first, hexadecimal column of each per-CPU line, summed) during one short sleep (5 ms by
//! default, twice the pace of the interface counters so more windows fall between arrivals).
//! Claim: 2 bits per sample, 0.05 bit of min-entropy. Packet arrivals are noisy but anyone on the
//! path can count and time them, an idle link does not move at all (the development VM's
//! counters stood still for seconds), and the same packets also move `net:<if>` and
//! `interrupts`, so only a floor is credited. Idle, the repetition-count test cuts it off.
//!
//! Per-packet arrival timestamps (`packets:<if>`, an `AF_PACKET` capture socket) are the better
//! packet source; this one stays as the stand-in where capture is refused, as under the shipped
//! unit, which grants no `CAP_NET_RAW` (docs/decisions/0039-new-linux-sources.md).

use super::{
    DetectConfig, Detected, OpenError, SysfsError, read_text, sample_counter_changes, unavailable,
};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bits kept from each change of the processed-packet count.
pub const SOFTNET_BITS_PER_SAMPLE: u8 = 2;
/// Min-entropy claimed per softnet sample.
pub const SOFTNET_MIN_ENTROPY: f64 = 0.05;

const NAME: &str = "softnet";

/// The per-CPU processed-packet counts of a `/proc/net/softnet_stat` text (one line per online
/// CPU, columns of 8 hexadecimal digits, the first being `processed`).
pub fn parse_softnet_processed(path: &Path, text: &str) -> Result<Vec<u64>, SysfsError> {
    let mut counts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let first = line.split_whitespace().next().unwrap_or_default();
        let count = u64::from_str_radix(first, 16)
            .map_err(|e| SysfsError::malformed(path, format!("bad processed count: {e}"), line))?;
        counts.push(count);
    }
    if counts.is_empty() {
        return Err(SysfsError::malformed(path, "no CPU lines", text));
    }
    Ok(counts)
}

/// The wrapping sum of every CPU's processed-packet count in the file at `path`.
fn processed_total(path: &Path) -> Result<u64, SysfsError> {
    let counts = parse_softnet_processed(path, &read_text(path)?)?;
    Ok(counts.iter().fold(0u64, |sum, c| sum.wrapping_add(*c)))
}

/// The machine's packet-processing counters, named `softnet`.
pub struct SoftnetSource {
    path: PathBuf,
    spec: SourceSpec,
    poll: Duration,
    last: u64,
}

impl SoftnetSource {
    /// Opens `path` (normally `/proc/net/softnet_stat`), reading it once to check it parses.
    pub fn open(path: PathBuf, poll: Duration) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(SOFTNET_BITS_PER_SAMPLE, SOFTNET_MIN_ENTROPY)?;
        let last = processed_total(&path)?;
        Ok(Self {
            path,
            spec,
            poll,
            last,
        })
    }
}

impl EntropySource for SoftnetSource {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Appends exactly `max` samples, one per `poll`; takes about `max × poll`. A CPU going
    /// offline drops its line and the total goes down: that change wraps, as only low bits count.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let path = &self.path;
        sample_counter_changes(
            out,
            max,
            self.spec.sample_mask(),
            self.poll,
            &mut self.last,
            || processed_total(path).map_err(|e| unavailable(NAME, e)),
        )
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let path = config.root.join("proc/net/softnet_stat");
    match SoftnetSource::open(path, config.softnet_poll) {
        Ok(source) => found.add(Box::new(source)),
        Err(e) => found.skip(NAME, e),
    }
}

#[cfg(test)]
#[path = "softnet_tests.rs"]
mod tests;
