//! Behavioural tests for the SP 800-90B §6.3 estimators and the §3.1.3 combination in `assess`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

type Estimate = fn(&[u8]) -> Option<f64>;

fn random_bytes(seed: u8, n: usize) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// Bits that are 1 with probability `p_one`.
fn biased_bits(seed: u8, n: usize, p_one: f64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let threshold = (p_one * f64::from(u32::MAX)) as u32;
    (0..n)
        .map(|_| u8::from(rng.next_u32() < threshold))
        .collect()
}

fn estimate<'a>(a: &'a Assessment, name: &str, applied_to: AppliedTo) -> &'a EstimatorResult {
    a.estimates
        .iter()
        .find(|e| e.name == name && e.applied_to == applied_to)
        .unwrap_or_else(|| panic!("no {name} estimate on {applied_to:?}"))
}

fn print(a: &Assessment) {
    for e in &a.estimates {
        println!(
            "{:28} {:6} {:?}: {:.4} per sample ({:.4})",
            e.name, e.section, e.applied_to, e.min_entropy_per_sample, e.estimate
        );
    }
    println!("min {:.4}", a.min_entropy_per_sample);
}

#[test]
fn uniform_random_bytes_score_close_to_eight_bits_on_every_estimator() {
    let a = assess(&random_bytes(1, 100_000), 8).unwrap();
    print(&a);
    assert_eq!(
        a.estimates.len(),
        17,
        "7 on the samples, 10 on the bit string"
    );
    assert!(a.skipped.is_empty());
    for e in &a.estimates {
        // The compression and collision estimates are known to under-estimate good data
        // (NIST's own tool reports ~0.90 and ~0.96 per bit on 8 million random bits).
        let floor = match e.name {
            "Compression" => 6.4,
            "Collision" | "t-Tuple" if e.applied_to == AppliedTo::Bitstring => 7.0,
            _ => 7.5,
        };
        assert!(
            e.min_entropy_per_sample > floor && e.min_entropy_per_sample <= 8.0,
            "{} on {:?}: {}",
            e.name,
            e.applied_to,
            e.min_entropy_per_sample
        );
    }
    assert!(a.min_entropy_per_sample > 6.4);
    assert!(a.h_original > 7.5);
}

#[test]
fn uniform_random_bits_score_close_to_one_bit_on_every_estimator() {
    let bits: Vec<u8> = random_bytes(2, 100_000).iter().map(|b| b & 1).collect();
    let a = assess(&bits, 1).unwrap();
    print(&a);
    assert_eq!(a.estimates.len(), 10);
    assert_eq!(a.h_bitstring, None);
    for e in &a.estimates {
        assert_eq!(e.applied_to, AppliedTo::Samples);
        let floor = if e.name == "Compression" { 0.6 } else { 0.8 };
        assert!(
            e.min_entropy_per_sample > floor && e.min_entropy_per_sample <= 1.0,
            "{}: {}",
            e.name,
            e.min_entropy_per_sample
        );
    }
}

#[test]
fn constant_zero_source_scores_zero_on_every_estimator() {
    for bits in [1u8, 8] {
        let a = assess(&vec![0u8; 10_000], bits).unwrap();
        assert!(a.skipped.is_empty());
        for e in &a.estimates {
            assert!(
                e.min_entropy_per_sample < 1e-3,
                "{} on {:?}: {}",
                e.name,
                e.applied_to,
                e.min_entropy_per_sample
            );
        }
        assert_eq!(a.min_entropy_per_sample, 0.0);
    }
}

#[test]
fn constant_source_with_mixed_bits_scores_zero_overall() {
    let a = assess(&vec![0xA5u8; 10_000], 8).unwrap();
    assert_eq!(a.h_original, 0.0);
    assert_eq!(a.min_entropy_per_sample, 0.0);
    // The bit string 10100101… is periodic: the predictors and LRS see through it, the
    // bit-level MCV does not.
    assert!(estimate(&a, "Lag Prediction", AppliedTo::Bitstring).estimate < 0.01);
    assert!(estimate(&a, "Most Common Value", AppliedTo::Bitstring).estimate > 0.9);
}

