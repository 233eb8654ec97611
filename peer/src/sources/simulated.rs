//! Simulated sources with a set bias, correlation, sensor model or fault, driven by a seeded ChaCha20 stream.

use super::{EntropySource, SourceError};
use chacha20::ChaCha20Rng;
use protocols::entropy::{SourceSpec, health::SpecError};
use rand_core::{Rng, SeedableRng};

/// Amplitude of a [`SimulatedKind::Periodic`] reading's sinusoid, ADC counts (a light level
/// flickering at twice the mains frequency).
pub const PERIODIC_AMPLITUDE: f64 = 600.0;
/// Mean of a [`SimulatedKind::Periodic`] reading, ADC counts (mid-scale of a 12-bit ADC).
pub const PERIODIC_LEVEL: f64 = 2048.0;
/// The constant part of a [`SimulatedKind::JitterDeltas`] delta, timer ticks.
pub const JITTER_BASE: f64 = 1000.0;

/// How a simulated source behaves.
///
/// The three sensor models (`RandomWalk`, `Periodic`, `JitterDeltas`) sample the low `bits`
/// bits of a real-valued reading (floored to an integer count). Each declares
/// ([`SimulatedKind::declaration`]) a min-entropy per sample no higher than its stream really
/// has: a bound on the probability of the likeliest next sample given *everything* before it,
/// the hidden reading included, so an observer who sees less can only do worse. That is the
/// quantity SP 800-90B's health tests assume (a repetition or a proportion beyond `2^-H` is an
/// alarm) and the one the coordinator's audit estimates; an honest device is never accused.
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
    /// A slowly drifting reading whose low `bits` bits are sampled, like a thermistor's LSBs:
    /// each sample the reading moves by a step drawn uniformly from `[-step, step)` counts.
    ///
    /// Declared: given the previous reading `x`, the next count is `floor(x + D)` with `D`
    /// uniform over an interval of length `L = 2 × step`; the counts whose low bits equal `v`
    /// are one unit interval in every `M = 2^bits`, so at most `floor(L / M) + min(1, L mod M)`
    /// of the interval's length falls on them: `p_max = (floor(L / M) + min(1, L mod M)) / L`,
    /// `H = -log2 p_max` (`log2(2 × step)` when `2 × step <= M`). A step below 1/2 declares
    /// nothing and is refused.
    RandomWalk {
        /// Bits sampled, 1..=8.
        bits: u8,
        /// Largest move per sample, counts.
        step: f64,
    },
    /// A sinusoid of [`PERIODIC_AMPLITUDE`] counts around [`PERIODIC_LEVEL`] with `period`
    /// samples per cycle (random phase), plus Gaussian noise of standard deviation `noise`
    /// counts; the low `bits` bits are sampled, like a light sensor under mains flicker.
    ///
    /// Declared: the sinusoid is known to an observer, so only the noise counts. A count is the
    /// floor of the reading, a unit interval of a Gaussian whose density is at most
    /// `f_max = 1 / (noise × sqrt(2π))`; the counts sharing low bits `v` are spaced `M = 2^bits`
    /// apart, and for a unimodal density such a comb of unit intervals holds at most
    /// `f_max + 1 / M` (every interval but the one nearest the mode is outweighed by the `M`
    /// counts between it and its neighbour towards the mode). `H = -log2 min(1, f_max + 1/M)`;
    /// noise too small to declare anything is refused.
    Periodic {
        /// Bits sampled, 1..=8.
        bits: u8,
        /// Samples per cycle.
        period: f64,
        /// Standard deviation of the noise, counts.
        noise: f64,
    },
    /// Timing deltas: a constant [`JITTER_BASE`] plus an exponentially distributed delay of
    /// mean `spread` ticks (skewed: mostly short, now and then long), low `bits` bits sampled,
    /// like CPU execution-time jitter. Samples are independent.
    ///
    /// Declared: the count is `JITTER_BASE + k` with `P(k) = e^(-k/s) (1 - e^(-1/s))`
    /// (`s = spread`), so the likeliest low-bit value is the base's, with
    /// `p_max = (1 - e^(-1/s)) / (1 - e^(-M/s))` summed over its wrap-arounds (`M = 2^bits`):
    /// exactly the stream's min-entropy, `H = -log2 p_max`.
    JitterDeltas {
        /// Bits sampled, 1..=8.
        bits: u8,
        /// Mean of the random part of a delta, ticks.
        spread: f64,
    },
}

