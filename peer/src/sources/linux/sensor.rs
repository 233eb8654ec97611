//! Shared sampling of a polled sysfs sensor: LSBs of each reading in units of its quantisation step.
//!
//! Sensor drivers report in fixed units (millidegrees, millivolts, RPM, raw ADC counts) but many
//! only resolve a coarser step: most thermal sensors move in whole degrees, so the raw reading
//! `45000` has constant low bits. The sampler therefore learns the step as the greatest common
//! divisor of every non-zero change it has seen between successive readings, divides it out, and
//! keeps the low `bits` bits of the result. Until the first change is seen the step is 1.
//!
//! A real sensor's noise shows as its reading dithering by a step or two between reads, so the
//! sample is the reading's LSB(s) at every read, not only at changes (sampling only changes would
//! turn a sensor toggling between two values into a perfectly predictable 0,1,0,1). A sensor that
//! stops moving therefore yields a run of identical samples, which the repetition-count health
//! test downstream cuts off: the source is never credited for readings that did not change.

use super::{SysfsError, mask, read_integer, unavailable};
use crate::sources::SourceError;
use protocols::entropy::SourceSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Turns successive sensor readings into samples; pure, so it is tested without a sensor.
#[derive(Debug, Clone)]
pub struct SensorSampler {
    mask: u8,
    last: Option<i64>,
    step: Option<u64>,
}

impl SensorSampler {
    /// A sampler keeping the low `bits` (1..=8) bits of each reading.
    pub fn new(bits: u8) -> Self {
        Self {
            mask: mask(bits),
            last: None,
            step: None,
        }
    }

    /// The quantisation step learnt so far (1 until a change has been seen).
    pub fn step(&self) -> u64 {
        self.step.unwrap_or(1)
    }

    /// Records `reading` and returns its sample.
    pub fn push(&mut self, reading: i64) -> u8 {
        if let Some(last) = self.last {
            let change = reading.abs_diff(last);
            if change != 0 {
                self.step = Some(match self.step {
                    Some(step) => gcd(step, change),
                    None => change,
                });
            }
        }
        self.last = Some(reading);
        let scaled = i128::from(reading).div_euclid(i128::from(self.step()));
        (scaled & i128::from(self.mask)) as u8
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A sysfs integer attribute read at a fixed pace, one sample per read.
pub(crate) struct PolledSensor {
    name: String,
    path: PathBuf,
    spec: SourceSpec,
    poll: Duration,
    sampler: SensorSampler,
}

impl PolledSensor {
    /// Reads `path` once to check it holds an integer, and seeds the sampler with that reading.
    pub(crate) fn open(
        name: String,
        path: PathBuf,
        spec: SourceSpec,
        poll: Duration,
    ) -> Result<Self, SysfsError> {
        let first = read_integer(&path)?;
        let mut sampler = SensorSampler::new(spec.bits_per_sample());
        sampler.push(first);
        Ok(Self {
            name,
            path,
            spec,
            poll,
            sampler,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn spec(&self) -> SourceSpec {
        self.spec
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends exactly `max` samples, sleeping `poll` before each read: takes about
    /// `max × (poll + read time)`. A read or parse failure makes the source unavailable.
    pub(crate) fn read_samples(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), SourceError> {
        out.reserve(max);
        for _ in 0..max {
            std::thread::sleep(self.poll);
            let reading = read_integer(&self.path).map_err(|e| unavailable(&self.name, e))?;
            out.push(self.sampler.push(reading));
        }
        Ok(())
    }
}

/// Implements [`EntropySource`](crate::sources::EntropySource) for a newtype over [`PolledSensor`].
macro_rules! polled_sensor_source {
    ($ty:ident) => {
        impl crate::sources::EntropySource for $ty {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn spec(&self) -> protocols::entropy::SourceSpec {
                self.0.spec()
            }
            fn read_samples(
                &mut self,
                out: &mut Vec<u8>,
                max: usize,
            ) -> Result<(), crate::sources::SourceError> {
                self.0.read_samples(out, max)
            }
        }
    };
}
pub(crate) use polled_sensor_source;
