//! Tests for the FIPS 140-2 statistical battery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};

fn chacha_block(seed: u8) -> [u8; BLOCK_BYTES] {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut b = [0u8; BLOCK_BYTES];
    rng.fill_bytes(&mut b);
    b
}

fn set_bit(b: &mut [u8; BLOCK_BYTES], i: usize, v: bool) {
    let mask = 0x80u8 >> (i % 8);
    if v {
        b[i / 8] |= mask;
    } else {
        b[i / 8] &= !mask;
    }
}

fn bits(b: &[u8; BLOCK_BYTES]) -> Vec<bool> {
    (0..BLOCK_BITS).map(|i| block_bit(b, i)).collect()
}

#[test]
fn chacha_generated_block_passes_all_four_tests() {
    for seed in 0..8 {
        let r = fips_140_2(&chacha_block(seed));
        assert!(r.passed(), "seed {seed}: {r:?}");
        assert!(r.failed_tests().is_empty());
    }
}

#[test]
fn all_zero_block_fails_monobit_and_long_run() {
    let r = fips_140_2(&[0u8; BLOCK_BYTES]);
    assert!(!r.monobit.passed);
    assert_eq!(r.monobit.ones, 0);
    assert!(!r.long_run.passed);
    assert_eq!(r.long_run.longest_zeros, 20_000);
    assert!(r.failed_tests().contains(&FipsTest::Monobit));
    assert!(r.failed_tests().contains(&FipsTest::LongRun));
    assert!(!r.passed());
}

#[test]
fn a_single_run_of_26_fails_only_the_long_run_test() {
    let mut b = chacha_block(1);
    assert!(fips_140_2(&b).passed());
    let start = 10_000;
    set_bit(&mut b, start - 1, false);
    for i in start..start + 26 {
        set_bit(&mut b, i, true);
    }
    set_bit(&mut b, start + 26, false);
    let r = fips_140_2(&b);
    assert_eq!(r.long_run.longest_ones, 26);
    assert_eq!(r.failed_tests(), vec![FipsTest::LongRun]);
}

#[test]
fn a_run_of_25_is_not_a_long_run() {
    let mut b = chacha_block(1);
    let start = 10_000;
    set_bit(&mut b, start - 1, false);
    for i in start..start + 25 {
        set_bit(&mut b, i, true);
    }
    set_bit(&mut b, start + 25, false);
    let r = fips_140_2(&b);
    assert_eq!(r.long_run.longest_ones, 25);
    assert!(r.long_run.passed);
}

#[test]
fn balanced_but_skewed_nibbles_fail_poker_and_pass_monobit() {
    // Only nibbles of weight two: exactly 10,000 ones, but 6 of 16 values used.
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let allowed = [0x3u8, 0x5, 0x6, 0x9, 0xA, 0xC];
    let mut b = [0u8; BLOCK_BYTES];
    for byte in b.iter_mut() {
        let hi = allowed[(rng.next_u32() % 6) as usize];
        let lo = allowed[(rng.next_u32() % 6) as usize];
        *byte = (hi << 4) | lo;
    }
    let r = fips_140_2(&b);
    assert!(r.monobit.passed);
    assert_eq!(r.monobit.ones, 10_000);
    assert!(!r.poker.passed);
    assert!(r.poker.statistic > 46.17);
    assert!(r.failed_tests().contains(&FipsTest::Poker));
}

#[test]
fn too_uniform_nibbles_fail_poker_from_below() {
    // Every nibble value exactly 312 or 313 times: X is far below 2.16.
    let mut b = [0u8; BLOCK_BYTES];
    for (i, byte) in b.iter_mut().enumerate() {
        let n = (2 * i) as u8;
        *byte = ((n & 0xf) << 4) | ((n + 1) & 0xf);
    }
    let r = fips_140_2(&b);
    assert!(r.poker.statistic < 2.16, "{}", r.poker.statistic);
    assert!(!r.poker.passed);
}

#[test]
fn repeating_pattern_fails_runs() {
    // 0011 repeated: every run has length 2.
    let r = fips_140_2(&[0x33u8; BLOCK_BYTES]);
    assert!(r.monobit.passed);
    assert!(r.long_run.passed);
    assert!(!r.runs.passed);
    assert_eq!(r.runs.zeros[1], 5_000);
    assert_eq!(r.runs.ones[1], 5_000);
    assert!(r.failed_tests().contains(&FipsTest::Runs));
}

