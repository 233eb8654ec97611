//! Interrupt activity (`/proc/interrupts`): LSBs of the change in the total interrupt count.
//!
//! Each sample is the low 2 bits of how many interrupts (all lines, all CPUs) arrived during one
//! short sleep (10 ms by default). Claim: 2 bits per sample, 0.1 bit of min-entropy. Timer ticks
//! and our own wake-up make the count largely predictable; device, rescheduling and IPI traffic
//! and wake-up latency vary it. On an idle 2-CPU VM, 10 ms windows measured 0.4–1.0 bit (most
//! common value and order-1/2/4 predictors), 2 ms windows as little as 0.15, hence the pace.

use super::{
    DetectConfig, Detected, OpenError, SysfsError, read_text, sample_counter_changes, unavailable,
};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bits kept from each interrupt-count change.
pub const INTERRUPTS_BITS_PER_SAMPLE: u8 = 2;
/// Min-entropy claimed per interrupts sample.
pub const INTERRUPTS_MIN_ENTROPY: f64 = 0.1;

/// The total of every per-CPU count in a `/proc/interrupts` text.
///
/// The header names the CPU columns; each further line is `NAME:` followed by up to that many
/// counts (the `ERR:`/`MIS:` lines have one) and then a free-text description.
pub fn parse_interrupt_total(path: &Path, text: &str) -> Result<u64, SysfsError> {
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| SysfsError::malformed(path, "empty", text))?;
    let cpus = header.split_whitespace().count();
    if cpus == 0 || !header.split_whitespace().all(|t| t.starts_with("CPU")) {
        return Err(SysfsError::malformed(
            path,
            "header is not a CPU list",
            header,
        ));
    }
    let mut total = 0u64;
    let mut counted_lines = 0usize;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut tokens = line.split_whitespace();
        let label = tokens.next().unwrap_or_default();
        if !label.ends_with(':') {
            return Err(SysfsError::malformed(
                path,
                "line without an IRQ label",
                line,
            ));
        }
        let counts: Vec<u64> = tokens
            .take(cpus)
            .map_while(|t| t.parse::<u64>().ok())
            .collect();
        if counts.is_empty() {
            return Err(SysfsError::malformed(path, "line without counts", line));
        }
        total = counts.iter().fold(total, |sum, c| sum.wrapping_add(*c));
        counted_lines += 1;
    }
    if counted_lines == 0 {
        return Err(SysfsError::malformed(path, "no interrupt lines", text));
    }
    Ok(total)
}

/// The whole-machine interrupt counter, named `interrupts`.
pub struct InterruptsSource {
    path: PathBuf,
    spec: SourceSpec,
    poll: Duration,
    last: u64,
}

impl InterruptsSource {
    /// Opens `path` (normally `/proc/interrupts`), reading it once to check it parses.
    pub fn open(path: PathBuf, poll: Duration) -> Result<Self, OpenError> {
        let spec = SourceSpec::new(INTERRUPTS_BITS_PER_SAMPLE, INTERRUPTS_MIN_ENTROPY)?;
        let last = interrupt_total(&path)?;
        Ok(Self {
            path,
            spec,
            poll,
            last,
        })
    }
}

/// The total of every interrupt line in the file at `path`.
fn interrupt_total(path: &Path) -> Result<u64, SysfsError> {
    parse_interrupt_total(path, &read_text(path)?)
}

impl EntropySource for InterruptsSource {
    fn name(&self) -> &str {
        "interrupts"
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Appends exactly `max` samples, one per `poll`; takes about `max × poll`.
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let path = &self.path;
        sample_counter_changes(
            out,
            max,
            self.spec.sample_mask(),
            self.poll,
            &mut self.last,
            || interrupt_total(path).map_err(|e| unavailable("interrupts", e)),
        )
    }
}

pub(super) fn probe(config: &DetectConfig, found: &mut Detected) {
    let path = config.root.join("proc/interrupts");
    match InterruptsSource::open(path, config.interrupts_poll) {
        Ok(source) => found.add(Box::new(source)),
        Err(e) => found.skip("interrupts", e),
    }
}
