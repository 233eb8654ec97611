//! Property tests: caps always hold, and selection succeeds exactly when a quorum exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;

use super::testkit::{NOW, node, rng};
use super::*;

/// Four distinct regions once canonicalised ("north" is spelt two ways).
const SMALL_REGIONS: &[&str] = &["north", " North", "south", "east", "west"];
/// Four distinct operators once canonicalised ("acme" is spelt two ways).
const SMALL_OPERATORS: &[&str] = &["acme", "ACME ", "globex", "initech", "umbrella"];
const LARGE_REGIONS: &[&str] = &["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
const LARGE_OPERATORS: &[&str] = &["o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"];

/// A peer with random labels and health (roughly 70 % eligible under the default policy).
fn arb_peer(
    regions: &'static [&'static str],
    operators: &'static [&'static str],
) -> impl Strategy<Value = PeerRecord> {
    let health = (
        prop::bool::weighted(0.9),
        -65_000i64..=6_000,
        prop_oneof![
            3 => Just(Power::Mains),
            1 => (0u8..=100).prop_map(|percent| Power::Battery { percent }),
        ],
        0u32..10,
    );
    let quality = (
        0f32..=1.0,
        0f32..=1.0,
        prop::option::of(0u32..1_000),
        0u32..50,
    );
    (0..regions.len(), 0..operators.len(), health, quality).prop_map(
        move |(r, o, (attested, offset, power, free), (uptime, reach, rtt, held))| PeerRecord {
            node: node(0),
            region: regions[r].to_owned(),
            operator: operators[o].to_owned(),
            attested,
            last_heartbeat_ms: NOW.saturating_add_signed(offset),
            power,
            free_store_slots: free,
            uptime_ratio: uptime,
            reachability: reach,
            rtt_ms: rtt,
            shares_held: held,
        },
    )
}

/// A table of up to `max` peers; about one record in ten repeats the previous node.
fn arb_table(
    max: usize,
    regions: &'static [&'static str],
    operators: &'static [&'static str],
) -> impl Strategy<Value = Vec<PeerRecord>> {
    prop::collection::vec(
        (arb_peer(regions, operators), prop::bool::weighted(0.1)),
        0..=max,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (mut p, repeat))| {
                let i = i as u32;
                p.node = node(if repeat && i > 0 { i - 1 } else { i });
                p
            })
            .collect()
    })
}

/// `(n, k)` with `2 ≤ k ≤ n ≤ max_n`.
fn arb_nk(max_n: usize) -> impl Strategy<Value = (usize, usize)> {
    (2..=max_n).prop_flat_map(|n| (Just(n), 2..=n))
}

/// For every subset of the candidates (as a bit mask): its size and the most holders
/// it puts in one region and under one operator. Labels must be below 16.
fn subset_profiles(groups: &[(u32, u32)]) -> Vec<(u32, u32, u32)> {
    (0..1u32 << groups.len())
        .map(|mask| {
            let (mut regions, mut operators) = ([0u32; 16], [0u32; 16]);
            for (i, &(r, o)) in groups.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    regions[r as usize] += 1;
                    operators[o as usize] += 1;
                }
            }
            let max = |counts: [u32; 16]| counts.into_iter().max().unwrap_or(0);
            (mask.count_ones(), max(regions), max(operators))
        })
        .collect()
}

/// The subsets (bit masks) that respect the caps.
fn valid_sets(profiles: &[(u32, u32, u32)], caps: Caps) -> Vec<u32> {
    (0u32..)
        .zip(profiles)
        .filter(|&(_, &(_, r, o))| r as usize <= caps.per_region && o as usize <= caps.per_operator)
        .map(|(mask, _)| mask)
        .collect()
}

/// Size of the largest subset that respects the caps.
fn largest_valid(profiles: &[(u32, u32, u32)], caps: Caps) -> usize {
    valid_sets(profiles, caps)
        .iter()
        .map(|m| m.count_ones() as usize)
        .max()
        .unwrap_or(0)
}

/// Brute-force first valid quorum in `order`, or the largest valid set's size.
fn brute_first_valid(
    profiles: &[(u32, u32, u32)],
    order: &[usize],
    caps: Caps,
    n: usize,
) -> Result<Vec<usize>, usize> {
    let largest = largest_valid(profiles, caps);
    if largest < n {
        return Err(largest);
    }
    let full: Vec<u32> = valid_sets(profiles, caps)
        .into_iter()
        .filter(|m| m.count_ones() as usize == n)
        .collect();
    let (mut chosen, mut picked) = (0u32, Vec::new());
    for &i in order {
        let with = chosen | (1 << i);
        if picked.len() < n && full.iter().any(|&m| m & with == with) {
            chosen = with;
            picked.push(i);
        }
    }
    Ok(picked)
}