#[test]
fn runs_of_six_or_more_share_the_last_bucket() {
    // 11111111 00000000 ... : runs of 8 land in the 6+ bucket.
    let b = [0xffu8, 0x00].repeat(BLOCK_BYTES / 2);
    let b: [u8; BLOCK_BYTES] = b.try_into().unwrap();
    let r = fips_140_2(&b);
    assert_eq!(r.runs.zeros[..5], [0, 0, 0, 0, 0]);
    assert_eq!(r.runs.ones[..5], [0, 0, 0, 0, 0]);
    assert_eq!(r.runs.ones[5], 1_250);
    assert_eq!(r.runs.zeros[5], 1_250);
}

#[test]
fn monobit_bounds_are_exclusive() {
    let mut b = chacha_block(2);
    // Force exactly 9,725 ones by rewriting the block deterministically.
    b.fill(0);
    for i in 0..9_725 {
        set_bit(&mut b, i * 2, true);
    }
    assert_eq!(fips_140_2(&b).monobit.ones, 9_725);
    assert!(!fips_140_2(&b).monobit.passed);
    set_bit(&mut b, 1, true);
    assert!(fips_140_2(&b).monobit.passed);
}

fn reference_report(b: &[u8; BLOCK_BYTES]) -> (u32, u64, [u32; 6], [u32; 6], u32) {
    // Independent, straightforward recomputation over a Vec<bool>.
    let v = bits(b);
    let ones = v.iter().filter(|&&x| x).count() as u32;
    let mut counts = [0u64; 16];
    for c in v.chunks_exact(4) {
        let n = c.iter().fold(0usize, |a, &x| (a << 1) | usize::from(x));
        counts[n] += 1;
    }
    let sum_sq = counts.iter().map(|c| c * c).sum();
    let mut z = [0u32; 6];
    let mut o = [0u32; 6];
    let mut longest = 0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j] == v[i] {
            j += 1;
        }
        let len = (j - i) as u32;
        longest = longest.max(len);
        let t = if v[i] { &mut o } else { &mut z };
        t[(len.min(6) - 1) as usize] += 1;
        i = j;
    }
    (ones, sum_sq, z, o, longest)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn report_statistics_match_an_independent_recount(
        v in proptest::collection::vec(any::<u8>(), BLOCK_BYTES),
        bias_mask in any::<u8>(),
    ) {
        let mut b = [0u8; BLOCK_BYTES];
        for (dst, src) in b.iter_mut().zip(v.iter()) {
            // Sometimes bias the data so failing paths get exercised too.
            *dst = if bias_mask & 1 == 1 { src & bias_mask } else { *src };
        }
        let r = fips_140_2(&b);
        let (ones, sum_sq, z, o, longest) = reference_report(&b);
        prop_assert_eq!(r.monobit.ones, ones);
        prop_assert_eq!(r.poker.counts.iter().sum::<u32>(), 5_000);
        let x = 16.0 / 5000.0 * sum_sq as f64 - 5000.0;
        prop_assert!((r.poker.statistic - x).abs() < 1e-6);
        prop_assert_eq!(r.runs.zeros, z);
        prop_assert_eq!(r.runs.ones, o);
        prop_assert_eq!(r.long_run.longest_zeros.max(r.long_run.longest_ones), longest);
        // Pass flags agree with the published bounds.
        prop_assert_eq!(r.monobit.passed, ones > 9_725 && ones < 10_275);
        prop_assert_eq!(r.long_run.passed, longest < 26);
        let ok = |t: &[u32; 6]| t.iter().zip(RUN_INTERVALS).all(|(&c, (lo, hi))| lo <= c && c <= hi);
        prop_assert_eq!(r.runs.passed, ok(&z) && ok(&o));
        prop_assert_eq!(r.passed(), r.failed_tests().is_empty());
    }

    #[test]
    fn complementing_a_block_swaps_run_tables_and_keeps_poker(
        v in proptest::collection::vec(any::<u8>(), BLOCK_BYTES)
    ) {
        let mut b = [0u8; BLOCK_BYTES];
        b.copy_from_slice(&v);
        let mut c = b;
        c.iter_mut().for_each(|x| *x = !*x);
        let (rb, rc) = (fips_140_2(&b), fips_140_2(&c));
        prop_assert_eq!(rb.monobit.ones + rc.monobit.ones, 20_000);
        prop_assert_eq!(rb.runs.zeros, rc.runs.ones);
        prop_assert_eq!(rb.runs.ones, rc.runs.zeros);
        prop_assert_eq!(rb.poker.statistic, rc.poker.statistic);
        prop_assert_eq!(rb.poker.passed, rc.poker.passed);
        prop_assert_eq!(rb.long_run.longest_zeros, rc.long_run.longest_ones);
    }
}
