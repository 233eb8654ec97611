//! Checking several shares against the commitments at once: one random linear combination
//! `G·Σ rᵢsᵢ = Σⱼ Cⱼ·(Σᵢ rᵢxᵢʲ)` instead of one Feldman check per share. When the combined check
//! fails, every share is checked on its own so the bad ones are named (docs/decisions/0006).

use super::{Commitments, SharingError, UnverifiedShare, VerifiedShare};
use crate::ids::ShareIndex;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Checks every share against `commitments`; the answers come back in the order of `shares`.
///
/// Shares with index 0, non-canonical bytes or an index already seen fail on their own. The rest
/// are checked together with fresh 128-bit weights from `rng` (a bad share passes with
/// probability 2⁻¹²⁸); if that fails, each is checked alone to name the culprits.
pub fn verify_all<R: rand_core::CryptoRng + ?Sized>(
    shares: Vec<UnverifiedShare>,
    commitments: &Commitments,
    rng: &mut R,
) -> Vec<Result<VerifiedShare, SharingError>> {
    let points = match commitments.points() {
        Ok(p) => p,
        Err(e) => return shares.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut seen = BTreeSet::new();
    let parsed: Vec<Result<(ShareIndex, Scalar), SharingError>> = shares
        .iter()
        .map(|s| {
            let index = s.index;
            if index == 0 {
                return Err(SharingError::ZeroIndex);
            }
            let scalar: Option<Scalar> = Scalar::from_canonical_bytes(s.value).into();
            let scalar = scalar.ok_or(SharingError::NonCanonical { index })?;
            if !seen.insert(index) {
                return Err(SharingError::DuplicateIndex { index });
            }
            Ok((index, scalar))
        })
        .collect();
    let candidates: Vec<(ShareIndex, Scalar)> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .copied()
        .collect();
    let batch_holds = candidates.is_empty()
        || combined_check(
            &candidates,
            &points.iter().map(|p| p.0).collect::<Vec<_>>(),
            rng,
        );
    let mut out = Vec::with_capacity(shares.len());
    for (share, parsed) in shares.into_iter().zip(parsed) {
        out.push(match parsed {
            Err(e) => Err(e),
            Ok((index, scalar)) if batch_holds => Ok(VerifiedShare { index, scalar }),
            Ok(_) => share.verify(commitments),
        });
    }
    out
}

/// `G·Σ rᵢsᵢ == Σⱼ Cⱼ·(Σᵢ rᵢ·xᵢʲ)` with random 128-bit `rᵢ`. The left side involves the secret
/// shares and uses the constant-time base multiplication; the right side only public values.
fn combined_check<R: rand_core::CryptoRng + ?Sized>(
    shares: &[(ShareIndex, Scalar)],
    commitments: &[RistrettoPoint],
    rng: &mut R,
) -> bool {
    let mut weighted_sum = Zeroizing::new(Scalar::ZERO);
    let mut coefficients = vec![Scalar::ZERO; commitments.len()];
    for (index, value) in shares {
        let mut wide = [0u8; 32];
        rng.fill_bytes(&mut wide[..16]);
        let weight = Scalar::from_bytes_mod_order(wide);
        *weighted_sum += weight * value;
        let x = Scalar::from(u64::from(*index));
        let mut power = weight;
        for c in coefficients.iter_mut() {
            *c += power;
            power *= x;
        }
    }
    let left = RistrettoPoint::mul_base(&weighted_sum);
    let right = RistrettoPoint::vartime_multiscalar_mul(&coefficients, commitments);
    bool::from(
        left.compress()
            .as_bytes()
            .ct_eq(right.compress().as_bytes()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{CommitmentBytes, split};
    use super::*;
    use crate::ids::SessionId;
    use crate::keys::SessionSecret;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn dealt(n: u8, k: usize) -> (Vec<VerifiedShare>, Commitments) {
        let mut rng = ChaCha20Rng::from_seed([11; 32]);
        let secret = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap();
        let indices: Vec<u8> = (1..=n).collect();
        split(&secret, &indices, k, &mut rng).unwrap()
    }

    fn raw(s: &VerifiedShare) -> UnverifiedShare {
        UnverifiedShare::new(s.index(), s.value_bytes())
    }

    #[test]
    fn genuine_shares_all_verify_together() {
        let (shares, c) = dealt(16, 11);
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let out = verify_all(shares.iter().map(raw).collect(), &c, &mut rng);
        assert_eq!(out.len(), 16);
        for (got, want) in out.iter().zip(&shares) {
            assert_eq!(got.as_ref().unwrap().value_bytes(), want.value_bytes());
        }
    }

    #[test]
    fn a_tampered_share_fails_the_batch_and_is_named_alone() {
        let (shares, c) = dealt(5, 3);
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut input: Vec<UnverifiedShare> = shares.iter().take(3).map(raw).collect();
        let mut bytes = shares[1].value_bytes();
        bytes[0] ^= 1;
        input[1] = UnverifiedShare::new(2, bytes);
        let out = verify_all(input, &c, &mut rng);
        assert!(out[0].is_ok());
        assert_eq!(
            out[1].as_ref().unwrap_err(),
            &SharingError::ShareMismatch { index: 2 }
        );
        assert!(out[2].is_ok());
    }

    #[test]
    fn a_genuine_share_under_another_index_is_rejected() {
        let (shares, c) = dealt(5, 3);
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let input = vec![
            raw(&shares[0]),
            UnverifiedShare::new(4, shares[1].value_bytes()),
        ];
        let out = verify_all(input, &c, &mut rng);
        assert!(out[0].is_ok());
        assert_eq!(
            out[1].as_ref().unwrap_err(),
            &SharingError::ShareMismatch { index: 4 }
        );
    }

    #[test]
    fn structural_faults_are_named_without_spoiling_the_rest() {
        let (shares, c) = dealt(5, 3);
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let input = vec![
            UnverifiedShare::new(0, [0; 32]),
            raw(&shares[0]),
            raw(&shares[0]),
            UnverifiedShare::new(3, [0xff; 32]),
            raw(&shares[2]),
        ];
        let out = verify_all(input, &c, &mut rng);
        assert_eq!(out[0].as_ref().unwrap_err(), &SharingError::ZeroIndex);
        assert!(out[1].is_ok());
        assert_eq!(
            out[2].as_ref().unwrap_err(),
            &SharingError::DuplicateIndex { index: 1 }
        );
        assert_eq!(
            out[3].as_ref().unwrap_err(),
            &SharingError::NonCanonical { index: 3 }
        );
        assert!(out[4].is_ok());
    }

    #[test]
    fn bad_commitments_fail_every_share() {
        let (shares, mut c) = dealt(5, 3);
        c.0[2] = CommitmentBytes([0xff; 32]);
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let out = verify_all(shares.iter().map(raw).collect(), &c, &mut rng);
        assert!(
            out.iter()
                .all(|r| r.as_ref().unwrap_err() == &SharingError::BadCommitment { position: 2 })
        );
    }

    #[test]
    fn batch_and_single_checks_agree_on_every_share() {
        let (shares, c) = dealt(7, 4);
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        for flip in 0..7 {
            let input: Vec<UnverifiedShare> = shares
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut b = s.value_bytes();
                    if i == flip {
                        b[5] ^= 0x10;
                    }
                    UnverifiedShare::new(s.index(), b)
                })
                .collect();
            let singles: Vec<bool> = input
                .iter()
                .map(|s| UnverifiedShare::new(s.index, s.value).verify(&c).is_ok())
                .collect();
            let batch: Vec<bool> = verify_all(input, &c, &mut rng)
                .iter()
                .map(Result::is_ok)
                .collect();
            assert_eq!(batch, singles);
            assert_eq!(batch.iter().filter(|ok| !**ok).count(), 1);
        }
    }
}
