//! Tests for the Fortuna-style accumulator and its generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

const A: ContributorId = [0xAA; 32];
const B: ContributorId = [0xBB; 32];
const C: ContributorId = [0xCC; 32];
const OS: [u8; 32] = [0x05; 32];

fn config() -> AccumulatorConfig {
    AccumulatorConfig::default()
}

/// An accumulator that has reseeded once with 256 bits from `A`.
fn seeded() -> Accumulator {
    let mut acc = Accumulator::new(config());
    acc.add_event(&A, 0, &[1u8; 32], 256).unwrap();
    assert_eq!(acc.maybe_reseed(1_000), Some(1));
    acc
}

#[test]
fn generate_is_refused_before_the_first_reseed() {
    let mut acc = Accumulator::new(config());
    let mut out = [0u8; 16];
    assert_eq!(
        acc.generate(&OS, &mut out),
        Err(AccumulatorError::NotSeeded)
    );
    assert_eq!(out, [0u8; 16]);
    acc.add_event(&A, 0, &[1u8; 32], 255).unwrap();
    assert_eq!(acc.maybe_reseed(0), None, "255 < 256 credited bits");
    assert_eq!(
        acc.generate(&OS, &mut out),
        Err(AccumulatorError::NotSeeded)
    );
}

#[test]
fn reseed_happens_once_pool_zero_reaches_the_threshold() {
    let mut acc = Accumulator::new(config());
    acc.add_event(&A, 0, &[1u8; 16], 128).unwrap();
    assert_eq!(acc.maybe_reseed(0), None);
    acc.add_event(&A, 1, &[2u8; 16], 128).unwrap(); // new source: also pool 0
    assert_eq!(acc.pool_stats(0).unwrap().credited_bits, 256);
    assert_eq!(acc.maybe_reseed(0), Some(1));
    assert!(acc.is_seeded());
    assert_eq!(acc.pool_stats(0).unwrap(), PoolStats::default());
}

#[test]
fn reseed_threshold_is_configurable() {
    let mut acc = Accumulator::new(AccumulatorConfig {
        reseed_threshold_bits: 64,
        ..config()
    });
    acc.add_event(&A, 0, &[1u8; 8], 64).unwrap();
    assert_eq!(acc.maybe_reseed(0), Some(1));
}

#[test]
fn reseeds_closer_than_the_minimum_interval_are_refused() {
    let mut acc = seeded(); // reseeded at t = 1000
    acc.add_event(&A, 1, &[1u8; 32], 256).unwrap();
    assert_eq!(acc.maybe_reseed(1_099), None);
    assert_eq!(acc.maybe_reseed(500), None, "clock going backwards");
    assert_eq!(acc.maybe_reseed(1_100), Some(2));
}

#[test]
fn credit_is_clamped_to_eight_bits_per_byte() {
    let mut acc = Accumulator::new(config());
    acc.add_event(&A, 0, &[1u8; 4], 10_000).unwrap();
    assert_eq!(acc.pool_stats(0).unwrap().credited_bits, 32);
    acc.add_event(&A, 1, &[], 10_000).unwrap();
    assert_eq!(acc.pool_stats(0).unwrap().credited_bits, 32);
}

#[test]
fn each_source_cycles_round_robin_through_all_pools() {
    let mut acc = Accumulator::new(config());
    for i in 0..(NUM_POOLS * 2) {
        assert_eq!(acc.add_event(&A, 7, &[i as u8], 0).unwrap(), i % NUM_POOLS);
    }
    // A different source, and the same source number of another contributor,
    // have their own cursors.
    assert_eq!(acc.add_event(&A, 8, &[0], 0).unwrap(), 0);
    assert_eq!(acc.add_event(&B, 7, &[0], 0).unwrap(), 0);
    assert_eq!(acc.add_event(&A, 7, &[0], 0).unwrap(), 0);
    assert_eq!(acc.add_event(&A, 7, &[0], 0).unwrap(), 1);
    for i in 0..NUM_POOLS {
        assert!(acc.pool_stats(i).unwrap().events >= 2);
    }
}

