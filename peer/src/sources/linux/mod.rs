//! Real Linux entropy sources (sysfs sensors, kernel counters, radio signal levels, key-press
//! and packet-arrival timings, the board's hardware RNG, CPU timing jitter) and `detect`.
//!
//! Every path is resolved under [`DetectConfig::root`] (normally `/`), so tests can point the
//! parsers at a fake sysfs tree in a temporary directory. Hardware that is absent is skipped
//! with a [`SkippedSource`] entry and a `tracing::info!` line; nothing is ever simulated here.
//!
//! Sampling rule shared by the polled sources: one read → one sample, the sample being the low
//! `bits_per_sample` bits of the reading (sensors, after dividing out the sensor's quantisation
//! step) or of the change since the previous read (counters). Raw samples are handed on
//! unconditioned so the health tests downstream see a stuck or slow sensor for what it is.
//!
//! Event-driven sources (key presses, packet arrivals) are not polled: a read blocks until at
//! least one sample arrives (packets: for a bounded time, then it returns none), then returns
//! what the kernel had queued, up to the requested count.

mod cpuload;
mod hwmon;
mod hwrng;
mod iio;
mod input;
mod interrupts;
mod jitter;
mod netstat;
mod packets;
mod sensor;
mod softnet;
mod thermal;
mod wireless;

pub use cpuload::{CPU_LOAD_BITS_PER_SAMPLE, CPU_LOAD_MIN_ENTROPY, CpuLoadSource, parse_cpu_times};
pub use hwmon::{HWMON_BITS_PER_SAMPLE, HWMON_MIN_ENTROPY, HwmonSource};
pub use hwrng::{HWRNG_BITS_PER_SAMPLE, HWRNG_MIN_ENTROPY, HwrngSource};
pub use iio::{IIO_BITS_PER_SAMPLE, IIO_MIN_ENTROPY, IioSource};
pub use input::{
    INPUT_BITS_PER_SAMPLE, INPUT_EVENT_BYTES, INPUT_MIN_ENTROPY, InputEvent, InputSource,
    KeyTimingSampler, parse_input_events,
};
pub use interrupts::{
    INTERRUPTS_BITS_PER_SAMPLE, INTERRUPTS_MIN_ENTROPY, InterruptsSource, parse_interrupt_total,
};
pub use jitter::{JITTER_BITS_PER_SAMPLE, JITTER_MIN_ENTROPY, JitterSource};
pub use netstat::{NET_BITS_PER_SAMPLE, NET_MIN_ENTROPY, NetSource};
pub use packets::{
    ArrivalSampler, CaptureError, PACKETS_BITS_PER_SAMPLE, PACKETS_MIN_ENTROPY, PacketSource,
    RECEIVE_TIMEOUT, arrival_gap_sample, is_arrival, timestamp_nanos,
};
pub use sensor::SensorSampler;
pub use softnet::{
    SOFTNET_BITS_PER_SAMPLE, SOFTNET_MIN_ENTROPY, SoftnetSource, parse_softnet_processed,
};
pub use thermal::{THERMAL_BITS_PER_SAMPLE, THERMAL_MIN_ENTROPY, ThermalSource};
pub use wireless::{
    WIRELESS_BITS_PER_SAMPLE, WIRELESS_MIN_ENTROPY, WirelessReading, WirelessSource, parse_wireless,
};

use super::feed::{FeedConfig, FeedSource};
use super::{EntropySource, SourceError};
use protocols::entropy::health::SpecError;
use std::cmp::Ordering;
use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// What [`detect`] looks for and how the polled sources pace their reads.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Filesystem root under which `sys/...` and `proc/...` are looked up (default `/`).
    pub root: PathBuf,
    /// Pause before each read of a thermal zone or hwmon attribute.
    pub sensor_poll: Duration,
    /// Pause before each read of an IIO channel.
    pub iio_poll: Duration,
    /// Pause between two readings of `/proc/interrupts`.
    pub interrupts_poll: Duration,
    /// Pause between two readings of a network interface's counters.
    pub net_poll: Duration,
    /// Pause between two readings of `/proc/net/softnet_stat`.
    pub softnet_poll: Duration,
    /// Pause between two readings of `/proc/net/wireless`.
    pub wireless_poll: Duration,
    /// Pause between two readings of `/proc/stat`.
    pub cpu_load_poll: Duration,
    /// Whether to open packet capture sockets (`packets:<if>`) on the running kernel's
    /// interfaces (listed under `root`); needs `CAP_NET_RAW`.
    pub packet_capture: bool,
    /// Whether to offer `packets` too: one capture socket for every interface at once.
    pub packets_all_interfaces: bool,
    /// Whether to offer the CPU timing-jitter source.
    pub jitter: bool,
    /// External feeds (files, FIFOs, character devices or stdin) to open.
    pub feeds: Vec<FeedConfig>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
            sensor_poll: Duration::from_millis(10),
            iio_poll: Duration::from_millis(2),
            interrupts_poll: Duration::from_millis(10),
            net_poll: Duration::from_millis(10),
            softnet_poll: Duration::from_millis(5),
            wireless_poll: Duration::from_millis(100),
            cpu_load_poll: Duration::from_millis(10),
            packet_capture: true,
            packets_all_interfaces: false,
            jitter: true,
            feeds: Vec::new(),
        }
    }
}

