//! Tests for the SP 800-90B continuous health tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};

fn spec(bits: u8, h: f64) -> SourceSpec {
    SourceSpec::new(bits, h).unwrap()
}

fn random_samples(seed: u8, n: usize, mask: u8) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v.iter_mut().for_each(|b| *b &= mask);
    v
}

/// Feeds an alternating binary pattern that never trips either test.
fn pass_startup(t: &mut HealthTester) {
    for i in 0..STARTUP_SAMPLES {
        assert_eq!(t.feed((i % 2) as u8), HealthVerdict::Startup);
    }
}

#[test]
fn repetition_count_cutoff_is_one_plus_ceil_twenty_over_h() {
    assert_eq!(rct_cutoff(1.0), 21);
    assert_eq!(rct_cutoff(0.5), 41);
    assert_eq!(rct_cutoff(8.0), 4);
    assert_eq!(rct_cutoff(0.3), 68);
    assert_eq!(spec(1, 1.0).rct_cutoff(), 21);
}

#[test]
fn adaptive_proportion_cutoffs_match_the_nist_table() {
    assert_eq!(apt_cutoff(1024, 1.0), 589);
    assert_eq!(apt_cutoff(512, 1.0), 311);
    assert_eq!(apt_cutoff(512, 4.0), 62);
    assert_eq!(apt_cutoff(512, 8.0), 13);
    assert_eq!(spec(1, 1.0).apt_cutoff(), 589);
    assert_eq!(spec(8, 4.0).apt_cutoff(), 62);
}

#[test]
fn crit_binom_is_the_smallest_k_whose_cdf_reaches_the_level() {
    // Binomial(4, 0.5): CDF = 1/16, 5/16, 11/16, 15/16, 1.
    assert_eq!(crit_binom(4, 0.5, 0.5), 2);
    assert_eq!(crit_binom(4, 0.5, 5.0 / 16.0), 2); // P(X>2) = 5/16 <= 5/16
    assert_eq!(crit_binom(4, 0.5, 1.0 / 16.0), 3);
    assert_eq!(crit_binom(4, 0.5, 1.0 / 32.0), 4);
    assert_eq!(crit_binom(4, 0.0, 0.01), 0);
    assert_eq!(crit_binom(4, 1.0, 0.01), 4);
}

#[test]
fn apt_window_is_1024_for_binary_and_512_otherwise() {
    assert_eq!(spec(1, 1.0).apt_window(), 1024);
    assert_eq!(spec(2, 1.0).apt_window(), 512);
    assert_eq!(spec(8, 7.5).apt_window(), 512);
}

#[test]
fn source_spec_rejects_out_of_range_declarations() {
    assert!(SourceSpec::new(0, 0.5).is_err());
    assert!(SourceSpec::new(9, 0.5).is_err());
    assert!(SourceSpec::new(1, 0.0).is_err());
    assert!(SourceSpec::new(1, 1.5).is_err());
    assert!(SourceSpec::new(4, f64::NAN).is_err());
    assert!(SourceSpec::new(4, f64::INFINITY).is_err());
    assert!(SourceSpec::new(4, 4.0).is_ok());
}

#[test]
fn source_spec_deserialization_enforces_validation() {
    let bad = SourceSpecRepr {
        bits_per_sample: 1,
        min_entropy_per_sample: 3.0,
    };
    assert!(SourceSpec::try_from(bad).is_err());
    let good = SourceSpecRepr {
        bits_per_sample: 4,
        min_entropy_per_sample: 3.0,
    };
    assert_eq!(SourceSpec::try_from(good).unwrap(), spec(4, 3.0));
}

#[test]
fn stuck_source_trips_repetition_count_test_at_cutoff() {
    let mut t = HealthTester::new(spec(1, 1.0));
    pass_startup(&mut t); // last startup sample was 1 (index 1023)
    assert_eq!(t.feed(0), HealthVerdict::Healthy); // run of 0 starts: length 1
    for _ in 0..19 {
        assert_eq!(t.feed(0), HealthVerdict::Healthy); // lengths 2..=20
    }
    assert_eq!(
        t.feed(0),
        HealthVerdict::Failed(HealthFailure::RepetitionCount),
        "the 21st identical sample must trip the test"
    );
    assert_eq!(t.counters().rct_failures, 1);
}

