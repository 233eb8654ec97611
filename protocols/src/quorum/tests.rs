//! Unit tests: eligibility, scoring, selection and quorum checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::testkit::{NOW, node, peer, rng, spread};
use super::*;

fn policy() -> QuorumPolicy {
    QuorumPolicy::default()
}

#[test]
fn a_healthy_peer_is_eligible() {
    assert_eq!(exclusion(&peer(1, "r", "o"), &policy(), NOW), None);
}

#[test]
fn an_unattested_peer_is_excluded() {
    let p = PeerRecord {
        attested: false,
        ..peer(1, "r", "o")
    };
    assert_eq!(exclusion(&p, &policy(), NOW), Some(Exclusion::NotAttested));
}

#[test]
fn a_heartbeat_older_than_the_max_age_is_excluded_but_one_exactly_at_it_is_not() {
    let max = policy().heartbeat_max_age_ms;
    let stale = PeerRecord {
        last_heartbeat_ms: NOW - max - 1,
        ..peer(1, "r", "o")
    };
    assert_eq!(
        exclusion(&stale, &policy(), NOW),
        Some(Exclusion::StaleHeartbeat { age_ms: max + 1 })
    );
    let edge = PeerRecord {
        last_heartbeat_ms: NOW - max,
        ..peer(1, "r", "o")
    };
    assert_eq!(exclusion(&edge, &policy(), NOW), None);
}

#[test]
fn a_heartbeat_from_the_future_is_tolerated_within_the_skew_and_excluded_beyond_it() {
    let skew = policy().max_clock_skew_ms;
    let ahead = PeerRecord {
        last_heartbeat_ms: NOW + skew,
        ..peer(1, "r", "o")
    };
    assert_eq!(exclusion(&ahead, &policy(), NOW), None);
    let far = PeerRecord {
        last_heartbeat_ms: NOW + skew + 1,
        ..peer(1, "r", "o")
    };
    assert_eq!(
        exclusion(&far, &policy(), NOW),
        Some(Exclusion::FutureHeartbeat { ahead_ms: skew + 1 })
    );
}

#[test]
fn extreme_clock_values_do_not_overflow() {
    let p = PeerRecord {
        last_heartbeat_ms: u64::MAX,
        ..peer(1, "r", "o")
    };
    assert!(matches!(
        exclusion(&p, &policy(), 0),
        Some(Exclusion::FutureHeartbeat { .. })
    ));
    let q = PeerRecord {
        last_heartbeat_ms: 0,
        ..peer(1, "r", "o")
    };
    assert!(matches!(
        exclusion(&q, &policy(), u64::MAX),
        Some(Exclusion::StaleHeartbeat { .. })
    ));
}

#[test]
fn a_battery_below_the_floor_is_excluded_but_one_at_the_floor_is_not() {
    let floor = policy().battery_floor_percent;
    let low = PeerRecord {
        power: Power::Battery { percent: floor - 1 },
        ..peer(1, "r", "o")
    };
    assert_eq!(
        exclusion(&low, &policy(), NOW),
        Some(Exclusion::BatteryBelowFloor {
            percent: floor - 1,
            floor
        })
    );
    let at = PeerRecord {
        power: Power::Battery { percent: floor },
        ..peer(1, "r", "o")
    };
    assert_eq!(exclusion(&at, &policy(), NOW), None);
}

#[test]
fn a_peer_with_no_free_store_slot_is_excluded() {
    let p = PeerRecord {
        free_store_slots: 0,
        ..peer(1, "r", "o")
    };
    assert_eq!(exclusion(&p, &policy(), NOW), Some(Exclusion::NoFreeStore));
}

#[test]
fn a_peer_in_the_exclusion_set_is_excluded_and_never_selected() {
    let table = spread(8, 4, 4);
    let pol = policy().excluding([node(0), node(5)]);
    assert_eq!(exclusion(&table[0], &pol, NOW), Some(Exclusion::Excluded));
    for seed in 0..50 {
        let q = select_quorum(&table, 5, 3, &pol, NOW, &mut rng(seed)).unwrap();
        assert!(!q.holders.contains(&node(0)) && !q.holders.contains(&node(5)));
    }
}

