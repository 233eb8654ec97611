//! Intake rules with real blocks: held credit, duplicate cancellation, evidence-based clone
//! verdicts, replays, and the receipt of a drawn key.

#![allow(clippy::unwrap_used)]

use super::*;
use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const HOLD: u64 = 5_000;

/// Four conditioned outputs (random bytes stand in for HMAC output).
fn block(rng: &mut ChaCha20Rng) -> ConditionedBlock {
    let mut bytes = vec![0u8; 128];
    rng.fill_bytes(&mut bytes);
    ConditionedBlock::from_received(bytes, 1280).unwrap()
}

/// Bits a block is worth: more than the per-peer cap of 1024, so the cap decides.
fn claim() -> u64 {
    10_000
}

fn intake() -> Intake {
    Intake::with_rules(
        [1; 32],
        CreditPolicy::new(0.5, 1024).unwrap(),
        DuplicateRules {
            hold_ms: HOLD,
            min_events: 3,
        },
    )
    .unwrap()
}

fn id(b: u8) -> NodeId {
    NodeId([b; 32])
}

/// Bits credited per contributor, and peers named as clones, from drained events.
fn tally(events: &[IntakeEvent]) -> (BTreeMap<NodeId, u64>, Vec<NodeId>) {
    let mut credited = BTreeMap::new();
    let mut cloned = Vec::new();
    for e in events {
        match e {
            IntakeEvent::Credited { contributor, bits } => {
                *credited.entry(*contributor).or_insert(0) += bits
            }
            IntakeEvent::Cloned { contributor, .. } => cloned.push(*contributor),
            IntakeEvent::Cancelled { .. } => {}
        }
    }
    (credited, cloned)
}

#[test]
fn a_drawn_key_uses_up_the_credit_that_made_the_pool_ready() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut intake = intake();
    // Three rounds from one source per peer: the credit lands in pools 0, 1 and 2, which
    // Fortuna's schedule would fold only at later reseeds.
    let mut now = 0;
    for _round in 0..3 {
        for peer in [1u8, 2, 3] {
            now += 1000;
            intake
                .take(&id(peer), 0, &block(&mut rng), claim(), now)
                .unwrap();
        }
        intake.new_round();
    }
    intake.settle(now + HOLD);
    assert!(intake.ready(2048, 3));
    let (_, receipt) = intake.draw(&[9; 32]).unwrap();
    assert_eq!(
        receipt.credited_bits,
        9 * 1024,
        "the receipt credits what made the pool ready: {receipt:?}"
    );
    assert_eq!(receipt.contributors.len(), 3);
    assert!(
        !intake.ready(1, 1),
        "the same credit cannot make a second key ready"
    );
}

#[test]
fn credit_is_held_until_the_duplicate_window_closes() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut intake = intake();
    for peer in [1u8, 2, 3] {
        assert_eq!(
            intake.take(&id(peer), 0, &block(&mut rng), claim(), 10_000),
            Ok(1024)
        );
    }
    assert_eq!(intake.held(), (3 * 1024, 3));
    assert!(!intake.ready(1, 1), "held credit does not count");
    intake.settle(10_000 + HOLD - 1);
    assert!(!intake.ready(1, 1));
    intake.settle(10_000 + HOLD);
    assert!(intake.ready(3 * 1024, 3));
    assert_eq!(intake.held(), (0, 0));
    assert_eq!(intake.stats().credited, 3 * 1024);
    let (credited, cloned) = tally(&intake.drain_events());
    assert_eq!(credited.values().sum::<u64>(), 3 * 1024);
    assert!(cloned.is_empty());
}

#[test]
fn a_duplicate_within_the_window_cancels_the_credit_of_both_blocks() {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let mut intake = intake();
    let shared = block(&mut rng);
    assert_eq!(intake.take(&id(1), 0, &shared, claim(), 1_000), Ok(1024));
    assert_eq!(
        intake.take(&id(2), 0, &shared, claim(), 1_000 + HOLD - 1),
        Err(Rejection::Clone)
    );
    let events = intake.drain_events();
    assert!(
        events.contains(&IntakeEvent::Cancelled {
            contributor: id(1),
            bits: 1024,
            partner: id(2),
        }),
        "{events:?}"
    );
    intake.settle(1_000_000);
    let (credited, cloned) = tally(&intake.drain_events());
    assert!(
        credited.is_empty(),
        "neither block is credited: {credited:?}"
    );
    assert!(cloned.is_empty(), "one event names nobody");
    assert!(!intake.ready(1, 1));
    assert_eq!(intake.stats().credited, 0);
    assert_eq!(intake.stats().cancelled, 1024);
}

#[test]
fn a_duplicate_after_the_window_is_refused_but_the_first_block_keeps_its_credit() {
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let mut intake = intake();
    let shared = block(&mut rng);
    intake.take(&id(1), 0, &shared, claim(), 1_000).unwrap();
    assert_eq!(
        intake.take(&id(2), 0, &shared, claim(), 1_000 + HOLD),
        Err(Rejection::Clone)
    );
    let (credited, _) = tally(&intake.drain_events());
    assert_eq!(credited.get(&id(1)), Some(&1024));
    assert_eq!(credited.get(&id(2)), None);
}