#[test]
fn repetition_count_uses_the_half_bit_cutoff_of_41() {
    let mut t = HealthTester::new(spec(1, 0.5));
    pass_startup(&mut t);
    for _ in 0..40 {
        assert_eq!(t.feed(0), HealthVerdict::Healthy);
    }
    assert_eq!(
        t.feed(0),
        HealthVerdict::Failed(HealthFailure::RepetitionCount)
    );
}

#[test]
fn failed_source_stays_failed_and_keeps_first_failure_kind() {
    let mut t = HealthTester::new(spec(8, 8.0)); // RCT cutoff 4, APT cutoff 13
    for _ in 0..3 {
        assert_eq!(t.feed(7), HealthVerdict::Startup);
    }
    assert_eq!(
        t.feed(7),
        HealthVerdict::Failed(HealthFailure::RepetitionCount)
    );
    for s in random_samples(3, 5000, 0xff) {
        assert_eq!(
            t.feed(s),
            HealthVerdict::Failed(HealthFailure::RepetitionCount)
        );
    }
    assert_eq!(t.failure(), Some(HealthFailure::RepetitionCount));
    assert_eq!(t.counters().samples_seen, 5004);
}

#[test]
fn counters_keep_counting_failures_after_cut_off() {
    let mut t = HealthTester::new(spec(8, 8.0)); // RCT cutoff 4
    for _ in 0..10 {
        t.feed(9);
    }
    // Trips at samples 4, 7 and 10 (the run restarts after each failure).
    assert_eq!(t.counters().rct_failures, 3);
    assert_eq!(t.counters().samples_seen, 10);
}

#[test]
fn biased_source_trips_adaptive_proportion_test() {
    // 8-bit source claiming 8 bits: APT cutoff 13 in a window of 512.
    // Cycle through 0..=12 with interleaved value 200 at window start so that
    // no value repeats consecutively but 200 occurs 13 times in the window.
    let mut t = HealthTester::new(spec(8, 8.0));
    let mut verdict = HealthVerdict::Startup;
    for i in 0..512u32 {
        let s = if i % 20 == 0 { 200 } else { (i % 20) as u8 };
        verdict = t.feed(s);
        if verdict != HealthVerdict::Startup {
            break;
        }
    }
    assert_eq!(
        verdict,
        HealthVerdict::Failed(HealthFailure::AdaptiveProportion)
    );
    assert_eq!(t.counters().apt_failures, 1);
    assert_eq!(t.counters().rct_failures, 0);
    // The 13th occurrence is at index 12*20 = 240.
    assert_eq!(t.counters().samples_seen, 241);
}

#[test]
fn adaptive_proportion_counts_only_the_window_first_value() {
    // 12 occurrences of the first value (one below cutoff 13) do not trip.
    let mut t = HealthTester::new(spec(8, 8.0));
    for i in 0..512u32 {
        let s = if i % 20 == 0 && i < 240 {
            200
        } else {
            (i % 100) as u8 + 1
        };
        assert_ne!(
            t.feed(s),
            HealthVerdict::Failed(HealthFailure::AdaptiveProportion)
        );
    }
    assert_eq!(t.counters().apt_failures, 0);
}

#[test]
fn adaptive_proportion_counts_at_most_one_failure_per_window() {
    let mut t = HealthTester::new(spec(8, 8.0));
    for i in 0..512u32 {
        let s = if i % 2 == 0 { 200 } else { (i % 100) as u8 };
        t.feed(s);
    }
    assert_eq!(t.counters().apt_failures, 1);
}

#[test]
fn nothing_is_credited_before_1024_startup_samples() {
    let mut t = HealthTester::new(spec(8, 2.0));
    for s in random_samples(1, 1024, 0x0f) {
        assert!(!t.state().is_creditable());
        assert_eq!(t.feed(s), HealthVerdict::Startup);
    }
    // Start-up has now passed: the next sample is creditable.
    assert_eq!(t.state(), HealthVerdict::Healthy);
    let v = t.feed(5);
    assert_eq!(v, HealthVerdict::Healthy);
    assert!(v.is_creditable());
}

#[test]
fn samples_are_masked_to_declared_width() {
    // A 1-bit source: 0x02 and 0x00 are the same symbol, so a run forms.
    let mut t = HealthTester::new(spec(1, 1.0));
    for i in 0..20 {
        t.feed(if i % 2 == 0 { 0x02 } else { 0x00 });
    }
    assert_eq!(
        t.feed(0x04),
        HealthVerdict::Failed(HealthFailure::RepetitionCount)
    );
}

