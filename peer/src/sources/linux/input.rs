//! Key-press timing (`/dev/input/event*`): LSBs of the microseconds between key events.
//!
//! The kernel's evdev interface hands out `struct input_event` records, each stamped with the
//! time the driver reported it (seconds and microseconds). For every key or button press and
//! release (`EV_KEY` with value 1 or 0; auto-repeats, value 2, are timer-made and ignored) the
//! sample is the low 4 bits of the microseconds since the previous press or release. Events of
//! one report share a timestamp and yield no sample, nor does the first event after opening or a
//! clock stepped back. Only timings are kept: key codes are never stored or logged.
//!
//! Claim: 4 bits per sample, 0.25 bit of min-entropy. Human timing varies by milliseconds, but a
//! USB keyboard is polled every 1–10 ms, so the microsecond bits come mostly from the host
//! controller's and interrupt handler's latency; that was not measured on a board, so the claim
//! is half the `jitter` source's. Keyboards are idle most of the time: a read blocks until a key
//! moves, on the source's own harvest thread.
//!
//! Only devices whose `/sys/class/input/eventN/device/capabilities/ev` has the `EV_KEY` bit are
//! offered. Reading `/dev/input/event*` needs root or the `input` group; the device is not
//! grabbed, so other programs still see every event.

use super::{
    DetectConfig, Detected, OpenError, SysfsError, read_text, sorted_entries, unavailable,
};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bits kept from each inter-event time.
pub const INPUT_BITS_PER_SAMPLE: u8 = 4;
/// Min-entropy claimed per key-timing sample.
pub const INPUT_MIN_ENTROPY: f64 = 0.25;

/// Bytes of each `timeval` field: the kernel's `unsigned long` (64-bit and 32-bit ABIs differ).
#[cfg(target_pointer_width = "64")]
const TIME_FIELD_BYTES: usize = 8;
#[cfg(not(target_pointer_width = "64"))]
const TIME_FIELD_BYTES: usize = 4;
/// Bytes of one `struct input_event` on this target: seconds, microseconds, type, code, value.
pub const INPUT_EVENT_BYTES: usize = 2 * TIME_FIELD_BYTES + 2 + 2 + 4;

/// Event type of keys and buttons.
const EV_KEY: u16 = 1;
/// Most records taken in by one read.
const READ_EVENTS: usize = 64;

/// One evdev event record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    /// Timestamp, whole seconds.
    pub seconds: u64,
    /// Timestamp, microseconds within the second.
    pub microseconds: u64,
    /// Event type (`EV_KEY` = 1, `EV_SYN` = 0, `EV_MSC` = 4, ...).
    pub kind: u16,
    /// Key, axis or other code within the type.
    pub code: u16,
    /// 1 press, 0 release, 2 auto-repeat for keys; the position for axes.
    pub value: i32,
}

impl InputEvent {
    /// The timestamp in microseconds.
    pub fn micros(&self) -> u64 {
        self.seconds
            .saturating_mul(1_000_000)
            .saturating_add(self.microseconds)
    }

    /// Whether this is a key or button press or release (not an auto-repeat).
    pub fn is_press_or_release(&self) -> bool {
        self.kind == EV_KEY && (self.value == 0 || self.value == 1)
    }
}

/// The whole event records in `bytes`, in the native layout of this target (24-byte records on
/// 64-bit, 16-byte on 32-bit); a trailing partial record is ignored.
pub fn parse_input_events(bytes: &[u8]) -> impl Iterator<Item = InputEvent> + '_ {
    bytes
        .chunks_exact(INPUT_EVENT_BYTES)
        .filter_map(parse_record)
}

fn parse_record(record: &[u8]) -> Option<InputEvent> {
    let t = TIME_FIELD_BYTES;
    Some(InputEvent {
        seconds: time_field(record.get(..t)?)?,
        microseconds: time_field(record.get(t..2 * t)?)?,
        kind: u16::from_ne_bytes(record.get(2 * t..2 * t + 2)?.try_into().ok()?),
        code: u16::from_ne_bytes(record.get(2 * t + 2..2 * t + 4)?.try_into().ok()?),
        value: i32::from_ne_bytes(record.get(2 * t + 4..2 * t + 8)?.try_into().ok()?),
    })
}

#[cfg(target_pointer_width = "64")]
fn time_field(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
}

