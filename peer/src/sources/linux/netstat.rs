//! Network counters (`/sys/class/net/<if>/statistics/{rx,tx}_{packets,bytes}`): LSB of changes.
//!
//! Each sample is the low bit of how much the sum of the four counters grew during one sleep
//! (10 ms by default). Claim: 1 bit per sample, 0.05 bit of min-entropy. Packet sizes and arrival
//! times are noisy, but anyone on the path can count them and an idle link does not move at all,
//! so only the uncertainty of where our sampling windows fall is credited, and barely.
//!
//! `lo` moves only with local traffic, so it is offered only when no other interface is usable.
//! Interfaces whose `operstate` is `down`, `notpresent` or `lowerlayerdown` are skipped: their
//! counters are frozen and would only trip the health tests.

use super::{
    DetectConfig, Detected, OpenError, SysfsError, read_integer, sample_counter_changes,
    unavailable,
};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bits kept from each counter change.
pub const NET_BITS_PER_SAMPLE: u8 = 1;
/// Min-entropy claimed per network sample.
pub const NET_MIN_ENTROPY: f64 = 0.05;

const COUNTERS: [&str; 4] = ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"];
const DEAD_STATES: [&str; 3] = ["down", "notpresent", "lowerlayerdown"];

/// One interface's traffic counters, named `net:<if>` (e.g. `net:eth0`).
pub struct NetSource {
    name: String,
    statistics: PathBuf,
    spec: SourceSpec,
    poll: Duration,
    last: u64,
}

impl NetSource {
    /// Opens the interface directory `if_dir`, reading its counters once to check them.
    pub fn open(if_dir: &Path, poll: Duration) -> Result<Self, OpenError> {
        let interface = if_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = SourceSpec::new(NET_BITS_PER_SAMPLE, NET_MIN_ENTROPY)?;
        let statistics = if_dir.join("statistics");
        let last = counter_sum(&statistics)?;
        Ok(Self {
            name: format!("net:{interface}"),
            statistics,
            spec,
            poll,
            last,
        })
    }
}

/// The wrapping sum of an interface's packet and byte counters.
pub(crate) fn counter_sum(statistics: &Path) -> Result<u64, SysfsError> {
    let mut sum = 0u64;
    for counter in COUNTERS {
        let path = statistics.join(counter);
        let value = read_integer(&path)?;
        let value = u64::try_from(value)
            .map_err(|_| SysfsError::malformed(&path, "negative counter", &value.to_string()))?;
        sum = sum.wrapping_add(value);
    }
    Ok(sum)
}

impl EntropySource for NetSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Appends exactly `max` samples, one per `poll`; takes about `max × poll`.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let (name, statistics) = (&self.name, &self.statistics);
        sample_counter_changes(
            out,
            max,
            self.spec.sample_mask(),
            self.poll,
            &mut self.last,
            || counter_sum(statistics).map_err(|e| unavailable(name, e)),
        )
    }
}

/// The interfaces under `root/sys/class/net` in natural order, loopback (`lo`) apart: the other
/// interfaces are preferred, `lo` only sees local traffic.
pub(super) struct Interfaces {
    /// Every interface but `lo`, with its directory.
    pub(super) others: Vec<(String, PathBuf)>,
    /// `lo`, if present.
    pub(super) loopback: Option<PathBuf>,
}

/// Lists the interfaces under `config.root`; the error says why none could be listed.
pub(super) fn list_interfaces(config: &DetectConfig) -> Result<Interfaces, String> {
    let dir = config.root.join("sys/class/net");
    let interfaces =
        super::sorted_entries(&dir, |_| true).map_err(|e| format!("{}: {e}", dir.display()))?;
    if interfaces.is_empty() {
        return Err(format!("no interfaces in {}", dir.display()));
    }
    let (loopback, others): (Vec<_>, Vec<_>) =
        interfaces.into_iter().partition(|(name, _)| name == "lo");
    Ok(Interfaces {
        others,
        loopback: loopback.into_iter().next().map(|(_, path)| path),
    })
}

/// The `operstate` of the interface at `if_dir` when it says the link carries nothing (`down`,
/// `notpresent`, `lowerlayerdown`).
pub(super) fn dead_state(if_dir: &Path) -> Option<String> {
    let state = std::fs::read_to_string(if_dir.join("operstate")).unwrap_or_default();
    let state = state.trim();
    DEAD_STATES.contains(&state).then(|| state.to_owned())
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let interfaces = match list_interfaces(config) {
        Ok(interfaces) => interfaces,
        Err(reason) => return found.skip("net", reason),
    };
    let mut opened = 0usize;
    for (interface, path) in &interfaces.others {
        let name = format!("net:{interface}");
        if let Some(state) = dead_state(path) {
            found.skip(&name, format!("interface is {state}"));
            continue;
        }
        match NetSource::open(path, config.net_poll) {
            Ok(source) => {
                found.add(Box::new(source));
                opened += 1;
            }
            Err(e) => found.skip(&name, e),
        }
    }
    if let Some(path) = &interfaces.loopback {
        if opened > 0 {
            return found.skip(
                "net:lo",
                "loopback only sees local traffic and another interface is used",
            );
        }
        match NetSource::open(path, config.net_poll) {
            Ok(source) => found.add(Box::new(source)),
            Err(e) => found.skip("net:lo", e),
        }
    }
}
