//! Tests for the clone and replay detector.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

const A: ContributorId = [0xA0; 32];
const B: ContributorId = [0xB0; 32];
const KEY: [u8; 32] = [0x42; 32];

fn random_block(rng: &mut ChaCha20Rng) -> [u8; BLOCK_BYTES] {
    let mut b = [0u8; BLOCK_BYTES];
    rng.fill_bytes(&mut b);
    b
}

fn flip(b: &mut [u8; BLOCK_BYTES], i: usize) {
    b[i / 8] ^= 0x80 >> (i % 8);
}

fn detector(capacity: usize) -> CloneDetector {
    CloneDetector::new(capacity, KEY, DEFAULT_DISTANCE_FRACTION).unwrap()
}

#[test]
fn sampled_positions_are_distinct_in_range_and_key_dependent() {
    let p = sample_positions(KEY);
    assert_eq!(p.len(), SKETCH_BITS);
    let mut sorted = p.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), SKETCH_BITS);
    assert!(p.iter().all(|&x| usize::from(x) < BLOCK_BITS));
    assert_ne!(p, sample_positions([0x43; 32]));
}

#[test]
fn identical_block_from_another_peer_is_an_exact_clone() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let block = random_block(&mut rng);
    let mut d = detector(16);
    assert!(d.observe(&A, &block).is_clean());
    let r = d.observe(&B, &block);
    assert!(r.has_cross_peer_clone());
    assert_eq!(
        r.matches,
        vec![CloneMatch {
            kind: MatchKind::ExactClone,
            other: A,
            sketch_distance: 0
        }]
    );
}

#[test]
fn same_peer_sending_the_same_block_again_is_an_exact_replay() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let block = random_block(&mut rng);
    let mut d = detector(16);
    d.observe(&A, &block);
    let r = d.observe(&A, &block);
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.matches[0].kind, MatchKind::ExactReplay);
    assert!(!r.has_cross_peer_clone());
}

#[test]
fn five_percent_scattered_bit_flips_are_still_a_clone() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let block = random_block(&mut rng);
    let mut copy = block;
    for i in (0..BLOCK_BITS).step_by(20) {
        flip(&mut copy, i); // 1,000 flips = 5%
    }
    let mut d = detector(16);
    d.observe(&A, &block);
    let r = d.observe(&B, &copy);
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.matches[0].kind, MatchKind::NearClone);
    assert!(r.matches[0].sketch_distance < 200, "{:?}", r.matches);
    assert!(r.matches[0].sketch_distance > 0);
}

#[test]
fn five_percent_contiguous_bit_flips_are_still_a_clone() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let block = random_block(&mut rng);
    let mut copy = block;
    for i in 7_000..8_000 {
        flip(&mut copy, i);
    }
    let mut d = detector(16);
    d.observe(&A, &block);
    let r = d.observe(&B, &copy);
    assert!(r.has_cross_peer_clone());
    // Same peer sending a near copy is a near replay.
    let r = d.observe(&A, &copy);
    assert!(r.matches.iter().any(|m| m.kind == MatchKind::NearReplay));
    assert!(r.matches.iter().any(|m| m.kind == MatchKind::ExactClone));
}

#[test]
fn independent_random_blocks_never_match() {
    // 1,500 blocks: over 1.1 million distinct pairs compared.
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let mut d = detector(1_500);
    let mut min_distance = u32::MAX;
    let mut fps = Vec::new();
    for i in 0..1_500u32 {
        let who = if i % 2 == 0 { A } else { B };
        let block = random_block(&mut rng);
        let fp = d.fingerprint(&block);
        assert!(d.observe(&who, &block).is_clean(), "block {i} matched");
        if i < 200 {
            for other in &fps {
                min_distance = min_distance.min(fp.distance(other));
            }
            fps.push(fp);
        }
    }
    // The closest of ~20,000 random pairs is still far above the threshold.
    assert!(min_distance > 850, "{min_distance}");
    assert!(min_distance > d.threshold() + 300);
}

