//! Property tests for the §6.3 estimators: fast paths against step-by-step references, and no-panic sweeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::context_predictors::{lz78y_tally_with_cap, multi_mmc_tally_with_cap};
use super::predictors::{Tally, lag_tally, lag_tally_as_written};
use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

type Estimate = fn(&[u8]) -> Option<f64>;

/// Symbols drawn from an alphabet of `1..=k` values, `k` itself drawn from `1..=max_k`.
fn small_alphabet(max_k: u8, len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    (1..=max_k).prop_flat_map(move |k| prop::collection::vec(0..k, len.clone()))
}

fn tally_of(outcomes: impl IntoIterator<Item = bool>) -> Tally {
    let mut t = Tally::default();
    for ok in outcomes {
        t.record(ok);
    }
    t
}

/// Most frequent follower, ties to the larger symbol.
fn argmax(followers: &BTreeMap<u8, u64>) -> Option<(u8, u64)> {
    followers
        .iter()
        .fold(None, |best: Option<(u8, u64)>, (&y, &c)| match best {
            Some((_, bc)) if bc > c => best,
            _ => Some((y, c)),
        })
}

/// §6.3.9 steps 1–3 in 90B's order (update, then predict), with a custom MAXentries.
fn mmc_reference(s: &[u8], max_entries: usize) -> Tally {
    const D: usize = 16;
    let mut models: Vec<BTreeMap<&[u8], BTreeMap<u8, u64>>> = vec![BTreeMap::new(); D + 1];
    let mut entries = [0usize; D + 1];
    let (mut scoreboard, mut winner) = ([0u64; D + 1], 1usize);
    let mut outcomes = Vec::new();
    for i in 2..s.len() {
        for d in 1..=D.min(i - 1) {
            let (ctx, y) = (&s[i - 1 - d..i - 1], s[i - 1]);
            match models[d].get_mut(ctx).and_then(|f| f.get_mut(&y)) {
                Some(c) => *c += 1,
                None if entries[d] < max_entries => {
                    models[d].entry(ctx).or_default().insert(y, 1);
                    entries[d] += 1;
                }
                None => {}
            }
        }
        let sub: Vec<Option<u8>> = (0..=D)
            .map(|d| {
                (d >= 1 && d <= i)
                    .then(|| models[d].get(&s[i - d..i]).and_then(argmax))
                    .flatten()
                    .map(|(y, _)| y)
            })
            .collect();
        outcomes.push(sub[winner] == Some(s[i]));
        for d in 1..=D {
            if sub[d] == Some(s[i]) {
                scoreboard[d] += 1;
                if scoreboard[d] >= scoreboard[winner] {
                    winner = d;
                }
            }
        }
    }
    tally_of(outcomes)
}

/// §6.3.10 steps 1–3 in 90B's order, with a custom maxDictionarySize.
fn lz78y_reference(s: &[u8], max_dictionary: usize) -> Tally {
    const B: usize = 16;
    let mut dict: BTreeMap<&[u8], BTreeMap<u8, u64>> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for i in B + 1..s.len() {
        for j in (1..=B).rev() {
            let (ctx, y) = (&s[i - 1 - j..i - 1], s[i - 1]);
            if !dict.contains_key(ctx) && dict.len() < max_dictionary {
                dict.entry(ctx).or_default().insert(y, 0);
            }
            if let Some(f) = dict.get_mut(ctx) {
                *f.entry(y).or_insert(0) += 1;
            }
        }
        let (mut prediction, mut max_count) = (None, 0);
        for j in (1..=B).rev() {
            if let Some((y, c)) = dict.get(&s[i - j..i]).and_then(argmax)
                && c > max_count
            {
                prediction = Some(y);
                max_count = c;
            }
        }
        outcomes.push(prediction == Some(s[i]));
    }
    tally_of(outcomes)
}