#[test]
fn only_the_first_record_of_a_duplicated_node_counts() {
    let mut table = vec![
        PeerRecord {
            attested: false,
            ..peer(1, "r", "o")
        },
        peer(1, "r", "o"),
        peer(2, "r", "o"),
    ];
    let ids: Vec<_> = eligible(&table, &policy(), NOW)
        .iter()
        .map(|p| p.node)
        .collect();
    assert_eq!(ids, vec![node(2)]);
    // check_quorum reads the first record's region too.
    table = vec![peer(1, "a", "x"), peer(1, "b", "y"), peer(2, "a", "z")];
    table.push(peer(3, "c", "w"));
    assert!(matches!(
        check_quorum(&table, &[node(1), node(2), node(3)], 3, 2),
        Err(QuorumViolation::RegionOverCap { .. })
    ));
}

#[test]
fn parameters_outside_two_le_k_le_n_le_255_are_rejected() {
    let table = spread(300, 300, 300);
    for (n, k) in [(5, 1), (5, 0), (3, 4), (256, 2), (0, 0)] {
        assert_eq!(
            select_quorum(&table, n, k, &policy(), NOW, &mut rng(1)),
            Err(QuorumError::InvalidParameters { n, k })
        );
        assert_eq!(
            check_quorum(&table, &[], n, k),
            Err(QuorumViolation::InvalidParameters { n, k })
        );
    }
    assert!(select_quorum(&table, 255, 2, &policy(), NOW, &mut rng(1)).is_ok());
}

#[test]
fn too_few_eligible_peers_is_reported_with_the_counts() {
    let mut table = spread(6, 6, 6);
    table[0].attested = false;
    table[1].free_store_slots = 0;
    assert_eq!(
        select_quorum(&table, 5, 3, &policy(), NOW, &mut rng(1)),
        Err(QuorumError::NotEnoughEligible {
            eligible: 4,
            needed: 5
        })
    );
}

#[test]
fn k_equal_to_n_is_never_satisfiable_because_the_region_cap_is_zero() {
    let table = spread(10, 10, 10);
    assert_eq!(
        select_quorum(&table, 3, 3, &policy(), NOW, &mut rng(1)),
        Err(QuorumError::ConstraintsUnsatisfiable {
            eligible: 10,
            regions: 10,
            operators: 10,
            largest: 0,
            needed: 3
        })
    );
}

#[test]
fn a_single_region_cannot_host_a_quorum() {
    let table = spread(10, 1, 10);
    assert_eq!(
        select_quorum(&table, 5, 3, &policy(), NOW, &mut rng(1)),
        Err(QuorumError::ConstraintsUnsatisfiable {
            eligible: 10,
            regions: 1,
            operators: 10,
            largest: 2,
            needed: 5
        })
    );
}

#[test]
fn labels_differing_only_in_case_or_spacing_are_the_same_region() {
    let table = vec![
        peer(1, "EU-West", "a"),
        peer(2, " eu-west ", "b"),
        peer(3, "eu-west", "c"),
        peer(4, "us", "d"),
    ];
    // n=4, k=2: at most 2 per region, so the three eu-west peers cannot all be used.
    assert!(matches!(
        select_quorum(&table, 4, 2, &policy(), NOW, &mut rng(1)),
        Err(QuorumError::ConstraintsUnsatisfiable { regions: 2, .. })
    ));
}