/// A source kind or instance that [`detect`] looked for and did not offer, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSource {
    /// The source name, or the kind (`thermal`, `hwmon`, ...) when nothing of it was found.
    pub name: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Probes every source kind under `config.root` and returns the sources that exist and read
/// sensibly, in a stable order, plus everything that was skipped and why.
pub fn detect(config: &DetectConfig) -> (Vec<Box<dyn EntropySource>>, Vec<SkippedSource>) {
    let mut found = Detected::default();
    thermal::probe(config, &mut found);
    hwmon::probe(config, &mut found);
    iio::probe(config, &mut found);
    interrupts::probe(config, &mut found);
    cpuload::probe(config, &mut found);
    hwrng::probe(config, &mut found);
    netstat::probe(config, &mut found);
    softnet::probe(config, &mut found);
    packets::probe(config, &mut found);
    wireless::probe(config, &mut found);
    input::probe(config, &mut found);
    if config.jitter {
        jitter::probe(&mut found);
    } else {
        found.skip("jitter", "disabled by configuration");
    }
    for feed in &config.feeds {
        match FeedSource::open(feed) {
            Ok(source) => found.add(Box::new(source)),
            Err(e) => found.skip(&FeedSource::name_for(&feed.path), e),
        }
    }
    (found.sources, found.skipped)
}

/// Accumulates what the probes found; logs each decision.
#[derive(Default)]
pub(crate) struct Detected {
    sources: Vec<Box<dyn EntropySource>>,
    skipped: Vec<SkippedSource>,
}

impl Detected {
    fn add(&mut self, source: Box<dyn EntropySource>) {
        let spec = source.spec();
        tracing::info!(
            source = source.name(),
            bits_per_sample = spec.bits_per_sample(),
            min_entropy_per_sample = spec.min_entropy_per_sample(),
            "entropy source detected"
        );
        self.sources.push(source);
    }

    fn skip(&mut self, name: &str, reason: impl Display) {
        let reason = reason.to_string();
        tracing::info!(source = name, %reason, "entropy source skipped");
        self.skipped.push(SkippedSource {
            name: name.to_owned(),
            reason,
        });
    }
}

/// Why a source could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Its kernel interface could not be read or understood.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    /// Its capture socket could not be set up.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Its claimed spec is invalid (a bug in the constants or in a feed's configuration).
    #[error("invalid source spec: {0}")]
    Spec(#[from] SpecError),
    /// It exists but cannot deliver entropy as it is (interface down, timer too coarse, ...).
    #[error("{0}")]
    Unsuitable(String),
}

/// A sysfs or procfs value that could not be read or understood.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SysfsError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file was read but did not hold what it should.
    #[error("{} is malformed ({what}): {contents:?}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was expected or went wrong.
        what: String,
        /// The offending text (truncated).
        contents: String,
    },
}

impl SysfsError {
    pub(crate) fn malformed(path: &Path, what: impl Into<String>, contents: &str) -> Self {
        SysfsError::Malformed {
            path: path.to_owned(),
            what: what.into(),
            contents: contents.chars().take(80).collect(),
        }
    }
}

/// Reads a whole small text file.
pub(crate) fn read_text(path: &Path) -> Result<String, SysfsError> {
    std::fs::read_to_string(path).map_err(|source| SysfsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parses the single decimal integer a sysfs attribute holds (surrounding whitespace allowed).
pub fn parse_integer(path: &Path, text: &str) -> Result<i64, SysfsError> {
    text.trim()
        .parse::<i64>()
        .map_err(|e| SysfsError::malformed(path, format!("expected one integer: {e}"), text))
}

/// Reads and parses a sysfs integer attribute.
pub fn read_integer(path: &Path) -> Result<i64, SysfsError> {
    parse_integer(path, &read_text(path)?)
}

/// The entries of `dir` whose names satisfy `keep`, in natural order (`x2` before `x10`).
pub(crate) fn sorted_entries(
    dir: &Path,
    keep: impl Fn(&str) -> bool,
) -> io::Result<Vec<(String, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string()
            && keep(&name)
        {
            entries.push((name, entry.path()));
        }
    }
    entries.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(entries)
}

/// Compares names so that runs of digits compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (na, nb) = (
                    a[..da].trim_start_matches('0'),
                    b[..db].trim_start_matches('0'),
                );
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

/// The error a source returns once its kernel interface stops answering sensibly.
pub(crate) fn unavailable(source_name: &str, reason: impl Display) -> SourceError {
    SourceError::Unavailable {
        source_name: source_name.to_owned(),
        reason: reason.to_string(),
    }
}

/// The counters' sampling rule: appends `max` samples, one per `poll`, each the low bits (under
/// `mask`) of how far `read` moved since `last`, which it updates. A counter that goes down (a
/// line or device vanished) wraps, as only the low bits are kept.
pub(crate) fn sample_counter_changes(
    out: &mut Vec<u8>,
    max: usize,
    mask: u8,
    poll: Duration,
    last: &mut u64,
    mut read: impl FnMut() -> Result<u64, SourceError>,
) -> Result<(), SourceError> {
    out.reserve(max);
    for _ in 0..max {
        std::thread::sleep(poll);
        let value = read()?;
        let change = value.wrapping_sub(*last);
        *last = value;
        out.push((change as u8) & mask);
    }
    Ok(())
}

/// Mask selecting the low `bits` bits of a sample.
pub(crate) fn mask(bits: u8) -> u8 {
    u8::MAX >> (8 - bits.clamp(1, 8))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