/// Brute-force most-common count and equal-pair count for every tuple length 1..=ν.
fn brute_tuple_stats(s: &[u8]) -> (Vec<u64>, Vec<u128>) {
    let (mut most, mut pairs) = (Vec::new(), Vec::new());
    for w in 1..s.len() {
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for t in s.windows(w) {
            *counts.entry(t).or_default() += 1;
        }
        let max = counts.values().copied().max().unwrap_or(0);
        if max < 2 {
            break;
        }
        most.push(max);
        pairs.push(counts.values().map(|&c| u128::from(c * (c - 1) / 2)).sum());
    }
    (most, pairs)
}

/// Suffix start positions sorted by direct comparison of the suffixes.
fn direct_suffix_order(text: &[u8]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..text.len() as u32).collect();
    order.sort_by(|&a, &b| text[a as usize..].cmp(&text[b as usize..]));
    order
}

/// LCP array in suffix order by direct comparison of adjacent sorted suffixes.
fn direct_lcp(text: &[u8]) -> Vec<u32> {
    let order = direct_suffix_order(text);
    let mut want = vec![0u32; text.len()];
    for i in 1..order.len() {
        let (a, b) = (&text[order[i - 1] as usize..], &text[order[i] as usize..]);
        want[i] = a.iter().zip(b).take_while(|(x, y)| x == y).count() as u32;
    }
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn suffix_array_sorts_suffixes_and_lcp_matches_direct_comparison(
        s in small_alphabet(5, 0..400),
        period in prop::option::of(1usize..40),
        sample in 1usize..20,
    ) {
        // A short period makes long repeats: deep SA-IS recursion and long PLCP runs.
        let s: Vec<u8> = match period {
            Some(p) => (0..s.len()).map(|i| s[i % p]).collect(),
            None => s,
        };
        let (sa, lcp) = suffix::suffix_and_lcp(&s, sample).unwrap();
        prop_assert_eq!(&sa, &direct_suffix_order(&s));
        prop_assert_eq!(lcp.len(), sa.len());
        if !lcp.is_empty() {
            prop_assert_eq!(lcp[0], 0);
        }
        for i in 1..sa.len() {
            let (a, b) = (&s[sa[i - 1] as usize..], &s[sa[i] as usize..]);
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            prop_assert_eq!(lcp[i] as usize, common);
        }
    }

    #[test]
    fn window_route_matches_direct_comparison_or_declines_on_64_bit_repeats(
        raw in prop::collection::vec(any::<u8>(), 0..3000),
        ones_in_256 in prop::sample::select(vec![128u32, 40, 8]),
        period in prop::option::of(20usize..300),
        bucket_bits in 0u32..=16,
        sort_buffer in prop::sample::select(vec![0usize, 16, 4096]),
    ) {
        // Skewed bits crowd few buckets; a period shorter than the text by 64 or more
        // repeats 64-bit windows, as do long zero runs. Both ways of sorting a bucket (cached
        // keys, keys recomputed per comparison) run.
        let bits: Vec<u8> = raw.iter().map(|&b| u8::from(u32::from(b) < ones_in_256)).collect();
        let bits: Vec<u8> = match period {
            Some(p) => (0..bits.len()).map(|i| bits[i % p]).collect(),
            None => bits,
        };
        let repeats = {
            let mut seen = std::collections::HashSet::new();
            !bits.windows(64).all(|w| seen.insert(w))
        };
        match suffix::binary_window_lcp_for_test(&bits, bucket_bits, sort_buffer) {
            None => prop_assert!(repeats),
            Some(lcp) => {
                prop_assert!(!repeats);
                prop_assert_eq!(lcp, direct_lcp(&bits));
            }
        }
    }

    #[test]
    fn sorted_lcp_matches_direct_comparison_for_short_and_long_repeats(
        s in small_alphabet(3, 0..1200),
        period in prop::option::of(1usize..100),
    ) {
        // A short period makes repeats of 64+ symbols, forcing the SA-IS route for bits.
        let s: Vec<u8> = match period {
            Some(p) => (0..s.len()).map(|i| s[i % p]).collect(),
            None => s,
        };
        for text in [s.iter().map(|b| b & 1).collect::<Vec<u8>>(), s] {
            prop_assert_eq!(suffix::sorted_lcp(&text).unwrap(), direct_lcp(&text));
        }
    }

    #[test]
    fn tuple_statistics_from_lcp_intervals_match_brute_force_counting(
        s in small_alphabet(4, 1..250),
        period in prop::option::of(1usize..12),
    ) {
        // Periodic inputs nest intervals deeply (long progressions on the interval stack).
        let s: Vec<u8> = match period {
            Some(p) => (0..s.len()).map(|i| s[i % p]).collect(),
            None => s,
        };
        let (((most, pairs), t), (used_most, used_pairs)) =
            t_tuple_lrs::tuple_stats_for_test(&s).unwrap();
        let (want_most, want_pairs) = brute_tuple_stats(&s);
        let want_t = want_most.iter().take_while(|&&c| c >= 35).count();
        prop_assert_eq!(&most, &want_most);
        prop_assert_eq!(&pairs, &want_pairs);
        prop_assert_eq!(t, want_t);
        // What the estimators tally: counts up to t, pairs beyond it.
        prop_assert_eq!(&used_most[..], &want_most[..want_t]);
        prop_assert_eq!(&used_pairs[..], &want_pairs[want_t..]);
    }

    #[test]
    fn vectorised_lag_update_matches_the_one_lag_at_a_time_definition(
        s in small_alphabet(3, 0..1500),
    ) {
        prop_assert_eq!(lag_tally(&s), lag_tally_as_written(&s));
    }

    #[test]
    fn multi_mmc_with_skipped_lookups_matches_the_step_by_step_definition(
        s in small_alphabet(4, 0..700),
        cap in 1usize..120,
    ) {
        prop_assert_eq!(multi_mmc_tally_with_cap(&s, cap), mmc_reference(&s, cap));
    }

    #[test]
    fn lz78y_with_skipped_lookups_matches_the_step_by_step_definition(
        s in small_alphabet(4, 0..700),
        cap in 1usize..400,
    ) {
        let t = if s.len() > 16 { lz78y_tally_with_cap(&s, cap) } else { Tally::default() };
        prop_assert_eq!(t, lz78y_reference(&s, cap));
    }

    #[test]
    fn every_estimator_returns_a_finite_value_within_the_symbol_width_or_none(
        s in prop::collection::vec(any::<u8>(), 0..300),
        mask in prop::sample::select(vec![1u8, 3, 15, 255]),
    ) {
        let s: Vec<u8> = s.iter().map(|b| b & mask).collect();
        let width = f64::from(mask.count_ones());
        let all: [Estimate; 10] = [
            most_common_value, collision, markov, compression, t_tuple,
            longest_repeated_substring, multi_mcw_prediction, lag_prediction,
            multi_mmc_prediction, lz78y_prediction,
        ];
        for f in all {
            if let Some(h) = f(&s) {
                prop_assert!(h.is_finite() && h >= 0.0 && h <= width + 1e-9, "{h} > {width}");
            }
        }
    }

    #[test]
    fn assess_reports_the_minimum_of_its_estimates_and_never_nan_or_negative(
        bits in 1u8..=8,
        raw in prop::collection::vec(any::<u8>(), 1000..1400),
        repeat_period in prop::option::of(1usize..40),
    ) {
        let mask = ((1u16 << bits) - 1) as u8;
        let samples: Vec<u8> = match repeat_period {
            Some(p) => raw.iter().enumerate().map(|(i, _)| raw[i % p] & mask).collect(),
            None => raw.iter().map(|b| b & mask).collect(),
        };
        let a = assess(&samples, bits).unwrap();
        let min = a.estimates.iter().map(|e| e.min_entropy_per_sample).fold(f64::INFINITY, f64::min);
        prop_assert_eq!(a.min_entropy_per_sample, min);
        prop_assert!(min.is_finite() && min >= 0.0 && min <= f64::from(bits));
        prop_assert!(min <= a.h_original);
        for e in &a.estimates {
            prop_assert!(e.min_entropy_per_sample >= 0.0 && e.min_entropy_per_sample <= f64::from(bits));
            prop_assert!(!e.estimate.is_nan());
        }
        prop_assert_eq!(a.estimates.len() + a.skipped.len(), if bits == 1 { 10 } else { 17 });
    }
}