#[test]
fn greedy_gets_stuck_on_this_order_but_the_flow_fallback_finds_the_quorum() {
    // n=4, k=2: <=2 per region, 1 per operator. Taking peers 0 and 1 fills region X
    // and uses operators a and b, the only operators of regions Y and Z.
    let table = vec![
        peer(0, "X", "a"),
        peer(1, "X", "b"),
        peer(2, "Y", "a"),
        peer(3, "Z", "b"),
        peer(4, "X", "c"),
        peer(5, "X", "d"),
    ];
    let peers: Vec<&PeerRecord> = table.iter().collect();
    let groups = Groups::of(&peers);
    let caps = Caps::new(4, 2).unwrap();
    let order = [0, 1, 2, 3, 4, 5];
    assert_eq!(greedy(&groups, &order, caps, 4), None);
    let picked = pick(&groups, &order, caps, 4).unwrap();
    assert_eq!(picked, vec![2, 3, 4, 5]);
    let holders: Vec<_> = picked.iter().map(|&i| table[i].node).collect();
    assert_eq!(check_quorum(&table, &holders, 4, 2), Ok(()));
    for seed in 0..200 {
        let q = select_quorum(&table, 4, 2, &policy(), NOW, &mut rng(seed)).unwrap();
        assert_eq!(check_quorum(&table, &q.holders, 4, 2), Ok(()));
    }
}