#[test]
fn the_later_sender_in_a_clear_majority_is_named_and_the_original_is_not() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut intake = intake();
    let (original, copier) = (id(1), id(2));
    let mut events = Vec::new();
    let mut now = 0;
    // Four duplicated blocks; the mesh delivers the copy first once.
    for copy_first in [false, true, false, false] {
        now += 20_000;
        intake.new_round();
        let b = block(&mut rng);
        let (first, second) = if copy_first {
            (copier, original)
        } else {
            (original, copier)
        };
        intake.take(&first, 0, &b, claim(), now).unwrap();
        assert_eq!(
            intake.take(&second, 0, &b, claim(), now + 2_000),
            Err(Rejection::Clone)
        );
        // The original's own fresh blocks are untouched (next round: the cap is per round).
        intake.new_round();
        intake
            .take(&original, 1, &block(&mut rng), claim(), now + 3_000)
            .unwrap();
        events.extend(intake.drain_events());
    }
    intake.settle(now + 10 * HOLD);
    events.extend(intake.drain_events());
    let (credited, cloned) = tally(&events);
    assert_eq!(cloned, vec![copier], "{events:?}");
    assert!(intake.flagged().contains(&copier));
    assert!(!intake.flagged().contains(&original));
    assert_eq!(
        credited.get(&copier),
        None,
        "nothing credited to the copier"
    );
    assert_eq!(
        credited.get(&original),
        Some(&(4 * 1024)),
        "the original is credited for its fresh blocks only"
    );
    assert!(events.contains(&IntakeEvent::Cloned {
        contributor: copier,
        partner: original,
        later: 3,
        earlier: 1,
    }));
}

#[test]
fn a_cloned_image_without_consistent_order_ends_with_neither_credited_and_both_named() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let mut intake = intake();
    let (a, b) = (id(1), id(2));
    let mut events = Vec::new();
    let mut now = 0;
    for i in 0..6 {
        now += 20_000;
        intake.new_round();
        let shared = block(&mut rng);
        let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
        intake.take(&first, 0, &shared, claim(), now).unwrap();
        assert_eq!(
            intake.take(&second, 0, &shared, claim(), now + 500),
            Err(Rejection::Clone)
        );
        events.extend(intake.drain_events());
    }
    intake.settle(now + 10 * HOLD);
    events.extend(intake.drain_events());
    let (credited, mut cloned) = tally(&events);
    cloned.sort();
    assert!(credited.is_empty(), "{credited:?}");
    assert_eq!(cloned, vec![a, b]);
    assert!(!intake.ready(1, 1));
}

#[test]
fn a_device_repeating_its_own_stream_is_a_replay_and_named_nowhere() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut intake = intake();
    let b = block(&mut rng);
    intake.take(&id(1), 0, &b, claim(), 1_000).unwrap();
    for i in 0..6 {
        assert_eq!(
            intake.take(&id(1), 0, &b, claim(), 2_000 + i * 1_000),
            Err(Rejection::Replay)
        );
    }
    intake.settle(100_000);
    let (credited, cloned) = tally(&intake.drain_events());
    assert_eq!(credited.get(&id(1)), Some(&1024), "the first block counts");
    assert!(cloned.is_empty());
    assert!(intake.flagged().is_empty());
    assert_eq!(intake.stats().replays, 6);
}

#[test]
fn a_block_witnessed_from_an_untrusted_peer_cancels_a_held_duplicate_and_is_never_credited() {
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    let mut intake = intake();
    let shared = block(&mut rng);
    // The copy from a trusted peer arrives first; the original is not attested yet.
    intake.take(&id(2), 0, &shared, claim(), 1_000).unwrap();
    assert!(intake.witness(&id(1), &shared, 1_500));
    // And the other way round: the untrusted peer's block is remembered.
    let other = block(&mut rng);
    assert!(!intake.witness(&id(3), &other, 2_000));
    assert_eq!(
        intake.take(&id(4), 0, &other, claim(), 2_500),
        Err(Rejection::Clone)
    );
    intake.settle(100_000);
    let (credited, _) = tally(&intake.drain_events());
    assert!(credited.is_empty(), "{credited:?}");
    assert_eq!(intake.stats().witnessed, 2);
}

#[test]
fn a_full_hold_queue_settles_its_oldest_block_early() {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let mut intake = Intake::with_rules(
        [1; 32],
        CreditPolicy::new(0.5, u64::MAX / 4).unwrap(),
        DuplicateRules {
            hold_ms: 60_000,
            min_events: 3,
        },
    )
    .unwrap();
    for i in 0..(MAX_HELD as u64 + 2) {
        let mut who = [0u8; 32];
        who[..8].copy_from_slice(&i.to_be_bytes());
        intake
            .take(&NodeId(who), 0, &block(&mut rng), claim(), 1_000)
            .unwrap();
    }
    assert_eq!(intake.held().1, MAX_HELD);
    assert_eq!(intake.stats().settled_early, 2);
}