#[test]
fn biased_bits_with_p_one_point_nine_score_near_minus_log2_of_point_nine() {
    let target = -(0.9f64.log2()); // 0.152
    let a = assess(&biased_bits(3, 100_000, 0.9), 1).unwrap();
    print(&a);
    let mcv = estimate(&a, "Most Common Value", AppliedTo::Samples).min_entropy_per_sample;
    assert!((mcv - target).abs() < 0.01, "MCV {mcv}");
    // Lag and LRS effectively measure the collision probability p² + q² = 0.82 of an IID
    // source, so they sit near -log2(0.82) = 0.286, above the min-entropy.
    let collision_entropy = -((0.9f64 * 0.9 + 0.1 * 0.1).log2());
    for e in &a.estimates {
        let h = e.min_entropy_per_sample;
        let ceiling = match e.name {
            "Lag Prediction" | "Longest Repeated Substring" => collision_entropy + 0.01,
            _ => target + 0.01,
        };
        assert!(
            h > 0.05 && h < ceiling,
            "{}: {h} (ceiling {ceiling})",
            e.name
        );
    }
    assert!(a.min_entropy_per_sample <= 0.2);
    assert!(a.min_entropy_per_sample <= mcv);
}

#[test]
fn counter_source_is_caught_by_context_predictors_and_lrs_although_mcv_sees_eight_bits() {
    let counter: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let a = assess(&counter, 8).unwrap();
    print(&a);
    assert!(estimate(&a, "Most Common Value", AppliedTo::Samples).min_entropy_per_sample > 7.8);
    for name in [
        "MultiMMC Prediction",
        "LZ78Y Prediction",
        "Longest Repeated Substring",
        "t-Tuple",
    ] {
        let h = estimate(&a, name, AppliedTo::Samples).min_entropy_per_sample;
        assert!(h < 0.05, "{name}: {h}");
    }
    assert!(a.min_entropy_per_sample < 0.05);
}

#[test]
fn period_two_source_is_caught_by_the_lag_and_window_predictors() {
    let alternating: Vec<u8> = (0..20_000u32).map(|i| (i % 2) as u8 * 200).collect();
    let a = assess(&alternating, 8).unwrap();
    for name in ["Lag Prediction", "MultiMMC Prediction", "LZ78Y Prediction"] {
        let h = estimate(&a, name, AppliedTo::Samples).min_entropy_per_sample;
        assert!(h < 0.01, "{name}: {h}");
    }
}

#[test]
fn bitstring_results_are_scaled_by_the_sample_width_and_bounded_by_h_original() {
    let samples: Vec<u8> = random_bytes(4, 5_000).iter().map(|b| b & 0x0F).collect();
    let a = assess(&samples, 4).unwrap();
    for e in &a.estimates {
        match e.applied_to {
            AppliedTo::Samples => assert_eq!(e.min_entropy_per_sample, e.estimate),
            AppliedTo::Bitstring => {
                assert!((e.min_entropy_per_sample - 4.0 * e.estimate).abs() < 1e-12);
                assert!(e.estimate <= 1.0);
            }
        }
    }
    let h_bit = a.h_bitstring.unwrap();
    let expected = a.h_original.min(4.0 * h_bit);
    assert!((a.min_entropy_per_sample - expected).abs() < 1e-12);
    // Collision, Markov and Compression run on the bit string only.
    for name in ["Collision", "Markov", "Compression"] {
        assert!(
            a.estimates
                .iter()
                .all(|e| e.name != name || e.applied_to == AppliedTo::Bitstring)
        );
    }
}