#[test]
fn history_is_bounded_and_forgets_the_oldest_block() {
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let first = random_block(&mut rng);
    let mut near_first = first;
    flip(&mut near_first, 3);
    let mut d = detector(4);
    d.observe(&A, &first);
    for _ in 0..4 {
        d.observe(&B, &random_block(&mut rng));
        assert!(d.len() <= 4);
    }
    assert_eq!(d.len(), 4);
    assert!(
        d.check(&B, &near_first).is_clean(),
        "a near copy of an evicted block is no longer found"
    );
    assert!(
        d.check(&B, &first).has_cross_peer_clone(),
        "an exact copy still is, for the longer exact window"
    );
    for _ in 0..d.exact_capacity() {
        d.observe(&B, &random_block(&mut rng));
    }
    assert!(
        d.check(&B, &first).is_clean(),
        "past the exact window the block is forgotten"
    );
}

#[test]
fn an_exact_copy_long_after_its_original_is_a_clone_and_a_replay_is_a_replay() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let original = random_block(&mut rng);
    let mut d = detector(8);
    d.observe(&A, &original);
    // Many other blocks since: the sketch history has long forgotten the original.
    for _ in 0..(8 * EXACT_WINDOW_FACTOR - 2) {
        d.observe(&[0xC0; 32], &random_block(&mut rng));
    }
    let from_b = d.check(&B, &original);
    assert_eq!(from_b.matches.len(), 1);
    assert_eq!(from_b.matches[0].kind, MatchKind::ExactClone);
    assert_eq!(from_b.matches[0].other, A);
    let from_a = d.check(&A, &original);
    assert_eq!(from_a.matches[0].kind, MatchKind::ExactReplay);
    // A second sender is remembered beside the first.
    d.observe(&B, &original);
    let from_c = d.check(&[0xD0; 32], &original);
    let others: Vec<_> = from_c.matches.iter().map(|m| m.other).collect();
    assert_eq!(others, vec![A, B]);
    assert!(d.exact.len() <= d.exact_capacity());
}

#[test]
fn check_does_not_remember_the_block() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let block = random_block(&mut rng);
    let d = detector(4);
    assert!(d.check(&A, &block).is_clean());
    assert!(d.is_empty());
    assert!(d.check(&B, &block).is_clean());
}

#[test]
fn detector_rejects_bad_parameters() {
    assert!(CloneDetector::new(0, KEY, 0.25).is_err());
    assert!(CloneDetector::new(MAX_CAPACITY + 1, KEY, 0.25).is_err());
    assert!(CloneDetector::new(4, KEY, 0.45).is_err());
    assert!(CloneDetector::new(4, KEY, -0.1).is_err());
    assert!(CloneDetector::new(4, KEY, f64::NAN).is_err());
    assert_eq!(CloneDetector::new(4, KEY, 0.25).unwrap().threshold(), 512);
}

#[test]
fn zero_threshold_still_catches_exact_copies_only() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let block = random_block(&mut rng);
    let mut d = CloneDetector::new(4, KEY, 0.0).unwrap();
    d.observe(&A, &block);
    assert!(d.check(&B, &block).has_cross_peer_clone());
}

#[test]
fn debug_output_is_redacted() {
    let d = detector(2);
    assert_eq!(format!("{d:?}"), "CloneDetector([redacted])");
    let fp = d.fingerprint(&[0u8; BLOCK_BYTES]);
    assert_eq!(format!("{fp:?}"), "BlockFingerprint([redacted])");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_copy_with_at_most_five_percent_flips_is_caught(
        seed in any::<[u8; 32]>(),
        key in any::<[u8; 32]>(),
        flips in proptest::collection::vec(0usize..BLOCK_BITS, 0..=1_000),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let block = random_block(&mut rng);
        let mut copy = block;
        for &i in &flips {
            flip(&mut copy, i);
        }
        let mut d = CloneDetector::new(8, key, DEFAULT_DISTANCE_FRACTION).unwrap();
        d.observe(&A, &block);
        let r = d.observe(&B, &copy);
        prop_assert!(r.has_cross_peer_clone());
        prop_assert_eq!(r.matches.len(), 1);
    }

    #[test]
    fn sketch_distance_never_exceeds_the_number_of_flipped_bits(
        seed in any::<[u8; 32]>(),
        flips in proptest::collection::btree_set(0usize..BLOCK_BITS, 0..3_000),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let block = random_block(&mut rng);
        let mut copy = block;
        for &i in &flips {
            flip(&mut copy, i);
        }
        let d = detector(1);
        let dist = d.fingerprint(&block).distance(&d.fingerprint(&copy));
        prop_assert!(dist as usize <= flips.len());
        if flips.is_empty() {
            prop_assert_eq!(dist, 0);
        }
    }
}
