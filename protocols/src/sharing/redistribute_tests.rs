//! Redistribution keeps the secret and commitment 0, under any parameters and chains of
//! epochs; a dealing of the wrong share and a wrong sub-share are caught and named.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::sharing::combine;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn secret(seed: u64) -> SessionSecret {
    let mut rng = StdRng::seed_from_u64(seed);
    SessionSecret(Scalar::random(&mut rng))
}

fn indices(n: usize, offset: u8) -> Vec<ShareIndex> {
    (1..=n as u8).map(|i| i + offset).collect()
}

/// One rotation: the first k old holders sub-deal onto `new_indices`; every new holder
/// verifies and combines. Returns the new shares and commitments.
fn redistribute(
    old_shares: &[VerifiedShare],
    old: &Commitments,
    new_indices: &[ShareIndex],
    new_k: usize,
    rng: &mut StdRng,
) -> (Vec<VerifiedShare>, Commitments) {
    let k = old.threshold();
    let dealings: Vec<SubDealing> = old_shares
        .iter()
        .take(k)
        .map(|s| sub_deal(s, new_indices, new_k, rng).unwrap())
        .collect();
    for d in &dealings {
        check_dealing(old, d.dealer, &d.commitments).unwrap();
    }
    let pairs: Vec<(ShareIndex, &Commitments)> = dealings
        .iter()
        .map(|d| (d.dealer, &d.commitments))
        .collect();
    let new = combined_commitments(old, &pairs).unwrap();
    let shares = new_indices
        .iter()
        .map(|&y| {
            let mine: Vec<(ShareIndex, VerifiedShare)> = dealings
                .iter()
                .map(|d| {
                    let sub = d.sub_shares.iter().find(|s| s.index == y).unwrap();
                    // What travels is bytes; the new holder verifies them against D_i.
                    let received = UnverifiedShare::new(y, sub.value_bytes())
                        .verify(&d.commitments)
                        .unwrap();
                    (d.dealer, received)
                })
                .collect();
            combine_sub_shares(&mine, &new).unwrap()
        })
        .collect();
    (shares, new)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_k_new_shares_rebuild_the_unchanged_secret(
        seed in any::<u64>(),
        (n, k) in (2usize..=8).prop_flat_map(|n| (Just(n), 2..=n)),
        (n2, k2) in (2usize..=8).prop_flat_map(|n| (Just(n), 2..=n)),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let s = secret(seed ^ 0x5eed);
        let (old_shares, old) = split(&s, &indices(n, 0), k, &mut rng).unwrap();
        let (new_shares, new) = redistribute(&old_shares, &old, &indices(n2, 10), k2, &mut rng);
        prop_assert_eq!(new.threshold(), k2);
        prop_assert_eq!(new.0[0], old.0[0]);
        // The last k2 new shares, not only the first.
        let rebuilt = combine(&new_shares[n2 - k2..], &new).unwrap();
        prop_assert_eq!(rebuilt.public_point(), s.public_point());
    }

    #[test]
    fn a_chain_of_redistributions_keeps_the_secret(seed in any::<u64>(), epochs in 1usize..6) {
        let mut rng = StdRng::seed_from_u64(seed);
        let s = secret(seed);
        let (mut shares, mut commitments) = split(&s, &indices(5, 0), 3, &mut rng).unwrap();
        for epoch in 0..epochs {
            let offset = ((epoch % 3) * 20) as u8;
            (shares, commitments) = redistribute(&shares, &commitments, &indices(5, offset), 3, &mut rng);
        }
        prop_assert_eq!(combine(&shares[2..], &commitments).unwrap().public_point(), s.public_point());
    }
}

#[test]
fn a_dealing_of_another_share_is_caught_and_names_its_dealer() {
    let mut rng = StdRng::seed_from_u64(1);
    let (old_shares, old) = split(&secret(1), &indices(5, 0), 3, &mut rng).unwrap();
    // Holder 2 sub-deals holder 3's share (or any value of its own) under its own index.
    let mut stolen = sub_deal(&old_shares[2], &indices(5, 10), 3, &mut rng).unwrap();
    stolen.dealer = 2;
    assert_eq!(
        check_dealing(&old, 2, &stolen.commitments).unwrap_err(),
        SharingError::ShareMismatch { index: 2 }
    );
    // A forged set of commitments cannot be combined into the new epoch either.
    let honest: Vec<SubDealing> = [0, 1]
        .iter()
        .map(|&i| sub_deal(&old_shares[i], &indices(5, 10), 3, &mut rng).unwrap())
        .collect();
    let pairs = vec![
        (1, &honest[0].commitments),
        (2, &stolen.commitments),
        (3, &honest[1].commitments),
    ];
    assert_eq!(
        combined_commitments(&old, &pairs).unwrap_err(),
        SharingError::SecretMismatch
    );
}

#[test]
fn a_wrong_sub_share_fails_its_dealers_commitments() {
    let mut rng = StdRng::seed_from_u64(2);
    let (old_shares, _old) = split(&secret(2), &indices(4, 0), 2, &mut rng).unwrap();
    let dealing = sub_deal(&old_shares[0], &indices(4, 10), 2, &mut rng).unwrap();
    let mut bytes = dealing.sub_shares[1].value_bytes();
    bytes[0] ^= 1;
    assert_eq!(
        UnverifiedShare::new(12, bytes)
            .verify(&dealing.commitments)
            .unwrap_err(),
        SharingError::ShareMismatch { index: 12 }
    );
}

#[test]
fn the_qualified_set_must_be_exactly_the_old_threshold_of_distinct_dealers() {
    let mut rng = StdRng::seed_from_u64(3);
    let (old_shares, old) = split(&secret(3), &indices(5, 0), 3, &mut rng).unwrap();
    let d: Vec<SubDealing> = old_shares
        .iter()
        .map(|s| sub_deal(s, &indices(5, 10), 3, &mut rng).unwrap())
        .collect();
    let two = vec![(1, &d[0].commitments), (2, &d[1].commitments)];
    assert!(matches!(
        combined_commitments(&old, &two).unwrap_err(),
        SharingError::NotEnoughShares { have: 2, need: 3 }
    ));
    let repeated = vec![
        (1, &d[0].commitments),
        (1, &d[0].commitments),
        (2, &d[1].commitments),
    ];
    assert_eq!(
        combined_commitments(&old, &repeated).unwrap_err(),
        SharingError::DuplicateIndex { index: 1 }
    );
}

#[test]
fn public_shares_match_the_shares_themselves() {
    let mut rng = StdRng::seed_from_u64(4);
    let (shares, commitments) = split(&secret(4), &indices(6, 3), 4, &mut rng).unwrap();
    for s in &shares {
        let expected = RistrettoPoint::mul_base(&s.scalar).compress();
        assert_eq!(
            public_share(&commitments, s.index).unwrap().compress(),
            expected
        );
    }
    assert_eq!(
        public_share(&commitments, 0).unwrap_err(),
        SharingError::ZeroIndex
    );
}