#[test]
fn reseed_number_r_drains_pool_i_exactly_when_two_to_the_i_divides_r() {
    let mut acc = Accumulator::new(AccumulatorConfig {
        min_reseed_interval_ms: 0,
        ..config()
    });
    for r in 1u64..=16 {
        // Put one event in every pool from a fresh source cycle, and credit pool 0.
        for i in 0..NUM_POOLS {
            let idx = acc.add_event(&B, 1, &[r as u8], 0).unwrap();
            assert_eq!(idx, i);
        }
        acc.add_event(&A, 1000 + r as u32, &[0u8; 32], 256).unwrap();
        let before: Vec<u64> = (0..NUM_POOLS)
            .map(|i| acc.pool_stats(i).unwrap().events)
            .collect();
        assert_eq!(acc.maybe_reseed(r), Some(r));
        for (i, &events_before) in before.iter().enumerate() {
            let after = acc.pool_stats(i).unwrap().events;
            if r % (1u64 << i) == 0 {
                assert_eq!(after, 0, "reseed {r} must drain pool {i}");
            } else {
                assert_eq!(after, events_before, "reseed {r} must keep pool {i}");
            }
        }
    }
}

#[test]
fn reseed_uses_pool_matches_divisibility() {
    assert!(reseed_uses_pool(1, 0));
    assert!(!reseed_uses_pool(1, 1));
    assert!(reseed_uses_pool(12, 2));
    assert!(!reseed_uses_pool(12, 3));
    assert!(reseed_uses_pool(1 << 40, 31));
    assert!(!reseed_uses_pool(1 << 40, 32));
    assert!(!reseed_uses_pool(0, 0));
}

#[test]
fn same_state_and_same_os_randomness_give_the_same_output() {
    let (mut x, mut y) = (seeded(), seeded());
    let (mut ox, mut oy) = ([0u8; 64], [0u8; 64]);
    x.generate(&OS, &mut ox).unwrap();
    y.generate(&OS, &mut oy).unwrap();
    assert_eq!(ox, oy);
}

#[test]
fn os_randomness_changes_the_output_even_when_every_pool_input_is_known() {
    // An adversary who supplied (and therefore knows) every event cannot fix
    // the output: it still depends on the OS randomness.
    let (mut x, mut y) = (seeded(), seeded());
    let (mut ox, mut oy) = ([0u8; 64], [0u8; 64]);
    x.generate(&[1u8; 32], &mut ox).unwrap();
    y.generate(&[2u8; 32], &mut oy).unwrap();
    assert_ne!(ox, oy);
}

#[test]
fn pool_contents_change_the_output_for_fixed_os_randomness() {
    let mut x = seeded();
    let mut y = Accumulator::new(config());
    y.add_event(&A, 0, &[2u8; 32], 256).unwrap();
    y.maybe_reseed(1_000).unwrap();
    let (mut ox, mut oy) = ([0u8; 64], [0u8; 64]);
    x.generate(&OS, &mut ox).unwrap();
    y.generate(&OS, &mut oy).unwrap();
    assert_ne!(ox, oy);
}

#[test]
fn generator_is_rekeyed_after_every_request() {
    let mut acc = seeded();
    let k0 = acc.key;
    let (mut o1, mut o2) = ([0u8; 32], [0u8; 32]);
    acc.generate(&OS, &mut o1).unwrap();
    let k1 = acc.key;
    acc.generate(&OS, &mut o2).unwrap();
    assert_ne!(k0, k1);
    assert_ne!(k1, acc.key);
    assert_ne!(o1, o2, "identical requests must not repeat output");
    // The new key is not the output itself.
    assert_ne!(k1, o1);
    let mut empty = [0u8; 0];
    let k2 = acc.key;
    acc.generate(&OS, &mut empty).unwrap();
    assert_ne!(k2, acc.key, "even an empty request rekeys");
}