impl SimulatedKind {
    /// The width and the min-entropy per sample this kind declares (see each variant for its
    /// formula). Parameters that are not finite and positive, or that leave no entropy, are
    /// refused.
    pub fn declaration(self) -> Result<SourceSpec, SpecError> {
        let (bits, h) = match self {
            SimulatedKind::Biased { p_one } => (1, -(p_one.max(1.0 - p_one)).log2()),
            SimulatedKind::Correlated { bits, p_repeat } => {
                let bits = bits.clamp(1, 8);
                let p_max = p_repeat + (1.0 - p_repeat) / f64::from(1u32 << bits);
                (bits, -p_max.log2())
            }
            SimulatedKind::Stuck { .. } => (1, 1.0),
            SimulatedKind::RandomWalk { bits, step } => (bits, walk_h(bits, step)),
            SimulatedKind::Periodic {
                bits,
                period,
                noise,
            } => {
                let h = if positive(period) {
                    periodic_h(bits, noise)
                } else {
                    f64::NAN
                };
                (bits, h)
            }
            SimulatedKind::JitterDeltas { bits, spread } => (bits, jitter_h(bits, spread)),
        };
        // A bound above the width (rounding) is the width; NaN stays NaN and is refused.
        let width = f64::from(bits);
        SourceSpec::new(bits, if h > width { width } else { h })
    }
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// `M = 2^bits` as a float (any `bits`; a bad width is refused by [`SourceSpec::new`]).
fn modulus(bits: u8) -> f64 {
    f64::from(bits).exp2()
}

fn walk_h(bits: u8, step: f64) -> f64 {
    if !positive(step) {
        return f64::NAN;
    }
    let (l, m) = (2.0 * step, modulus(bits));
    let whole = (l / m).floor();
    let p_max = (whole + (l - whole * m).min(1.0)) / l;
    -p_max.min(1.0).log2()
}

fn periodic_h(bits: u8, noise: f64) -> f64 {
    if !positive(noise) {
        return f64::NAN;
    }
    let f_max = 1.0 / (noise * (2.0 * std::f64::consts::PI).sqrt());
    -(f_max + 1.0 / modulus(bits)).min(1.0).log2()
}

fn jitter_h(bits: u8, spread: f64) -> f64 {
    if !positive(spread) {
        return f64::NAN;
    }
    let p_max = (-1.0 / spread).exp_m1() / (-modulus(bits) / spread).exp_m1();
    -p_max.min(1.0).log2()
}

/// A simulated source. Two sources built with the same seed produce the same stream (a cloned device).
pub struct SimulatedSource {
    name: String,
    kind: SimulatedKind,
    spec: SourceSpec,
    rng: ChaCha20Rng,
    previous: u8,
    /// The hidden reading of a sensor model (a walk's level).
    reading: f64,
    /// Where a periodic reading is in its cycle, in cycles (0..1).
    phase: f64,
}

impl SimulatedSource {
    /// Builds a source of `kind` whose stream is fixed by `seed`. It claims the min-entropy its
    /// distribution really has ([`SimulatedKind::declaration`]); a stuck source claims what a
    /// healthy one-bit source would, as a broken sensor does.
    pub fn new(
        name: impl Into<String>,
        kind: SimulatedKind,
        seed: [u8; 32],
    ) -> Result<Self, SpecError> {
        let spec = kind.declaration()?;
        let mut source = Self {
            name: name.into(),
            kind,
            spec,
            rng: ChaCha20Rng::from_seed(seed),
            previous: 0,
            reading: 0.0,
            phase: 0.0,
        };
        // Sensor models start at a level and phase of their own, drawn from the stream.
        match kind {
            SimulatedKind::RandomWalk { bits, .. } => {
                source.reading = PERIODIC_LEVEL + source.unit() * modulus(bits);
            }
            SimulatedKind::Periodic { .. } => source.phase = source.unit(),
            _ => {}
        }
        Ok(source)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller; `1 - unit()` is in (0, 1], so the logarithm is finite).
    fn gaussian(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (2.0 * std::f64::consts::PI * self.unit()).cos()
    }

    /// The low bits of a reading's count (floor; two's complement keeps negative counts right).
    fn low_bits(&self, reading: f64) -> u8 {
        // `as` saturates; a reading never comes near i64's range.
        ((reading.floor() as i64) & i64::from(self.spec.sample_mask())) as u8
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
            SimulatedKind::RandomWalk { step, .. } => {
                self.reading += step * (2.0 * self.unit() - 1.0);
                self.low_bits(self.reading)
            }
            SimulatedKind::Periodic { period, noise, .. } => {
                self.phase = (self.phase + 1.0 / period).fract();
                let wave = (2.0 * std::f64::consts::PI * self.phase).sin();
                let reading = PERIODIC_LEVEL + PERIODIC_AMPLITUDE * wave + noise * self.gaussian();
                self.low_bits(reading)
            }
            SimulatedKind::JitterDeltas { spread, .. } => {
                let delay = -spread * (1.0 - self.unit()).ln();
                self.low_bits(JITTER_BASE + delay)
            }
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
#[path = "simulated_tests.rs"]
mod tests;
