//! CPU load (`/proc/stat`, first line): LSBs of a mix of how the CPU time counters moved.
//!
//! Each poll (10 ms by default) reads the machine-wide `cpu` line, takes how far each of the
//! eight time counters (user, nice, system, idle, iowait, irq, softirq, steal; in `USER_HZ`
//! ticks, summed over the CPUs) moved since the previous poll, XORs those changes together and
//! keeps the low 2 bits. Claim: 2 bits per sample, 0.05 bit of min-entropy.
//!
//! What the bits hold: the low bit is the parity of all ticks counted in the window, so it mostly
//! tells where our window fell against the kernel's accounting ticks (as for `interrupts`); the
//! second bit also depends on how those ticks split between busy, idle and waiting states, which
//! the load of other processes, interrupts and the hypervisor decide. The counters advance in
//! 10 ms ticks, so a window sees only a few, and a guest's neighbours or a local attacker can
//! steer the split. On the idle 2-CPU development VM this mix measured about 0.15–0.25 bit
//! (most common value over 500 samples at 10 ms); a fifth of the low end is claimed.

use super::{DetectConfig, Detected, OpenError, SysfsError, read_text, unavailable};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bits kept from each mix of counter changes.
pub const CPU_LOAD_BITS_PER_SAMPLE: u8 = 2;
/// Min-entropy claimed per CPU-load sample.
pub const CPU_LOAD_MIN_ENTROPY: f64 = 0.05;

const NAME: &str = "cpu:load";
/// Counters used from the `cpu` line: user, nice, system, idle, iowait, irq, softirq, steal.
const COUNTERS: usize = 8;
/// Fewest counters a `cpu` line must have (kernels before 2.6 had only the first four).
const MIN_COUNTERS: usize = 4;

/// The eight machine-wide CPU time counters of a `/proc/stat` text, missing ones as 0.
///
/// The first line must be the aggregate `cpu` line with at least four counters; `guest` and
/// `guest_nice` (already included in `user` and `nice`) are ignored.
pub fn parse_cpu_times(path: &Path, text: &str) -> Result<[u64; COUNTERS], SysfsError> {
    let line = text.lines().next().unwrap_or_default();
    let mut tokens = line.split_whitespace();
    if tokens.next() != Some("cpu") {
        return Err(SysfsError::malformed(
            path,
            "first line is not the aggregate cpu line",
            line,
        ));
    }
    let mut times = [0u64; COUNTERS];
    let mut found = 0usize;
    for (slot, token) in times.iter_mut().zip(tokens) {
        *slot = token.parse::<u64>().map_err(|e| {
            SysfsError::malformed(path, format!("bad counter {token:?}: {e}"), line)
        })?;
        found += 1;
    }
    if found < MIN_COUNTERS {
        return Err(SysfsError::malformed(
            path,
            format!("expected at least {MIN_COUNTERS} counters"),
            line,
        ));
    }
    Ok(times)
}

/// The sample for one window: the low bits (under `mask`) of the XOR of every counter's change.
/// A counter that went down (CPU hot-unplug) wraps, as only low bits are kept.
pub(crate) fn mix_changes(before: &[u64; COUNTERS], after: &[u64; COUNTERS], mask: u8) -> u8 {
    let mix = before
        .iter()
        .zip(after)
        .fold(0u64, |mix, (b, a)| mix ^ a.wrapping_sub(*b));
    (mix as u8) & mask
}

/// The machine's CPU load counters, named `cpu:load`.
pub struct CpuLoadSource {
    path: PathBuf,
    spec: SourceSpec,
    poll: Duration,
    last: [u64; COUNTERS],
}

impl CpuLoadSource {
    /// Opens `path` (normally `/proc/stat`), reading it once to check it parses.
    pub fn open(path: PathBuf, poll: Duration) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(CPU_LOAD_BITS_PER_SAMPLE, CPU_LOAD_MIN_ENTROPY)?;
        let last = cpu_times(&path)?;
        Ok(Self {
            path,
            spec,
            poll,
            last,
        })
    }
}

fn cpu_times(path: &Path) -> Result<[u64; COUNTERS], SysfsError> {
    parse_cpu_times(path, &read_text(path)?)
}

impl EntropySource for CpuLoadSource {
    fn name(&self) -> &str {
        NAME
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
            let now = cpu_times(&self.path).map_err(|e| unavailable(NAME, e))?;
            out.push(mix_changes(&self.last, &now, mask));
            self.last = now;
        }
        Ok(())
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let path = config.root.join("proc/stat");
    match CpuLoadSource::open(path, config.cpu_load_poll) {
        Ok(source) => found.add(Box::new(source)),
        Err(e) => found.skip(NAME, e),
    }
}

#[cfg(test)]
#[path = "cpuload_tests.rs"]
mod tests;