#[test]
fn long_requests_are_rekeyed_every_mebibyte() {
    let mut acc = seeded();
    let mut out = vec![0u8; 2 * MAX_BYTES_PER_KEY + 1];
    let before = acc.request_counter;
    acc.generate(&OS, &mut out).unwrap();
    assert_eq!(acc.request_counter - before, 3);
    assert_ne!(out[..32], out[MAX_BYTES_PER_KEY..MAX_BYTES_PER_KEY + 32]);
}

#[test]
fn credit_counts_toward_readiness_only_once_its_pool_reaches_the_key() {
    let mut acc = Accumulator::new(config());
    acc.add_event(&A, 0, &[1u8; 64], 300).unwrap(); // pool 0
    acc.add_event(&B, 0, &[1u8; 64], 100).unwrap(); // pool 0
    acc.add_event(&B, 0, &[1u8; 64], 500).unwrap(); // pool 1
    assert!(!acc.ready(1, 1), "nothing folded in yet");
    assert_eq!(acc.pending_credited_bits(), 900);
    acc.maybe_reseed(0).unwrap(); // r = 1: pool 0 only
    assert_eq!(acc.distinct_contributors(), 2);
    assert!(acc.ready(400, 2));
    assert!(!acc.ready(401, 2));
    assert!(!acc.ready(400, 3));
    let receipt = acc.receipt();
    assert_eq!(
        receipt.contributors,
        vec![
            ContributorCredit {
                contributor: A,
                credited_bits: 300
            },
            ContributorCredit {
                contributor: B,
                credited_bits: 100
            },
        ]
    );
    assert_eq!(receipt.total_credited_bits, 400);
    assert_eq!(receipt.reseed_count, 1);
    assert_eq!(acc.pending_credited_bits(), 500);
}

#[test]
fn zero_credit_contributors_do_not_count_as_distinct() {
    let mut acc = Accumulator::new(config());
    acc.add_event(&A, 0, &[1u8; 64], 256).unwrap();
    acc.add_event(&C, 0, &[1u8; 64], 0).unwrap();
    acc.maybe_reseed(0).unwrap();
    assert_eq!(acc.distinct_contributors(), 1);
    assert!(!acc.ready(0, 2));
}

#[test]
fn resetting_accounting_returns_the_receipt_and_starts_over() {
    let mut acc = seeded();
    assert!(acc.ready(256, 1));
    let r = acc.reset_accounting();
    assert_eq!(r.total_credited_bits, 256);
    assert_eq!(r.contributors.len(), 1);
    assert!(!acc.ready(1, 1));
    assert!(acc.ready(0, 0));
    assert_eq!(acc.receipt().contributors, vec![]);
    assert!(acc.is_seeded(), "resetting accounting keeps the generator");
}

#[test]
fn ready_requires_a_seeded_generator() {
    let acc = Accumulator::new(config());
    assert!(!acc.ready(0, 0));
}

#[test]
fn source_table_is_bounded_by_evicting_the_least_recently_used() {
    let mut acc = Accumulator::new(AccumulatorConfig {
        max_sources: 2,
        ..config()
    });
    acc.add_event(&A, 0, &[1], 0).unwrap(); // A0 → next 1
    acc.add_event(&A, 1, &[1], 0).unwrap(); // A1 → next 1
    acc.add_event(&A, 1, &[1], 0).unwrap(); // A1 → next 2
    acc.add_event(&A, 2, &[1], 0).unwrap(); // evicts A0
    assert_eq!(acc.sources.len(), 2);
    assert_eq!(acc.add_event(&A, 1, &[1], 0).unwrap(), 2, "A1 kept");
    assert_eq!(acc.add_event(&A, 0, &[1], 0).unwrap(), 0, "A0 forgotten");
}

