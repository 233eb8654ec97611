//! Checking shares one at a time, as they arrive, against one ticket's commitments: the public
//! share `Pₓ = Σⱼ Cⱼ·xʲ` of each index is computed once and kept, so checking a share is one
//! base multiplication `G·s == Pₓ`, and rebuilding the secret reuses the Lagrange weights of the
//! last index set (docs/decisions/0008).

use super::{Commitments, MIN_THRESHOLD, SharingError, UnverifiedShare, VerifiedShare};
use crate::ids::ShareIndex;
use crate::keys::SessionSecret;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Everything public about one set of commitments that a requester needs again on every fetch.
#[derive(Debug, Clone)]
pub struct ShareChecker {
    commitments: Commitments,
    points: Vec<RistrettoPoint>,
    public_shares: BTreeMap<ShareIndex, RistrettoPoint>,
    /// Lagrange weights at zero for the last set of indices combined.
    weights: Option<(Vec<ShareIndex>, Vec<Scalar>)>,
}

impl ShareChecker {
    /// Decodes the commitments once; fails when one is not a group element or there are fewer
    /// than [`MIN_THRESHOLD`].
    pub fn new(commitments: &Commitments) -> Result<Self, SharingError> {
        let need = commitments.threshold();
        if need < usize::from(MIN_THRESHOLD) {
            return Err(SharingError::InvalidParameters { n: need, k: need });
        }
        let points = commitments.points()?.into_iter().map(|p| p.0).collect();
        Ok(Self {
            commitments: commitments.clone(),
            points,
            public_shares: BTreeMap::new(),
            weights: None,
        })
    }

    /// The commitments this checker was made for.
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }

    /// Shares needed to rebuild the secret.
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// `Pₓ = Σⱼ Cⱼ·xʲ`, computed on first use by Horner's rule, `P = (…(C_{k−1}·x + C_{k−2})·x …) + C₀`,
    /// each step a multiplication by the 8-bit index (public values only, so variable time is
    /// fine): about 8 doublings per commitment instead of a full-width multiscalar product.
    fn public_share(&mut self, index: ShareIndex) -> RistrettoPoint {
        let points = &self.points;
        *self.public_shares.entry(index).or_insert_with(|| {
            let mut acc = RistrettoPoint::identity();
            for c in points.iter().rev() {
                acc = times_small(&acc, index) + c;
            }
            acc
        })
    }

    /// Computes the public shares of `indices` ahead of time (e.g. while requests are in flight).
    pub fn prepare(&mut self, indices: impl IntoIterator<Item = ShareIndex>) {
        for index in indices {
            if index != 0 {
                self.public_share(index);
            }
        }
    }

    /// Checks one share: `G·s == Pₓ`, the secret side with the constant-time base multiplication
    /// and a constant-time comparison.
    pub fn verify(&mut self, share: UnverifiedShare) -> Result<VerifiedShare, SharingError> {
        let index = share.index;
        if index == 0 {
            return Err(SharingError::ZeroIndex);
        }
        let scalar: Option<Scalar> = Scalar::from_canonical_bytes(share.value).into();
        let scalar = Zeroizing::new(scalar.ok_or(SharingError::NonCanonical { index })?);
        let expected = self.public_share(index);
        if !bool::from(RistrettoPoint::mul_base(&scalar).ct_eq(&expected)) {
            return Err(SharingError::ShareMismatch { index });
        }
        Ok(VerifiedShare {
            index,
            scalar: *scalar,
        })
    }

    /// Rebuilds the secret from the first `threshold` distinct shares and checks `G·s = C₀`.
    pub fn combine(&mut self, shares: &[VerifiedShare]) -> Result<SessionSecret, SharingError> {
        let need = self.threshold();
        let chosen = super::first_distinct(shares, need)?;
        let indices: Vec<ShareIndex> = chosen.iter().map(|s| s.index).collect();
        let weights = match &self.weights {
            Some((seen, weights)) if *seen == indices => weights,
            _ => {
                let weights = super::lagrange_at_zero(&indices);
                &self.weights.insert((indices, weights)).1
            }
        };
        let mut secret = SessionSecret(Scalar::ZERO);
        for (share, weight) in chosen.iter().zip(weights) {
            secret.0 += share.scalar * weight;
        }
        let c0 = self
            .points
            .first()
            .ok_or(SharingError::NotEnoughShares { have: 0, need })?;
        if !bool::from(RistrettoPoint::mul_base(&secret.0).ct_eq(c0)) {
            return Err(SharingError::SecretMismatch);
        }
        Ok(secret)
    }
}

