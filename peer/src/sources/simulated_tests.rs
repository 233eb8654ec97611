//! Tests for simulated sources: streams fixed by their seed, widths, and declarations that an
//! entropy audit and the health tests find honest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use protocols::entropy::assess::assess;
use protocols::entropy::{HealthTester, HealthVerdict};

/// The sensor models with the parameters the simulator gives honest devices
/// (`simulator/src/fleet/sensors.rs`).
const SIMULATOR_SENSORS: [SimulatedKind; 3] = [
    SimulatedKind::RandomWalk {
        bits: 8,
        step: 16.0,
    },
    SimulatedKind::Periodic {
        bits: 8,
        period: 10.0,
        noise: 12.0,
    },
    SimulatedKind::JitterDeltas {
        bits: 8,
        spread: 32.0,
    },
];

/// Low-entropy settings of each model: the ones most at risk of tripping their health tests.
const LOW_ENTROPY_SENSORS: [SimulatedKind; 3] = [
    SimulatedKind::RandomWalk { bits: 8, step: 2.0 },
    SimulatedKind::Periodic {
        bits: 4,
        period: 37.5,
        noise: 2.0,
    },
    SimulatedKind::JitterDeltas {
        bits: 8,
        spread: 4.0,
    },
];

fn samples(kind: SimulatedKind, seed: u8, n: usize) -> Vec<u8> {
    let mut s = SimulatedSource::new("sim", kind, [seed; 32]).unwrap();
    let mut x = Vec::new();
    s.read_samples(&mut x, n).unwrap();
    x
}

fn declared(kind: SimulatedKind) -> f64 {
    kind.declaration().unwrap().min_entropy_per_sample()
}

fn assessed(kind: SimulatedKind, seed: u8, n: usize) -> f64 {
    let bits = kind.declaration().unwrap().bits_per_sample();
    assess(&samples(kind, seed, n), bits)
        .unwrap()
        .min_entropy_per_sample
}

#[test]
fn same_seed_gives_the_same_stream_like_a_cloned_device() {
    let mut a = SimulatedSource::new("a", SimulatedKind::Biased { p_one: 0.6 }, [1; 32]).unwrap();
    let mut b = SimulatedSource::new("b", SimulatedKind::Biased { p_one: 0.6 }, [1; 32]).unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    a.read_samples(&mut x, 1000).unwrap();
    b.read_samples(&mut y, 1000).unwrap();
    assert_eq!(x, y);
}

#[test]
fn sensor_models_are_fixed_by_their_seed_and_differ_across_seeds() {
    for kind in SIMULATOR_SENSORS.into_iter().chain(LOW_ENTROPY_SENSORS) {
        assert_eq!(samples(kind, 1, 5000), samples(kind, 1, 5000), "{kind:?}");
        assert_ne!(samples(kind, 1, 5000), samples(kind, 2, 5000), "{kind:?}");
    }
}

#[test]
fn sensor_models_keep_samples_within_their_width_and_use_it() {
    for bits in [1, 3, 8] {
        for kind in [
            SimulatedKind::RandomWalk { bits, step: 3.0 },
            SimulatedKind::Periodic {
                bits,
                period: 10.0,
                noise: 5.0,
            },
            SimulatedKind::JitterDeltas { bits, spread: 10.0 },
        ] {
            let x = samples(kind, 3, 20_000);
            let mut seen = [false; 256];
            for &s in &x {
                assert!(u16::from(s) < 1 << bits, "{kind:?} gave {s}");
                seen[usize::from(s)] = true;
            }
            // They spread over the width (a jitter delta's tail reaches about 100 values).
            let distinct = seen.iter().filter(|&&s| s).count();
            assert!(distinct >= (1 << bits).min(64), "{kind:?}: {distinct}");
        }
    }
}

#[test]
fn declarations_follow_the_documented_formulas() {
    let h = |kind| declared(kind);
    // Walk: log2(2 × step) while 2 × step <= 2^bits; beyond, the wrap-arounds count.
    assert_eq!(
        h(SimulatedKind::RandomWalk {
            bits: 8,
            step: 16.0
        }),
        5.0
    );
    assert_eq!(
        h(SimulatedKind::RandomWalk {
            bits: 8,
            step: 128.0
        }),
        8.0
    );
    let wide = h(SimulatedKind::RandomWalk {
        bits: 4,
        step: 20.0,
    });
    // L = 40, M = 16: floor(40/16) = 2 whole turns plus min(1, 8) = 3 units of 40.
    assert!((wide - -(3.0f64 / 40.0).log2()).abs() < 1e-12, "{wide}");
    // Periodic: the noise's peak density plus one wrap-around's worth.
    let p = 1.0 / (12.0 * (2.0 * std::f64::consts::PI).sqrt()) + 1.0 / 256.0;
    let periodic = h(SimulatedKind::Periodic {
        bits: 8,
        period: 10.0,
        noise: 12.0,
    });
    assert!((periodic - -p.log2()).abs() < 1e-12, "{periodic}");
    // Jitter: the base value's probability summed over its wrap-arounds.
    let p = (1.0 - (-1.0f64 / 32.0).exp()) / (1.0 - (-256.0f64 / 32.0).exp());
    let jitter = h(SimulatedKind::JitterDeltas {
        bits: 8,
        spread: 32.0,
    });
    assert!((jitter - -p.log2()).abs() < 1e-12, "{jitter}");
}

