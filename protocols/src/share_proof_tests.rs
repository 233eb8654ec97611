//! A holder with its share proves it; one without it, a changed share, a replayed proof, a proof
//! of another slot or made-up bytes do not pass.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::keys::SessionSecret;
use crate::sharing::{VerifiedShare, split};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn dealt(seed: u64) -> (Vec<VerifiedShare>, Commitments, StdRng) {
    let mut rng = StdRng::seed_from_u64(seed);
    let secret = SessionSecret(Scalar::random(&mut rng));
    let (shares, commitments) = split(&secret, &[1, 2, 3, 4, 5], 3, &mut rng).unwrap();
    (shares, commitments, rng)
}

fn ctx(index: ShareIndex, challenge: u8) -> ProofContext {
    ProofContext {
        session: SessionId([7; 16]),
        epoch: 4,
        index,
        challenge: [challenge; 32],
    }
}

#[test]
fn every_holder_proves_its_share_against_the_commitments_and_the_kept_public_share() {
    let (shares, commitments, mut rng) = dealt(1);
    for share in &shares {
        let c = ctx(share.index(), 9);
        let proof = prove(&c, &share.value_bytes(), &mut rng).unwrap();
        verify(&c, &commitments, &proof).unwrap();
        let kept = public_share_bytes(&commitments, share.index()).unwrap();
        verify_public(&c, &kept, &proof).unwrap();
    }
}

#[test]
fn a_changed_share_does_not_prove() {
    let (shares, commitments, mut rng) = dealt(2);
    let mut bytes = shares[0].value_bytes();
    bytes[0] ^= 0x01;
    let c = ctx(shares[0].index(), 1);
    let proof = prove(&c, &bytes, &mut rng).unwrap();
    assert_eq!(
        verify(&c, &commitments, &proof),
        Err(ProofError::DoesNotCheck)
    );
}

#[test]
fn another_holders_share_does_not_prove_this_slot() {
    let (shares, commitments, mut rng) = dealt(3);
    let c = ctx(shares[0].index(), 1);
    let proof = prove(&c, &shares[1].value_bytes(), &mut rng).unwrap();
    assert!(verify(&c, &commitments, &proof).is_err());
}

#[test]
fn a_proof_is_bound_to_its_challenge_session_epoch_and_index() {
    let (shares, commitments, mut rng) = dealt(4);
    let c = ctx(shares[0].index(), 1);
    let proof = prove(&c, &shares[0].value_bytes(), &mut rng).unwrap();
    let others = [
        ProofContext {
            challenge: [2; 32],
            ..c
        },
        ProofContext {
            session: SessionId([8; 16]),
            ..c
        },
        ProofContext { epoch: 5, ..c },
    ];
    for other in others {
        assert_eq!(
            verify(&other, &commitments, &proof),
            Err(ProofError::DoesNotCheck),
            "{other:?}"
        );
    }
    // Shown for index 2, whose public share differs.
    let moved = ProofContext { index: 2, ..c };
    assert!(verify(&moved, &commitments, &proof).is_err());
}

#[test]
fn bytes_that_are_no_scalar_prove_nothing() {
    let mut rng = StdRng::seed_from_u64(5);
    assert!(prove(&ctx(1, 1), &[0xff; 32], &mut rng).is_none());
}

proptest! {
    #[test]
    fn made_up_proofs_and_public_points_are_refused_without_panicking(
        proof in any::<ShareProof>(),
        public in any::<[u8; 32]>(),
        challenge in any::<u8>(),
    ) {
        let (_, commitments, _) = dealt(6);
        let c = ctx(1, challenge);
        prop_assert!(verify(&c, &commitments, &proof).is_err());
        prop_assert!(verify_public(&c, &public, &proof).is_err());
    }
}