/// `p·x` for a small public `x`, by double-and-add from the top bit.
fn times_small(p: &RistrettoPoint, x: ShareIndex) -> RistrettoPoint {
    let mut acc = RistrettoPoint::identity();
    for bit in (0..8).rev() {
        acc = acc + acc;
        if (x >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{CommitmentBytes, combine, split};
    use super::*;
    use crate::ids::SessionId;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn dealt(n: u8, k: usize) -> (Vec<VerifiedShare>, Commitments, SessionSecret) {
        let mut rng = ChaCha20Rng::from_seed([21; 32]);
        let secret = SessionSecret::derive(&[4; 32], &[5; 32], &SessionId([6; 16])).unwrap();
        let indices: Vec<u8> = (1..=n).collect();
        let (shares, commitments) = split(&secret, &indices, k, &mut rng).unwrap();
        (shares, commitments, secret)
    }

    fn raw(s: &VerifiedShare) -> UnverifiedShare {
        UnverifiedShare::new(s.index(), s.value_bytes())
    }

    #[test]
    fn small_multiples_match_full_scalar_multiplication() {
        let p = RistrettoPoint::mul_base(&Scalar::from(987_654_321u64));
        for x in [0u8, 1, 2, 3, 127, 128, 200, 255] {
            assert_eq!(times_small(&p, x), p * Scalar::from(u64::from(x)));
        }
    }

    #[test]
    fn every_genuine_share_verifies_and_any_k_rebuild_the_secret() {
        let (shares, commitments, secret) = dealt(7, 4);
        let mut checker = ShareChecker::new(&commitments).unwrap();
        let verified: Vec<VerifiedShare> = shares
            .iter()
            .map(|s| checker.verify(raw(s)).unwrap())
            .collect();
        for start in 0..4 {
            let rebuilt = checker.combine(&verified[start..start + 4]).unwrap();
            assert_eq!(rebuilt.0, secret.0);
            // The same set again uses the kept weights and gives the same answer.
            assert_eq!(
                checker.combine(&verified[start..start + 4]).unwrap().0,
                secret.0
            );
        }
    }

    #[test]
    fn agrees_with_the_single_share_check_on_every_flipped_bit_position() {
        let (shares, commitments, _) = dealt(5, 3);
        let mut checker = ShareChecker::new(&commitments).unwrap();
        for (i, share) in shares.iter().enumerate() {
            let mut bytes = share.value_bytes();
            bytes[i * 5 % 31] ^= 1 << (i % 8);
            let single = UnverifiedShare::new(share.index(), bytes).verify(&commitments);
            let here = checker.verify(UnverifiedShare::new(share.index(), bytes));
            assert_eq!(single.is_ok(), here.is_ok());
            assert_eq!(
                here.unwrap_err(),
                SharingError::ShareMismatch {
                    index: share.index()
                }
            );
        }
    }

    #[test]
    fn a_genuine_share_under_another_index_or_index_zero_is_refused() {
        let (shares, commitments, _) = dealt(5, 3);
        let mut checker = ShareChecker::new(&commitments).unwrap();
        assert_eq!(
            checker
                .verify(UnverifiedShare::new(4, shares[1].value_bytes()))
                .unwrap_err(),
            SharingError::ShareMismatch { index: 4 }
        );
        assert_eq!(
            checker
                .verify(UnverifiedShare::new(0, [0; 32]))
                .unwrap_err(),
            SharingError::ZeroIndex
        );
        assert_eq!(
            checker
                .verify(UnverifiedShare::new(3, [0xff; 32]))
                .unwrap_err(),
            SharingError::NonCanonical { index: 3 }
        );
    }

    #[test]
    fn combine_matches_the_stateless_combine_and_refuses_too_few() {
        let (shares, commitments, _) = dealt(6, 3);
        let mut checker = ShareChecker::new(&commitments).unwrap();
        let from_checker = checker.combine(&shares[2..5]).unwrap();
        let stateless = combine(&shares[2..5], &commitments).unwrap();
        assert_eq!(from_checker.0, stateless.0);
        assert!(matches!(
            checker.combine(&[shares[0].clone(), shares[0].clone(), shares[1].clone()]),
            Err(SharingError::NotEnoughShares { have: 2, need: 3 })
        ));
    }

    #[test]
    fn shares_of_other_commitments_do_not_combine_to_their_c0() {
        let (shares, commitments, _) = dealt(5, 3);
        let (_, other, _) = {
            let mut rng = ChaCha20Rng::from_seed([22; 32]);
            let secret = SessionSecret::derive(&[7; 32], &[8; 32], &SessionId([9; 16])).unwrap();
            let (s, c) = split(&secret, &[1, 2, 3, 4, 5], 3, &mut rng).unwrap();
            (s, c, secret)
        };
        let mut mixed = commitments.clone();
        mixed.0[0] = other.0[0];
        let mut checker = ShareChecker::new(&mixed).unwrap();
        assert_eq!(
            checker.combine(&shares[..3]).unwrap_err(),
            SharingError::SecretMismatch
        );
    }

    #[test]
    fn undecodable_or_too_few_commitments_are_refused() {
        let (_, mut commitments, _) = dealt(5, 3);
        commitments.0[1] = CommitmentBytes([0xff; 32]);
        assert_eq!(
            ShareChecker::new(&commitments).unwrap_err(),
            SharingError::BadCommitment { position: 1 }
        );
        commitments.0.truncate(1);
        assert!(matches!(
            ShareChecker::new(&commitments),
            Err(SharingError::InvalidParameters { .. })
        ));
    }
}