#[test]
fn the_same_seed_gives_the_same_quorum() {
    let table = spread(50, 5, 7);
    let a = select_quorum(&table, 7, 4, &policy(), NOW, &mut rng(9)).unwrap();
    let b = select_quorum(&table, 7, 4, &policy(), NOW, &mut rng(9)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_score_prefers_mains_low_rtt_few_shares_and_availability() {
    let w = ScoreWeights::default();
    let base = peer(1, "r", "o");
    let s = |p: &PeerRecord| score(p, &w);
    let battery = PeerRecord {
        power: Power::Battery { percent: 100 },
        ..base.clone()
    };
    let slow = PeerRecord {
        rtt_ms: Some(500),
        ..base.clone()
    };
    let unknown_rtt = PeerRecord {
        rtt_ms: None,
        ..base.clone()
    };
    let loaded = PeerRecord {
        shares_held: 100,
        ..base.clone()
    };
    let flaky = PeerRecord {
        uptime_ratio: 0.2,
        reachability: 0.3,
        ..base.clone()
    };
    for worse in [&battery, &slow, &unknown_rtt, &loaded, &flaky] {
        assert!(s(&base) > s(worse), "{worse:?}");
    }
}

#[test]
fn the_score_is_positive_and_finite_for_any_field_and_weight_values() {
    let bad = PeerRecord {
        uptime_ratio: f32::NAN,
        reachability: f32::INFINITY,
        rtt_ms: Some(u32::MAX),
        shares_held: u32::MAX,
        power: Power::Battery { percent: 255 },
        ..peer(1, "r", "o")
    };
    let weights = [
        ScoreWeights::default(),
        ScoreWeights {
            uptime: f64::NAN,
            reachability: f64::INFINITY,
            rtt: -5.0,
            power: f64::MAX,
            load: f64::NEG_INFINITY,
            rtt_reference_ms: 0,
            load_reference_shares: 0,
            floor: f64::NAN,
        },
        ScoreWeights {
            uptime: 0.0,
            reachability: 0.0,
            rtt: 0.0,
            power: 0.0,
            load: 0.0,
            floor: -1.0,
            ..ScoreWeights::default()
        },
    ];
    for w in &weights {
        for p in [&bad, &peer(2, "r", "o")] {
            let s = score(p, w);
            assert!(s.is_finite() && s > 0.0, "{s}");
        }
    }
}

#[test]
fn check_quorum_reports_each_kind_of_violation() {
    let table = vec![
        peer(0, "a", "x"),
        peer(1, "a", "y"),
        peer(2, "a", "z"),
        peer(3, "b", "x"),
        peer(4, "c", "w"),
        peer(5, "b", "v"),
    ];
    let ids = |v: &[u32]| v.iter().map(|&i| node(i)).collect::<Vec<_>>();
    assert_eq!(check_quorum(&table, &ids(&[0, 1, 3, 4]), 4, 2).err(), {
        Some(QuorumViolation::OperatorOverCap {
            operator: "x".into(),
            holders: 2,
            cap: 1,
        })
    });
    assert_eq!(
        check_quorum(&table, &ids(&[0, 1, 2, 4]), 4, 2),
        Err(QuorumViolation::RegionOverCap {
            region: "a".into(),
            holders: 3,
            cap: 2
        })
    );
    assert_eq!(
        check_quorum(&table, &ids(&[0, 1, 4]), 4, 2),
        Err(QuorumViolation::WrongSize {
            expected: 4,
            actual: 3
        })
    );
    assert_eq!(
        check_quorum(&table, &ids(&[0, 4, 0, 1]), 4, 2),
        Err(QuorumViolation::DuplicateHolder { node: node(0) })
    );
    assert_eq!(
        check_quorum(&table, &ids(&[0, 4, 9, 1]), 4, 2),
        Err(QuorumViolation::UnknownHolder { node: node(9) })
    );
    assert_eq!(check_quorum(&table, &ids(&[0, 1, 4, 5]), 4, 2), Ok(()));
}

#[test]
fn higher_scoring_peers_are_picked_more_often() {
    // 20 interchangeable peers (own region and operator), half with a high score.
    let mut table = spread(20, 20, 20);
    for p in table.iter_mut().skip(10) {
        p.uptime_ratio = 0.1;
        p.reachability = 0.1;
        p.rtt_ms = Some(800);
    }
    let (mut high, mut low) = (0u32, 0u32);
    let mut r = rng(0x5eed);
    for _ in 0..2_000 {
        let q = select_quorum(&table, 5, 3, &policy(), NOW, &mut r).unwrap();
        for h in &q.holders {
            if table[..10].iter().any(|p| p.node == *h) {
                high += 1;
            } else {
                low += 1;
            }
        }
    }
    // Scores are about 7.9 vs 2.6; the fixed seed makes the counts reproducible
    // (7324 vs 2676 with this seed), and the margin leaves room for RNG changes.
    assert_eq!(high + low, 10_000);
    assert!(high > 2 * low, "high {high}, low {low}");
}

#[test]
fn policy_and_records_are_serde_types() {
    fn serde_type<T: Serialize + for<'de> Deserialize<'de>>() {}
    serde_type::<PeerRecord>();
    serde_type::<QuorumPolicy>();
    serde_type::<Quorum>();
}

#[test]
fn holders_are_spread_evenly_over_regions_when_the_peers_allow_it() {
    // 40 peers in 4 regions under 10 operators: (9,4) may put 5 in a region by the caps alone,
    // but an even spread (at most ⌈9/4⌉ = 3) exists and is always taken.
    let table = spread(40, 4, 10);
    for seed in 0..100 {
        let q = select_quorum(&table, 9, 4, &policy(), NOW, &mut rng(seed)).unwrap();
        assert_eq!(check_quorum(&table, &q.holders, 9, 4), Ok(()));
        let mut per_region = std::collections::BTreeMap::new();
        for h in &q.holders {
            let p = table.iter().find(|p| &p.node == h).unwrap();
            *per_region.entry(p.region.clone()).or_insert(0) += 1;
        }
        assert!(per_region.values().all(|&c| c <= 3), "{per_region:?}");
    }
}

#[test]
fn an_uneven_fleet_falls_back_to_the_design_caps() {
    // Regions of 5, 3 and 1 peers: an even spread (≤ 3 each) holds only 7 of 9, the caps
    // (≤ n − k = 5 per region) hold all 9.
    let mut table = Vec::new();
    for (i, region) in ["A", "A", "A", "A", "A", "B", "B", "B", "C"]
        .iter()
        .enumerate()
    {
        table.push(peer(i as u32, region, &format!("op{i}")));
    }
    let q = select_quorum(&table, 9, 4, &policy(), NOW, &mut rng(1)).unwrap();
    assert_eq!(q.holders.len(), 9);
    assert_eq!(check_quorum(&table, &q.holders, 9, 4), Ok(()));
}
