//! CPU timing jitter à la jitterentropy: how long a fixed memory-and-hash workload takes.
//!
//! Each sample times one round of the workload — a strided read-modify-write walk over a 64 KiB
//! buffer (larger than most L1 caches) followed by a SHA-256 of 64 bytes of it — with
//! [`Instant`] (nanosecond clock) and keeps the low 4 bits of the elapsed nanoseconds. Cache and
//! TLB state, branch prediction, frequency scaling, interrupts and the hypervisor all perturb
//! those bits. Claim: 4 bits per sample, 0.5 bit of min-entropy; on this project's idle 2-CPU VM
//! the low nibble measured 2.4–2.6 bits (most common value and order-1/2/4 predictors over
//! 200,000 samples, release build), so about a fifth of that is claimed.
//! Start-up refuses a clock that does not advance or whose low bits barely vary.

use super::{Detected, OpenError};
use crate::sources::{EntropySource, SourceError};
use protocols::entropy::SourceSpec;
use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::time::Instant;

/// Bits kept from each timing.
pub const JITTER_BITS_PER_SAMPLE: u8 = 4;
/// Min-entropy claimed per jitter sample.
pub const JITTER_MIN_ENTROPY: f64 = 0.5;

const BUFFER_BYTES: usize = 64 * 1024;
/// Steps of the memory walk per sample; the stride is odd, so the walk visits every byte.
const WALK_STEPS: usize = 128;
const WALK_STRIDE: usize = 4099;
/// Timings taken by the start-up check.
const CHECK_SAMPLES: usize = 256;
/// Largest share of the check's samples that may share one value.
const CHECK_MAX_SHARE: f64 = 0.9;

/// The CPU timing-jitter source, named `jitter`.
pub struct JitterSource {
    spec: SourceSpec,
    buffer: Vec<u8>,
    position: usize,
    digest: [u8; 32],
}

impl JitterSource {
    /// Builds the source and checks the clock with a short burst of timings.
    pub fn open() -> Result<Self, OpenError> {
        let spec = SourceSpec::new(JITTER_BITS_PER_SAMPLE, JITTER_MIN_ENTROPY)?;
        let mut source = Self {
            spec,
            buffer: (0..BUFFER_BYTES).map(|i| i as u8).collect(),
            position: 0,
            digest: [0; 32],
        };
        let timings: Vec<u64> = (0..CHECK_SAMPLES).map(|_| source.time_workload()).collect();
        check_timer(&timings, source.spec.sample_mask()).map_err(OpenError::Unsuitable)?;
        Ok(source)
    }

    /// Runs the workload once and returns how many nanoseconds it took.
    fn time_workload(&mut self) -> u64 {
        let start = Instant::now();
        let len = self.buffer.len();
        for step in 0..WALK_STEPS {
            self.position = (self.position + WALK_STRIDE) % len;
            let byte = &mut self.buffer[self.position];
            *byte = byte.wrapping_add(self.digest[step % 32]).rotate_left(1);
        }
        let at = self.position % (len - 64);
        let mut hasher = Sha256::new();
        hasher.update(self.digest);
        hasher.update(&self.buffer[at..at + 64]);
        self.digest = hasher.finalize().into();
        black_box(&self.digest);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Refuses timings from a clock that did not advance, or whose kept bits (`mask`) are
/// dominated by one value (a coarse clock).
pub(crate) fn check_timer(timings: &[u64], mask: u8) -> Result<(), String> {
    if timings.is_empty() {
        return Err("no timings to check".to_owned());
    }
    if timings.contains(&0) {
        return Err("the monotonic clock did not advance across the workload".to_owned());
    }
    let mut counts = [0usize; 256];
    for &t in timings {
        counts[usize::from((t as u8) & mask)] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    let share = most as f64 / timings.len() as f64;
    if share > CHECK_MAX_SHARE {
        return Err(format!(
            "the clock is too coarse: {:.0} % of timings share their low bits",
            share * 100.0
        ));
    }
    Ok(())
}

impl EntropySource for JitterSource {
    fn name(&self) -> &str {
        "jitter"
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    /// Appends exactly `max` samples; each takes about a microsecond (release build).
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let mask = self.spec.sample_mask();
        out.reserve(max);
        for _ in 0..max {
            let nanos = self.time_workload();
            out.push((nanos as u8) & mask);
        }
        Ok(())
    }
}

pub(super) fn probe(found: &mut Detected) {
    match JitterSource::open() {
        Ok(source) => found.add(Box::new(source)),
        Err(e) => found.skip("jitter", e),
    }
}