#[cfg(not(target_pointer_width = "64"))]
fn time_field(bytes: &[u8]) -> Option<u64> {
    Some(u64::from(u32::from_ne_bytes(bytes.try_into().ok()?)))
}

/// Turns events into samples: the low bits of the time since the previous press or release.
#[derive(Debug, Clone)]
pub struct KeyTimingSampler {
    mask: u8,
    last: Option<u64>,
}

impl KeyTimingSampler {
    /// A sampler keeping the low `bits` (1..=8) bits of each interval.
    pub fn new(bits: u8) -> Self {
        Self {
            mask: super::mask(bits),
            last: None,
        }
    }

    /// Records `event`; returns a sample for a press or release that follows an earlier one at a
    /// later time. Other events, the first press, and events of the same report give none; a
    /// timestamp earlier than the last (clock stepped back) restarts from it.
    pub fn push(&mut self, event: &InputEvent) -> Option<u8> {
        if !event.is_press_or_release() {
            return None;
        }
        let at = event.micros();
        let previous = self.last.replace(at)?;
        match at.checked_sub(previous) {
            Some(0) | None => None,
            Some(interval) => Some((interval as u8) & self.mask),
        }
    }
}

/// Whether a `capabilities/ev` bitmask (hexadecimal words, most significant first) has `EV_KEY`.
pub(crate) fn reports_key_events(path: &Path, text: &str) -> Result<bool, SysfsError> {
    let lowest = text
        .split_whitespace()
        .last()
        .ok_or_else(|| SysfsError::malformed(path, "empty bitmask", text))?;
    let word = u64::from_str_radix(lowest, 16)
        .map_err(|e| SysfsError::malformed(path, format!("bad bitmask: {e}"), text))?;
    Ok(word & (1 << EV_KEY) != 0)
}

/// One input device's key timings, named `input:<eventN>` (e.g. `input:event0`).
pub struct InputSource {
    name: String,
    path: PathBuf,
    spec: SourceSpec,
    device: File,
    sampler: KeyTimingSampler,
    buf: Vec<u8>,
}

impl InputSource {
    /// Opens the event device at `path` for reading.
    pub fn open(path: PathBuf, name: String) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(INPUT_BITS_PER_SAMPLE, INPUT_MIN_ENTROPY)?;
        let device = File::open(&path).map_err(|source| SysfsError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            name,
            path,
            spec,
            device,
            sampler: KeyTimingSampler::new(INPUT_BITS_PER_SAMPLE),
            buf: Vec::new(),
        })
    }

    /// One read of up to `records` events; `Ok(0)` is the end of the stream.
    fn read_some(&mut self, records: usize) -> io::Result<usize> {
        self.buf.resize(records * INPUT_EVENT_BYTES, 0);
        loop {
            match self.device.read(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }
}

impl EntropySource for InputSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Blocks until at least one sample arrives, then appends what that read gave: between 1
    /// and `max` samples (each read takes at most `max` events, each worth at most one sample).
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let start = out.len();
        while max > 0 && out.len() == start {
            let n = match self.read_some(max.min(READ_EVENTS)) {
                Ok(0) => Err("the device stopped delivering events".to_owned()),
                Ok(n) => Ok(n),
                Err(e) => Err(e.to_string()),
            }
            .map_err(|e| unavailable(&self.name, format!("{}: {e}", self.path.display())))?;
            let events = parse_input_events(&self.buf[..n]);
            out.extend(events.filter_map(|e| self.sampler.push(&e)));
        }
        Ok(())
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let dir = config.root.join("sys/class/input");
    let devices = match sorted_entries(&dir, |n| n.starts_with("event")) {
        Ok(devices) => devices,
        Err(e) => return found.skip("input", format!("{}: {e}", dir.display())),
    };
    if devices.is_empty() {
        return found.skip("input", format!("no event devices in {}", dir.display()));
    }
    for (device, sys) in devices {
        let name = format!("input:{device}");
        let caps = sys.join("device/capabilities/ev");
        match read_text(&caps).and_then(|text| reports_key_events(&caps, &text)) {
            Ok(true) => {}
            Ok(false) => {
                found.skip(&name, "reports no key or button events (no EV_KEY)");
                continue;
            }
            Err(e) => {
                found.skip(&name, e);
                continue;
            }
        }
        let path = config.root.join("dev/input").join(&device);
        match InputSource::open(path, name.clone()) {
            Ok(source) => found.add(Box::new(source)),
            Err(e) => found.skip(&name, e),
        }
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