#[test]
fn sensor_settings_without_entropy_or_out_of_range_are_refused() {
    for kind in [
        SimulatedKind::RandomWalk { bits: 8, step: 0.5 },
        SimulatedKind::RandomWalk { bits: 8, step: 0.0 },
        SimulatedKind::RandomWalk {
            bits: 8,
            step: f64::NAN,
        },
        SimulatedKind::RandomWalk { bits: 9, step: 4.0 },
        SimulatedKind::RandomWalk { bits: 0, step: 4.0 },
        SimulatedKind::Periodic {
            bits: 8,
            period: 10.0,
            noise: 0.1,
        },
        SimulatedKind::Periodic {
            bits: 8,
            period: 0.0,
            noise: 5.0,
        },
        SimulatedKind::Periodic {
            bits: 8,
            period: f64::INFINITY,
            noise: 5.0,
        },
        SimulatedKind::Periodic {
            bits: 8,
            period: 10.0,
            noise: -5.0,
        },
        SimulatedKind::JitterDeltas {
            bits: 8,
            spread: 0.0,
        },
        SimulatedKind::JitterDeltas {
            bits: 8,
            spread: -3.0,
        },
    ] {
        assert!(kind.declaration().is_err(), "{kind:?}");
        assert!(
            SimulatedSource::new("sim", kind, [0; 32]).is_err(),
            "{kind:?}"
        );
    }
}

/// The coordinator quarantines a source whose claim exceeds `2 × audit + 0.5` on 4,096 samples
/// or more (docs/protocol/entropy-audit.md): the simulator's honest sensors must stay inside it
/// on a long assessment and on audit-sized windows.
#[test]
fn simulator_sensors_declare_what_an_audit_finds_within_the_overclaim_bound() {
    for kind in SIMULATOR_SENSORS {
        let claim = declared(kind);
        let long = assessed(kind, 1, 100_000);
        assert!(claim <= 2.0 * long + 0.5, "{kind:?}: {claim} vs {long}");
        for seed in 2..6 {
            let window = assessed(kind, seed, 4096);
            assert!(
                claim <= 2.0 * window + 0.5,
                "{kind:?} seed {seed}: {claim} vs {window}"
            );
        }
    }
}

#[test]
fn low_entropy_sensor_settings_declare_what_an_audit_finds_within_the_overclaim_bound() {
    for kind in LOW_ENTROPY_SENSORS {
        let claim = declared(kind);
        let window = assessed(kind, 7, 4096);
        assert!(claim <= 2.0 * window + 0.5, "{kind:?}: {claim} vs {window}");
    }
}

/// The health tests take the declaration as the bound on a repeat and on a value's share of a
/// window; a declaration above what the stream has would trip them. At α = 2^-20 over 200,000
/// samples an honest declaration leaves them quiet.
#[test]
fn sensor_models_pass_their_health_tests_at_the_declared_entropy() {
    for kind in SIMULATOR_SENSORS.into_iter().chain(LOW_ENTROPY_SENSORS) {
        let spec = kind.declaration().unwrap();
        let mut tester = HealthTester::new(spec);
        for s in samples(kind, 9, 200_000) {
            let verdict = tester.feed(s);
            assert!(
                !matches!(verdict, HealthVerdict::Failed(_)),
                "{kind:?}: {verdict:?}"
            );
        }
    }
}

/// Jitter deltas are independent, so their declaration is exact: the base value's low bits come
/// up as often as declared.
#[test]
fn jitter_deltas_most_common_value_comes_up_as_often_as_declared() {
    let kind = SimulatedKind::JitterDeltas {
        bits: 8,
        spread: 8.0,
    };
    let x = samples(kind, 4, 400_000);
    let mut counts = [0u32; 256];
    for &s in &x {
        counts[usize::from(s)] += 1;
    }
    let (value, &count) = counts.iter().enumerate().max_by_key(|(_, c)| **c).unwrap();
    assert_eq!(value, JITTER_BASE as usize % 256);
    let top = f64::from(count) / x.len() as f64;
    let expected = (-declared(kind)).exp2();
    assert!(
        (top - expected).abs() < 0.02 * expected,
        "{top} vs {expected}"
    );
}

#[test]
fn biased_source_has_the_configured_proportion_of_ones() {
    let mut a = SimulatedSource::new("a", SimulatedKind::Biased { p_one: 0.7 }, [2; 32]).unwrap();
    let mut x = Vec::new();
    a.read_samples(&mut x, 100_000).unwrap();
    let ones = x.iter().filter(|&&b| b == 1).count();
    assert!((68_000..72_000).contains(&ones), "{ones}");
}

#[test]
fn stuck_source_is_cut_off_at_the_repetition_count_cutoff() {
    let mut s = SimulatedSource::new("stuck", SimulatedKind::Stuck { value: 1 }, [0; 32]).unwrap();
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

/// The check above has teeth: the same walk claiming two bits more than it has is caught.
#[test]
fn a_walk_claiming_more_than_its_bound_trips_its_health_tests() {
    let kind = SimulatedKind::RandomWalk { bits: 8, step: 2.0 };
    let spec = kind.declaration().unwrap();
    let spec = spec
        .with_min_entropy(spec.min_entropy_per_sample() + 2.0)
        .unwrap();
    let mut tester = HealthTester::new(spec);
    let tripped = samples(kind, 9, 200_000)
        .into_iter()
        .any(|s| matches!(tester.feed(s), HealthVerdict::Failed(_)));
    assert!(tripped);
}
