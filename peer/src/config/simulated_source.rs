//! Simulated sources in the configuration: their entries (tests, the simulator, lab devices
//! without sensors) and their textual form (`--simulated-source`, `sim:…`).

use crate::sources::simulated::SimulatedKind;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A simulated source written as text is malformed or declares no entropy.
#[derive(Debug, Error)]
#[error("simulated source {spec:?}: {detail} (one of {SIMULATED_SOURCE_FORMS})")]
pub struct SimulatedSourceError {
    /// The text.
    pub spec: String,
    /// What is wrong.
    pub detail: String,
}

/// The textual forms of a simulated source.
pub const SIMULATED_SOURCE_FORMS: &str = "biased:P:SEED, correlated:BITS:P:SEED, stuck:VALUE, \
     walk:BITS:STEP:SEED, periodic:BITS:PERIOD:NOISE:SEED, jitter:BITS:SPREAD:SEED";

/// A simulated source entry (tests, the simulator, and devices without sensors in the lab).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SimulatedSourceConfig {
    /// Independent bits with P(1) = `p_one`.
    Biased {
        /// Probability of a one.
        p_one: f64,
        /// Stream seed (hex not needed: any integer).
        seed: u64,
    },
    /// Symbols that repeat with probability `p_repeat`.
    Correlated {
        /// Bits per symbol.
        bits: u8,
        /// Probability of repeating.
        p_repeat: f64,
        /// Stream seed.
        seed: u64,
    },
    /// A broken sensor.
    Stuck {
        /// The value.
        value: u8,
    },
    /// A slowly drifting reading (a thermistor's LSBs): steps uniform in `[-step, step)` counts.
    RandomWalk {
        /// Low bits sampled.
        bits: u8,
        /// Largest move per sample, counts.
        step: f64,
        /// Stream seed.
        seed: u64,
    },
    /// A sinusoid plus Gaussian noise (a light sensor under mains flicker).
    Periodic {
        /// Low bits sampled.
        bits: u8,
        /// Samples per cycle.
        period: f64,
        /// Standard deviation of the noise, counts.
        noise: f64,
        /// Stream seed.
        seed: u64,
    },
    /// Timing deltas: a constant base plus an exponential delay of mean `spread` ticks.
    JitterDeltas {
        /// Low bits sampled.
        bits: u8,
        /// Mean of the random part, ticks.
        spread: f64,
        /// Stream seed.
        seed: u64,
    },
}

impl SimulatedSourceConfig {
    /// The source's behaviour and its stream seed (a stuck source has none: 0).
    pub fn kind_and_seed(&self) -> (SimulatedKind, u64) {
        match *self {
            SimulatedSourceConfig::Biased { p_one, seed } => {
                (SimulatedKind::Biased { p_one }, seed)
            }
            SimulatedSourceConfig::Correlated {
                bits,
                p_repeat,
                seed,
            } => (SimulatedKind::Correlated { bits, p_repeat }, seed),
            SimulatedSourceConfig::Stuck { value } => (SimulatedKind::Stuck { value }, 0),
            SimulatedSourceConfig::RandomWalk { bits, step, seed } => {
                (SimulatedKind::RandomWalk { bits, step }, seed)
            }
            SimulatedSourceConfig::Periodic {
                bits,
                period,
                noise,
                seed,
            } => (
                SimulatedKind::Periodic {
                    bits,
                    period,
                    noise,
                },
                seed,
            ),
            SimulatedSourceConfig::JitterDeltas { bits, spread, seed } => {
                (SimulatedKind::JitterDeltas { bits, spread }, seed)
            }
        }
    }
}

impl std::str::FromStr for SimulatedSourceConfig {
    type Err = SimulatedSourceError;

    /// Parses one of [`SIMULATED_SOURCE_FORMS`]; the parameters must declare some entropy
    /// ([`SimulatedKind::declaration`]).
    fn from_str(spec: &str) -> Result<Self, SimulatedSourceError> {
        let fail = |detail: String| SimulatedSourceError {
            spec: spec.to_string(),
            detail,
        };
        let number = |s: &str, what: &str| -> Result<f64, SimulatedSourceError> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| fail(format!("{what} {s:?} is not a number")))
        };
        let probability = |s: &str, what: &str| -> Result<f64, SimulatedSourceError> {
            let p = number(s, what)?;
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(fail(format!("{what} {p} is not in [0, 1]")))
            }
        };
        let bits = |s: &str| -> Result<u8, SimulatedSourceError> {
            s.parse::<u8>()
                .ok()
                .filter(|b| (1..=8).contains(b))
                .ok_or_else(|| fail(format!("bits {s:?} is not in 1..=8")))
        };
        let seed = |s: &str| -> Result<u64, SimulatedSourceError> {
            s.parse()
                .map_err(|_| fail(format!("seed {s:?} is not an unsigned integer")))
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let config = match parts.as_slice() {
            ["biased", p, s] => {
                let p_one = probability(p, "probability of a one")?;
                if p_one == 0.0 || p_one == 1.0 {
                    return Err(fail(format!(
                        "a source that always yields {p_one} has no entropy (use stuck:VALUE)"
                    )));
                }
                SimulatedSourceConfig::Biased {
                    p_one,
                    seed: seed(s)?,
                }
            }
            ["correlated", b, p, s] => SimulatedSourceConfig::Correlated {
                bits: bits(b)?,
                p_repeat: probability(p, "repeat probability")?,
                seed: seed(s)?,
            },
            ["stuck", v] => SimulatedSourceConfig::Stuck {
                value: v
                    .parse()
                    .map_err(|_| fail(format!("value {v:?} is not in 0..=255")))?,
            },
            ["walk", b, step, s] => SimulatedSourceConfig::RandomWalk {
                bits: bits(b)?,
                step: number(step, "step")?,
                seed: seed(s)?,
            },
            ["periodic", b, period, noise, s] => SimulatedSourceConfig::Periodic {
                bits: bits(b)?,
                period: number(period, "period")?,
                noise: number(noise, "noise")?,
                seed: seed(s)?,
            },
            ["jitter", b, spread, s] => SimulatedSourceConfig::JitterDeltas {
                bits: bits(b)?,
                spread: number(spread, "spread")?,
                seed: seed(s)?,
            },
            _ => return Err(fail("unknown form".into())),
        };
        config
            .kind_and_seed()
            .0
            .declaration()
            .map_err(|e| fail(format!("declares no usable entropy: {e}")))?;
        Ok(config)
    }
}