#[test]
fn too_many_contributors_in_one_pool_is_a_typed_error_without_side_effects() {
    let mut acc = Accumulator::new(AccumulatorConfig {
        max_contributors_per_pool: 2,
        ..config()
    });
    acc.add_event(&A, 0, &[1], 8).unwrap();
    acc.add_event(&B, 0, &[1], 8).unwrap();
    let before = acc.pool_stats(0).unwrap();
    assert_eq!(
        acc.add_event(&C, 0, &[1], 8),
        Err(AccumulatorError::TooManyContributors(0))
    );
    assert_eq!(acc.pool_stats(0).unwrap(), before);
    // Known contributors and uncredited events are still accepted.
    acc.add_event(&A, 1, &[1], 8).unwrap();
    acc.add_event(&C, 1, &[1], 0).unwrap();
}

#[test]
fn debug_output_is_redacted_and_zeroize_wipes_the_key() {
    let mut acc = seeded();
    assert_eq!(format!("{acc:?}"), "Accumulator([redacted])");
    assert_ne!(acc.key, [0u8; 32]);
    acc.zeroize();
    assert_eq!(acc.key, [0u8; 32]);
    assert!(!acc.is_seeded());
    assert_eq!(acc.pools[0].chain, [0u8; 32]);
}

#[test]
fn add_block_hashes_the_whole_debiased_block() {
    let mut acc = Accumulator::new(config());
    let block = DebiasedBlock::from_bytes([0x5a; 2500]);
    acc.add_block(&A, 0, &block, 1000).unwrap();
    let s = acc.pool_stats(0).unwrap();
    assert_eq!((s.events, s.bytes, s.credited_bits), (1, 2500, 1000));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn credited_bits_are_conserved_between_pools_and_receipts(
        events in proptest::collection::vec((0u8..4, 0u32..3, 0usize..40, 0u64..400), 1..200),
        reseed_every in 1usize..20,
    ) {
        let mut acc = Accumulator::new(AccumulatorConfig {
            min_reseed_interval_ms: 0,
            reseed_threshold_bits: 64,
            ..config()
        });
        let mut expected = 0u64;
        let mut received = 0u64;
        for (n, &(who, src, len, credit)) in events.iter().enumerate() {
            let data = vec![who; len];
            acc.add_event(&[who; 32], src, &data, credit).unwrap();
            expected += credit.min(8 * len as u64);
            if n % reseed_every == 0 {
                acc.maybe_reseed(n as u64);
            }
            if n % 7 == 0 {
                received += acc.reset_accounting().total_credited_bits;
            }
        }
        let held = acc.receipt().total_credited_bits;
        prop_assert_eq!(received + held + acc.pending_credited_bits(), expected);
    }

    #[test]
    fn output_always_depends_on_os_randomness(os1 in any::<[u8; 32]>(), os2 in any::<[u8; 32]>()) {
        prop_assume!(os1 != os2);
        let (mut x, mut y) = (seeded(), seeded());
        let (mut ox, mut oy) = ([0u8; 32], [0u8; 32]);
        x.generate(&os1, &mut ox).unwrap();
        y.generate(&os2, &mut oy).unwrap();
        prop_assert_ne!(ox, oy);
    }
}

#[test]
fn full_reseed_folds_every_pool_so_all_pending_credit_reaches_the_key() {
    let mut acc = Accumulator::new(AccumulatorConfig::default());
    // Spread credit over many pools: one source, 40 events round-robin over the 32 pools.
    for i in 0..40u8 {
        acc.add_event(&[i % 3; 32], 0, &[i; 64], 100).unwrap();
    }
    let before = acc.potential_credit().values().sum::<u64>();
    assert!(acc.ready_after_full_reseed(before, 3));
    acc.reseed_all(1);
    assert_eq!(acc.pending_credited_bits(), 0);
    assert_eq!(acc.receipt().total_credited_bits, before);
    assert!(acc.ready(before, 3));
}