#[test]
fn assess_refuses_bad_widths_short_input_and_samples_wider_than_declared() {
    let ok = vec![0u8; MIN_SAMPLES];
    assert_eq!(assess(&ok, 0), Err(AssessError::BitsPerSample(0)));
    assert_eq!(assess(&ok, 9), Err(AssessError::BitsPerSample(9)));
    assert_eq!(
        assess(&ok[1..], 1),
        Err(AssessError::TooFewSamples {
            got: MIN_SAMPLES - 1,
            min: MIN_SAMPLES
        })
    );
    assert!(matches!(
        assess(&[], 8),
        Err(AssessError::TooFewSamples { got: 0, .. })
    ));
    let mut wide = ok.clone();
    wide[7] = 2;
    assert_eq!(
        assess(&wide, 1),
        Err(AssessError::SampleOutOfRange {
            index: 7,
            value: 2,
            bits: 1
        })
    );
    assert!(assess(&wide, 2).is_ok());
}

#[test]
fn binary_only_estimators_decline_non_binary_symbols() {
    let s = random_bytes(5, 20_000);
    assert_eq!(collision(&s), None);
    assert_eq!(markov(&s), None);
    assert_eq!(compression(&s), None);
}

#[test]
fn estimators_return_none_when_the_input_is_too_short_to_define_them() {
    let all: [Estimate; 10] = [
        most_common_value,
        collision,
        markov,
        compression,
        t_tuple,
        longest_repeated_substring,
        multi_mcw_prediction,
        lag_prediction,
        multi_mmc_prediction,
        lz78y_prediction,
    ];
    for f in all {
        assert_eq!(f(&[]), None);
        assert_eq!(f(&[1]), None);
    }
    // Compression needs more than d = 1000 six-bit blocks; MultiMCW more than w1 = 63.
    assert_eq!(compression(&[0; 6 * 1001]), None);
    assert!(compression(&[0; 6 * 1002]).is_some());
    assert_eq!(multi_mcw_prediction(&[0; 64]), None);
    assert!(multi_mcw_prediction(&[0; 65]).is_some());
    // No symbol occurs 35 times: t-Tuple is undefined.
    let distinct: Vec<u8> = (0..=255).collect();
    assert_eq!(t_tuple(&distinct), None);
    assert_eq!(longest_repeated_substring(&distinct), None);
}

#[test]
fn collision_expectation_simplification_matches_the_formula_as_written() {
    for k in 0..=990 {
        let p = 0.5 + 0.0005 * f64::from(k) + 1e-9;
        let written = mcv_collision_markov::collision_expectation_as_written(p);
        let simple = 2.0 + 2.0 * p * (1.0 - p);
        assert!(
            (written - simple).abs() < 1e-9,
            "p={p}: {written} vs {simple}"
        );
    }
}

#[test]
fn compression_g_regrouped_sum_matches_the_double_sum_as_written() {
    for n_blocks in [1002usize, 1010, 1333] {
        for z in [1.0 / 64.0, 0.02, 0.1, 0.5, 0.9, 1.0] {
            let fast = compression::g_fast(z, n_blocks);
            let slow = compression::g_as_written(z, n_blocks);
            assert!(
                (fast - slow).abs() <= 1e-9 * slow.abs().max(1.0),
                "{n_blocks} {z}"
            );
        }
    }
}

#[test]
fn markov_matches_the_hand_computed_transition_model() {
    // 0011 repeated: P0 = P1 = 1/2, every transition probability 1/2.
    let s: Vec<u8> = (0..4000).map(|i| u8::from(i % 4 >= 2)).collect();
    let h = markov(&s).unwrap();
    assert!((h - 1.0).abs() < 1e-3, "{h}");
    // Alternating 0101…: the sequence 0101… has probability 1/2 over 128 bits.
    let alt: Vec<u8> = (0..4000).map(|i| (i % 2) as u8).collect();
    assert!((markov(&alt).unwrap() - 1.0 / 128.0).abs() < 1e-9);
}

#[test]
fn assessment_serialises_with_serde() {
    let a = assess(&random_bytes(6, 2_000), 8).unwrap();
    let mut out = Vec::new();
    ciborium::into_writer(&a, &mut out).unwrap();
    let value: ciborium::Value = ciborium::from_reader(out.as_slice()).unwrap();
    let text = format!("{value:?}");
    assert!(text.contains("min_entropy_per_sample") && text.contains("Bitstring"));
}