#[test]
fn intervention_restarts_startup_but_keeps_counters() {
    let mut t = HealthTester::new(spec(8, 8.0));
    for _ in 0..4 {
        t.feed(1);
    }
    assert!(matches!(t.state(), HealthVerdict::Failed(_)));
    t.reset_after_intervention();
    assert_eq!(t.state(), HealthVerdict::Startup);
    assert_eq!(t.counters().rct_failures, 1);
    assert_eq!(t.counters().samples_seen, 4);
}

#[test]
fn healthy_random_binary_source_passes_a_long_run() {
    let mut t = HealthTester::new(spec(1, 1.0));
    for s in random_samples(42, 200_000, 1) {
        let v = t.feed(s);
        assert!(!matches!(v, HealthVerdict::Failed(_)));
    }
    assert_eq!(t.state(), HealthVerdict::Healthy);
}

proptest! {
    #[test]
    fn crit_binom_cutoff_tail_is_at_most_alpha_and_one_less_exceeds_it(
        n in 1u32..600, h in 0.05f64..8.0
    ) {
        let p = (-h).exp2();
        let a = alpha();
        let k = crit_binom(n, p, a);
        prop_assert!(k <= n);
        // Direct recompute of upper tails by summing pmf in linear space (small n only).
        let mut pmf = vec![0.0f64; n as usize + 1];
        let mut lp = f64::from(n) * (-p).ln_1p();
        for (j, slot) in pmf.iter_mut().enumerate() {
            *slot = lp.exp();
            let jf = j as f64;
            lp += ((f64::from(n) - jf) / (jf + 1.0)).ln() + (p / (1.0 - p)).ln();
        }
        let tail = |k: u32| -> f64 { pmf[(k as usize + 1)..].iter().sum() };
        prop_assert!(tail(k) <= a * (1.0 + 1e-9));
        if k > 0 {
            prop_assert!(tail(k - 1) >= a * (1.0 - 1e-9));
        }
    }

    #[test]
    fn tester_never_panics_and_counts_every_sample(
        bits in 1u8..=8, frac in 0.01f64..1.0, samples in proptest::collection::vec(any::<u8>(), 0..3000)
    ) {
        let s = SourceSpec::new(bits, frac * f64::from(bits)).unwrap();
        let mut t = HealthTester::new(s);
        let mut failed_once = false;
        for &x in &samples {
            let v = t.feed(x);
            if failed_once {
                prop_assert!(matches!(v, HealthVerdict::Failed(_)), "failure must be sticky");
            }
            failed_once |= matches!(v, HealthVerdict::Failed(_));
        }
        prop_assert_eq!(t.counters().samples_seen, samples.len() as u64);
    }
}

#[test]
fn alpha_for_a_fast_source_is_tighter_so_false_alarms_stay_under_one_a_month() {
    use super::{FALSE_ALARM_PERIOD_S, MAX_ALPHA_LOG2, alpha_log2_for_rate, false_alarm_period_s};
    // A sensor read 100 times a second: 2.6e8 samples a month → 2^-28.
    assert_eq!(alpha_log2_for_rate(100.0), 28);
    assert!(false_alarm_period_s(100.0, 28) > FALSE_ALARM_PERIOD_S);
    // 1.7 million samples a second would need 2^-43: capped at 90B's 2^-40.
    assert_eq!(alpha_log2_for_rate(1.7e6), MAX_ALPHA_LOG2);
    // A very slow source keeps the recommended 2^-20.
    assert_eq!(alpha_log2_for_rate(0.01), ALPHA_LOG2);
    assert_eq!(alpha_log2_for_rate(f64::NAN), MAX_ALPHA_LOG2);
}

#[test]
fn a_tighter_alpha_raises_both_cutoffs_and_a_stuck_source_still_trips() {
    let spec = SourceSpec::new(4, 2.0).unwrap();
    let loose = HealthTester::new(spec);
    let tight = HealthTester::with_alpha(spec, 40);
    assert_eq!(tight.rct_cutoff(), 21);
    assert!(tight.rct_cutoff() > loose.rct_cutoff());
    assert!(tight.apt_cutoff() >= loose.apt_cutoff());
    let mut t = tight;
    let verdicts: Vec<_> = (0..200).map(|_| t.feed(3)).collect();
    assert!(
        verdicts
            .iter()
            .any(|v| matches!(v, HealthVerdict::Failed(_)))
    );
    t.clear_alarm();
    assert!(t.failure().is_none());
    assert_eq!(t.counters().rct_failures, 1 + (200 - 21) / 20);
}