/// The eligible peers' canonical (region, operator) ids, as `Groups` would give them.
fn label_ids(peers: &[&PeerRecord]) -> Vec<(u32, u32)> {
    let (mut regions, mut operators) = (HashMap::new(), HashMap::new());
    peers
        .iter()
        .map(|p| {
            let next_r = regions.len() as u32;
            let next_o = operators.len() as u32;
            let r = *regions
                .entry(canonical_label(&p.region).into_owned())
                .or_insert(next_r);
            let o = *operators
                .entry(canonical_label(&p.operator).into_owned())
                .or_insert(next_o);
            (r, o)
        })
        .collect()
}

/// Asserts that `holders` is a valid quorum of eligible, distinct peers of `table`.
fn assert_valid(table: &[PeerRecord], holders: &[NodeId], n: usize, k: usize) {
    assert_eq!(check_quorum(table, holders, n, k), Ok(()));
    let policy = QuorumPolicy::default();
    for h in holders {
        let first = table
            .iter()
            .find(|p| p.node == *h)
            .expect("holder in table");
        assert_eq!(exclusion(first, &policy, NOW), None, "{h:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn selection_succeeds_exactly_when_a_brute_force_search_finds_a_valid_quorum(
        table in arb_table(10, SMALL_REGIONS, SMALL_OPERATORS),
        (n, k) in arb_nk(6),
        seed in any::<u64>(),
    ) {
        let policy = QuorumPolicy::default();
        let peers = eligible(&table, &policy, NOW);
        let ids = label_ids(&peers);
        let caps = Caps::new(n, k).unwrap();
        let largest = largest_valid(&subset_profiles(&ids), caps);
        let result = select_quorum(&table, n, k, &policy, NOW, &mut rng(seed));
        match result {
            Ok(q) => {
                prop_assert!(largest >= n);
                assert_valid(&table, &q.holders, n, k);
            }
            Err(e) if peers.len() < n => prop_assert_eq!(
                e,
                QuorumError::NotEnoughEligible { eligible: peers.len(), needed: n }
            ),
            Err(e) => {
                let regions = ids.iter().map(|g| g.0).max().map_or(0, |r| r as usize + 1);
                let operators = ids.iter().map(|g| g.1).max().map_or(0, |o| o as usize + 1);
                prop_assert!(largest < n, "a quorum exists but selection failed: {e}");
                prop_assert_eq!(
                    e,
                    QuorumError::ConstraintsUnsatisfiable {
                        eligible: peers.len(),
                        regions,
                        operators,
                        largest,
                        needed: n,
                    }
                );
            }
        }
    }

    #[test]
    fn selected_holders_are_distinct_eligible_and_within_the_caps(
        table in arb_table(60, LARGE_REGIONS, LARGE_OPERATORS),
        (n, k) in arb_nk(20),
        seed in any::<u64>(),
    ) {
        if let Ok(q) = select_quorum(&table, n, k, &QuorumPolicy::default(), NOW, &mut rng(seed)) {
            assert_valid(&table, &q.holders, n, k);
        }
    }

    #[test]
    fn the_pick_is_the_first_completable_candidate_at_each_step_of_the_order(
        (ids, order) in prop::collection::vec((0u32..4, 0u32..5), 4..=12)
            .prop_flat_map(|ids| {
                let order: Vec<usize> = (0..ids.len()).collect();
                (Just(ids), Just(order).prop_shuffle())
            }),
    ) {
        let groups = Groups {
            region: ids.iter().map(|g| g.0).collect(),
            operator: ids.iter().map(|g| g.1).collect(),
            regions: 4,
            operators: 5,
        };
        let profiles = subset_profiles(&ids);
        // Every (n, k) on the same table: the tight ones are where greedy fails.
        for (n, k) in (2..=8).flat_map(|n| (2..=n).map(move |k| (n, k))) {
            let caps = Caps::new(n, k).unwrap();
            let expected = brute_first_valid(&profiles, &order, caps, n);
            prop_assert_eq!(&flow::first_valid_in_order(&groups, &order, caps, n), &expected);
            prop_assert_eq!(&pick(&groups, &order, caps, n), &expected);
            if let Some(greedy) = greedy(&groups, &order, caps, n) {
                prop_assert_eq!(Ok(greedy), expected);
            }
        }
    }

    #[test]
    fn malformed_numbers_never_panic(
        mut table in arb_table(12, SMALL_REGIONS, SMALL_OPERATORS),
        weird in prop::collection::vec((any::<f32>(), any::<f32>(), any::<u64>()), 12),
        n in 0usize..300,
        k in 0usize..300,
        now in any::<u64>(),
    ) {
        for (p, &(uptime, reach, beat)) in table.iter_mut().zip(&weird) {
            p.uptime_ratio = uptime;
            p.reachability = reach;
            p.last_heartbeat_ms = beat;
        }
        let _ = select_quorum(&table, n, k, &QuorumPolicy::default(), now, &mut rng(0));
        let holders: Vec<_> = table.iter().map(|p| p.node).collect();
        let _ = check_quorum(&table, &holders, n, k);
    }
}
