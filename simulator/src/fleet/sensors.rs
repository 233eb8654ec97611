//! The sensor an honest simulated device carries — a thermistor's drift, a light level under
//! mains flicker, CPU timing jitter or a uniform source — chosen per device from the seed.

use super::derive;
use peer::config::SimulatedSourceConfig;

/// Bits every sensor gives per sample (the audit reads the same width).
pub const SENSOR_BITS: u8 = 8;
/// Largest move of a thermistor's reading per sample, counts: declares log2(32) = 5 bits.
pub const WALK_STEP: f64 = 16.0;
/// Samples per flicker cycle (100 Hz flicker read at 1 kHz).
pub const FLICKER_PERIOD: f64 = 10.0;
/// Noise on a light reading, counts (standard deviation): declares 4.75 bits.
pub const LIGHT_NOISE: f64 = 12.0;
/// Mean random part of a timing delta, ticks: declares 5.02 bits.
pub const JITTER_SPREAD: f64 = 32.0;

/// A kind of sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensor {
    /// A slowly drifting reading's low bits.
    Thermistor,
    /// A sinusoid plus noise.
    Light,
    /// Timing deltas.
    Jitter,
    /// Uniform 8-bit samples (a hardware generator).
    Uniform,
}

impl Sensor {
    /// All kinds, in the order the seed picks them.
    pub const ALL: [Sensor; 4] = [
        Sensor::Thermistor,
        Sensor::Light,
        Sensor::Jitter,
        Sensor::Uniform,
    ];

    /// Device `index`'s sensor: fixed by the scenario seed, the same at every boot, a quarter
    /// of the fleet each on average.
    pub fn of_device(scenario_seed: u64, index: usize) -> Self {
        let pick = derive(scenario_seed, "sensor", index as u64)[0];
        Self::ALL[usize::from(pick) % Self::ALL.len()]
    }

    /// One instance of this sensor, its stream fixed by `seed` (a device's harvest and its
    /// audit reader are two instances with their own seeds).
    pub fn config(self, seed: u64) -> SimulatedSourceConfig {
        match self {
            Sensor::Thermistor => SimulatedSourceConfig::RandomWalk {
                bits: SENSOR_BITS,
                step: WALK_STEP,
                seed,
            },
            Sensor::Light => SimulatedSourceConfig::Periodic {
                bits: SENSOR_BITS,
                period: FLICKER_PERIOD,
                noise: LIGHT_NOISE,
                seed,
            },
            Sensor::Jitter => SimulatedSourceConfig::JitterDeltas {
                bits: SENSOR_BITS,
                spread: JITTER_SPREAD,
                seed,
            },
            Sensor::Uniform => SimulatedSourceConfig::Correlated {
                bits: SENSOR_BITS,
                p_repeat: 0.0,
                seed,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::entropy::Accounting;
    use protocols::entropy::assess::assess;
    use protocols::entropy::conditioning::{credit_for, samples_per_output};

    #[test]
    fn devices_get_a_mix_of_sensors_fixed_by_the_scenario_seed() {
        let fleet = |seed| {
            (0..400)
                .map(|i| Sensor::of_device(seed, i))
                .collect::<Vec<_>>()
        };
        let a = fleet(7);
        assert_eq!(a, fleet(7));
        assert_ne!(a, fleet(8));
        for sensor in Sensor::ALL {
            let n = a.iter().filter(|&&s| s == sensor).count();
            assert!((60..140).contains(&n), "{sensor:?}: {n} of 400");
        }
    }

    /// The coordinator audits 4,096-sample windows (`run::coordinator_config`) and quarantines a
    /// source claiming more than `2 × audit + 0.5`; it credits at most its audit's estimate.
    /// Every sensor must stay clear of the first and keep being worth crediting under the second.
    #[test]
    fn every_sensor_stays_inside_the_overclaim_bound_and_earns_credit_under_its_audit() {
        for sensor in Sensor::ALL {
            for device in 0..4u64 {
                let harvest = super::super::startup::build_pipeline(sensor.config(device)).unwrap();
                let mut audit =
                    super::super::startup::build_pipeline(sensor.config(device + 100)).unwrap();
                let claim = harvest.model().h_per_sample;
                let bits = harvest.model().bits_per_sample;
                assert_eq!(bits, SENSOR_BITS);
                let window = audit.read_window(4096, None).unwrap();
                let found = assess(&window, bits).unwrap().min_entropy_per_sample;
                assert!(
                    claim <= 2.0 * found + 0.5,
                    "{sensor:?} device {device}: claims {claim}, audit finds {found}"
                );
                let per_output = samples_per_output(claim).unwrap();
                let credit = credit_for(
                    &Accounting {
                        outputs: 4,
                        raw_samples: 4 * per_output,
                        h_per_sample: claim,
                    },
                    found,
                );
                assert!(
                    credit >= 4 * 128,
                    "{sensor:?} device {device}: {credit} bits credited per block"
                );
            }
        }
    }

    #[test]
    fn every_sensor_declaration_holds_against_a_long_assessment() {
        for sensor in Sensor::ALL {
            let mut p = super::super::startup::build_pipeline(sensor.config(1)).unwrap();
            let claim = p.model().h_per_sample;
            let long = assess(&p.read_window(100_000, None).unwrap(), SENSOR_BITS)
                .unwrap()
                .min_entropy_per_sample;
            assert!(claim <= 2.0 * long + 0.5, "{sensor:?}: {claim} vs {long}");
        }
    }
}
