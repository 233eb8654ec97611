//! Simulated sources with a set bias, correlation or fault, driven by a seeded ChaCha20 stream.

use super::{EntropySource, SourceError};
use chacha20::ChaCha20Rng;
use protocols::entropy::{SourceSpec, health::SpecError};
use rand_core::{Rng, SeedableRng};

/// How a simulated source behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SimulatedKind {
    /// Independent bits, each 1 with probability `p_one`.
    Biased {
        /// Probability of a one.
        p_one: f64,
    },
    /// Uniform `bits`-bit symbols that repeat the previous symbol with probability `p_repeat`.
    Correlated {
        /// Bits per symbol, 1..=8.
        bits: u8,
        /// Probability of repeating the previous symbol.
        p_repeat: f64,
    },
    /// Always the same value: a broken sensor.
    Stuck {
        /// The value it is stuck at.
        value: u8,
    },
}

/// A simulated source. Two sources built with the same seed produce the same stream (a cloned device).
pub struct SimulatedSource {
    name: String,
    kind: SimulatedKind,
    spec: SourceSpec,
    rng: ChaCha20Rng,
    previous: u8,
}

impl SimulatedSource {
    /// Builds a source of `kind` whose stream is fixed by `seed`. It claims the min-entropy its
    /// distribution really has; a stuck source claims what a healthy one-bit source would, as a
    /// broken sensor does.
    pub fn new(
        name: impl Into<String>,
        kind: SimulatedKind,
        seed: [u8; 32],
    ) -> Result<Self, SpecError> {
        let (bits, h) = match kind {
            SimulatedKind::Biased { p_one } => (1, -(p_one.max(1.0 - p_one)).log2()),
            SimulatedKind::Correlated { bits, p_repeat } => {
                let bits = bits.clamp(1, 8);
                let p_max = p_repeat + (1.0 - p_repeat) / f64::from(1u32 << bits);
                (bits, -p_max.log2())
            }
            SimulatedKind::Stuck { .. } => (1, 1.0),
        };
        let spec = SourceSpec::new(bits, h)?;
        Ok(Self {
            name: name.into(),
            kind,
            spec,
            rng: ChaCha20Rng::from_seed(seed),
            previous: 0,
        })
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next_sample(&mut self) -> u8 {
        match self.kind {
            SimulatedKind::Biased { p_one } => u8::from(self.unit() < p_one),
            SimulatedKind::Correlated { bits, p_repeat } => {
                if self.unit() >= p_repeat {
                    let mask = if bits >= 8 { 0xff } else { (1u8 << bits) - 1 };
                    self.previous = (self.rng.next_u32() as u8) & mask;
                }
                self.previous
            }
            SimulatedKind::Stuck { value } => value,
        }
    }
}

impl EntropySource for SimulatedSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> SourceSpec {
        self.spec
    }

    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        out.reserve(max);
        for _ in 0..max {
            let s = self.next_sample();
            out.push(s);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::entropy::{HealthTester, HealthVerdict};

    #[test]
    fn same_seed_gives_the_same_stream_like_a_cloned_device() {
        let mut a =
            SimulatedSource::new("a", SimulatedKind::Biased { p_one: 0.6 }, [1; 32]).unwrap();
        let mut b =
            SimulatedSource::new("b", SimulatedKind::Biased { p_one: 0.6 }, [1; 32]).unwrap();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.read_samples(&mut x, 1000).unwrap();
        b.read_samples(&mut y, 1000).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn biased_source_has_the_configured_proportion_of_ones() {
        let mut a =
            SimulatedSource::new("a", SimulatedKind::Biased { p_one: 0.7 }, [2; 32]).unwrap();
        let mut x = Vec::new();
        a.read_samples(&mut x, 100_000).unwrap();
        let ones = x.iter().filter(|&&b| b == 1).count();
        assert!((68_000..72_000).contains(&ones), "{ones}");
    }

    #[test]
    fn stuck_source_is_cut_off_at_the_repetition_count_cutoff() {
        let mut s =
            SimulatedSource::new("stuck", SimulatedKind::Stuck { value: 1 }, [0; 32]).unwrap();
        let spec = s.spec();
        let cutoff = spec.rct_cutoff();
        let mut tester = HealthTester::new(spec);
        let mut x = Vec::new();
        s.read_samples(&mut x, 100).unwrap();
        let failed_at = x
            .iter()
            .position(|&b| matches!(tester.feed(b), HealthVerdict::Failed(_)))
            .unwrap();
        assert_eq!(failed_at as u64 + 1, cutoff);
    }
}
