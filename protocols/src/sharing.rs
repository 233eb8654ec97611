//! Feldman verifiable secret sharing over ristretto255 (vsss-rs), with the guards vsss-rs leaves to us.

use crate::ids::ShareIndex;
use crate::keys::SessionSecret;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;
use thiserror::Error;
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ParticipantIdGenerator, ValueGroup,
    VecFeldmanVerifierSet, feldman,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

mod checker;
pub mod redistribute;
pub use checker::ShareChecker;

type Field = IdentifierPrimeField<Scalar>;
type VsssShare = DefaultShare<Field, Field>;
type Verifier = ValueGroup<RistrettoPoint>;

/// Smallest threshold we accept.
pub const MIN_THRESHOLD: u8 = 2;

/// Public Feldman commitments `C_j = G·a_j`, compressed; `C_0 = G·secret`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Commitments(pub Vec<CommitmentBytes>);

/// One compressed ristretto255 point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct CommitmentBytes(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl Commitments {
    /// The threshold these commitments were made for (degree + 1).
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    fn points(&self) -> Result<Vec<Verifier>, SharingError> {
        self.0
            .iter()
            .enumerate()
            .map(|(position, c)| {
                CompressedRistretto(c.0)
                    .decompress()
                    .map(ValueGroup)
                    .ok_or(SharingError::BadCommitment { position })
            })
            .collect()
    }
}

/// What went wrong while splitting, verifying or combining. Names the share where one is at fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharingError {
    /// Parameters outside 2 ≤ k ≤ n ≤ 255.
    #[error("invalid sharing parameters n = {n}, k = {k} (need 2 ≤ k ≤ n ≤ 255)")]
    InvalidParameters {
        /// Shares requested.
        n: usize,
        /// Threshold requested.
        k: usize,
    },
    /// A share index of 0 (it would be the secret) was given.
    #[error("share index 0 is refused")]
    ZeroIndex,
    /// The same index appeared twice.
    #[error("share index {index} appears twice")]
    DuplicateIndex {
        /// The repeated index.
        index: ShareIndex,
    },
    /// A share does not match the commitments.
    #[error("share {index} does not match the commitments")]
    ShareMismatch {
        /// The failing share's index.
        index: ShareIndex,
    },
    /// A share's bytes are not a canonical scalar.
    #[error("share {index} is not a canonical scalar")]
    NonCanonical {
        /// The failing share's index.
        index: ShareIndex,
    },
    /// A commitment does not decode to a group element.
    #[error("commitment {position} is not a valid ristretto255 point")]
    BadCommitment {
        /// Position in the commitment list.
        position: usize,
    },
    /// Fewer distinct verified shares than the threshold.
    #[error("only {have} distinct shares, {need} needed")]
    NotEnoughShares {
        /// Distinct shares available.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// The combined secret does not match commitment 0.
    #[error("combined secret does not match commitment 0")]
    SecretMismatch,
    /// vsss-rs refused the operation.
    #[error("secret sharing library error: {0}")]
    Library(String),
}

/// A share fresh from the dealer or from a holder: not yet checked.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct UnverifiedShare {
    #[zeroize(skip)]
    index: ShareIndex,
    value: [u8; 32],
}

impl UnverifiedShare {
    /// Wraps a share's index and value bytes.
    pub fn new(index: ShareIndex, value: [u8; 32]) -> Self {
        Self { index, value }
    }

    /// The share's x-coordinate.
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// Checks the share against the commitments; the only way to get a [`VerifiedShare`].
    pub fn verify(self, commitments: &Commitments) -> Result<VerifiedShare, SharingError> {
        let index = self.index;
        if index == 0 {
            return Err(SharingError::ZeroIndex);
        }
        let scalar: Option<Scalar> = Scalar::from_canonical_bytes(self.value).into();
        let scalar = scalar.ok_or(SharingError::NonCanonical { index })?;
        let points = commitments.points()?;
        let mut verifiers = Vec::with_capacity(points.len() + 1);
        verifiers.push(ValueGroup(RISTRETTO_BASEPOINT_POINT));
        verifiers.extend(points);
        let set = VecFeldmanVerifierSet::<VsssShare, Verifier>::from(verifiers);
        let share = VsssShare {
            identifier: IdentifierPrimeField(Scalar::from(u64::from(index))),
            value: IdentifierPrimeField(scalar),
        };
        set.verify_share(&share)
            .map_err(|_| SharingError::ShareMismatch { index })?;
        Ok(VerifiedShare { index, scalar })
    }
}

impl std::fmt::Debug for UnverifiedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnverifiedShare({}, [redacted])", self.index)
    }
}

/// A share that matched the session's commitments.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct VerifiedShare {
    #[zeroize(skip)]
    index: ShareIndex,
    scalar: Scalar,
}

impl VerifiedShare {
    /// The share's x-coordinate.
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The share value's bytes, for sealing. Never log them.
    pub fn value_bytes(&self) -> [u8; 32] {
        self.scalar.to_bytes()
    }
}

impl std::fmt::Debug for VerifiedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifiedShare({}, [redacted])", self.index)
    }
}

/// Checks 2 ≤ k ≤ n ≤ 255.
pub fn check_parameters(n: usize, k: usize) -> Result<(), SharingError> {
    if k < usize::from(MIN_THRESHOLD) || k > n || n > 255 {
        return Err(SharingError::InvalidParameters { n, k });
    }
    Ok(())
}

/// Splits `secret` k-of-n onto the given distinct non-zero indices with a fresh random polynomial.
pub fn split<R: rand_core::CryptoRng + ?Sized>(
    secret: &SessionSecret,
    indices: &[ShareIndex],
    k: usize,
    rng: &mut R,
) -> Result<(Vec<VerifiedShare>, Commitments), SharingError> {
    let n = indices.len();
    check_parameters(n, k)?;
    let mut seen = BTreeSet::new();
    for &index in indices {
        if index == 0 {
            return Err(SharingError::ZeroIndex);
        }
        if !seen.insert(index) {
            return Err(SharingError::DuplicateIndex { index });
        }
    }
    let ids: Vec<Field> = indices
        .iter()
        .map(|&i| IdentifierPrimeField(Scalar::from(u64::from(i))))
        .collect();
    let generators = [ParticipantIdGenerator::List { list: &ids }];
    let (shares, verifiers) =
        feldman::split_secret_with_participant_generators::<VsssShare, Verifier>(
            k,
            n,
            &IdentifierPrimeField(secret.0),
            None,
            RngAdapter(rng),
            &generators,
        )
        .map_err(|e| SharingError::Library(format!("{e:?}")))?;
    let set = VecFeldmanVerifierSet::<VsssShare, Verifier>::from(verifiers);
    let commitments = Commitments(
        set.verifiers()
            .iter()
            .map(|v| CommitmentBytes(v.0.compress().to_bytes()))
            .collect(),
    );
    let out = indices
        .iter()
        .zip(shares.iter())
        .map(|(&index, s)| VerifiedShare {
            index,
            scalar: s.value.0,
        })
        .collect();
    Ok((out, commitments))
}

/// Combines at least `commitments.threshold()` distinct verified shares and checks `G·s = C_0`.
///
/// Lagrange interpolation at zero with one batched inversion (Montgomery's trick) instead of one
/// inversion per share; property-tested against vsss-rs's own combine (docs/decisions/0006).
pub fn combine(
    shares: &[VerifiedShare],
    commitments: &Commitments,
) -> Result<SessionSecret, SharingError> {
    let need = commitments.threshold();
    if need < usize::from(MIN_THRESHOLD) {
        return Err(SharingError::InvalidParameters { n: need, k: need });
    }
    let chosen = first_distinct(shares, need)?;
    let indices: Vec<ShareIndex> = chosen.iter().map(|s| s.index).collect();
    let mut secret = SessionSecret(Scalar::ZERO);
    for (share, weight) in chosen.iter().zip(lagrange_at_zero(&indices)) {
        secret.0 += share.scalar * weight;
    }
    let c0 = commitments
        .0
        .first()
        .ok_or(SharingError::NotEnoughShares { have: 0, need })?;
    if !bool::from(secret.public_point().ct_eq(&c0.0)) {
        return Err(SharingError::SecretMismatch);
    }
    Ok(secret)
}

/// The first `need` shares with distinct non-zero indices, or how many there were.
fn first_distinct(
    shares: &[VerifiedShare],
    need: usize,
) -> Result<Vec<&VerifiedShare>, SharingError> {
    let mut seen = BTreeSet::new();
    let mut chosen: Vec<&VerifiedShare> = Vec::with_capacity(need);
    for share in shares {
        if chosen.len() == need {
            break;
        }
        if share.index == 0 || !seen.insert(share.index) {
            continue;
        }
        chosen.push(share);
    }
    if chosen.len() < need {
        return Err(SharingError::NotEnoughShares {
            have: chosen.len(),
            need,
        });
    }
    Ok(chosen)
}

/// Lagrange weights at zero `λᵢ = Πⱼ≠ᵢ xⱼ / (xⱼ − xᵢ)` for distinct non-zero indices, with one
/// batched inversion (Montgomery's trick); no denominator is zero for such indices.
fn lagrange_at_zero(indices: &[ShareIndex]) -> Vec<Scalar> {
    let xs: Vec<Scalar> = indices
        .iter()
        .map(|&i| Scalar::from(u64::from(i)))
        .collect();
    let mut numerators = vec![Scalar::ONE; xs.len()];
    let mut denominators = vec![Scalar::ONE; xs.len()];
    for (i, xi) in xs.iter().enumerate() {
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                numerators[i] *= xj;
                denominators[i] *= xj - xi;
            }
        }
    }
    Scalar::invert_batch_alloc(&mut denominators);
    numerators
        .iter()
        .zip(&denominators)
        .map(|(num, den_inv)| num * den_inv)
        .collect()
}

/// Lets any `rand_core::CryptoRng` (sized or not) feed vsss-rs, which takes its RNG by value.
struct RngAdapter<'a, R: ?Sized>(&'a mut R);

impl<R: rand_core::CryptoRng + ?Sized> rand_core::TryRng for RngAdapter<'_, R> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: rand_core::CryptoRng + ?Sized> rand_core::TryCryptoRng for RngAdapter<'_, R> {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use chacha20::ChaCha20Rng;
    use proptest::prelude::*;
    use rand_core::SeedableRng;
    use vsss_rs::ReadableShareSet;

    fn secret() -> SessionSecret {
        SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap()
    }

    fn unverified(s: &VerifiedShare) -> UnverifiedShare {
        UnverifiedShare::new(s.index(), s.value_bytes())
    }

    fn verified(shares: &[VerifiedShare], c: &Commitments) -> Vec<VerifiedShare> {
        shares
            .iter()
            .map(|s| unverified(s).verify(c).unwrap())
            .collect()
    }

    #[test]
    fn parameters_outside_two_to_255_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        assert!(matches!(
            split(&secret(), &[1], 1, &mut rng),
            Err(SharingError::InvalidParameters { n: 1, k: 1 })
        ));
        assert!(matches!(
            split(&secret(), &[1, 2], 3, &mut rng),
            Err(SharingError::InvalidParameters { n: 2, k: 3 })
        ));
        let many: Vec<u8> = (0..=255u8).collect();
        assert!(matches!(
            split(&secret(), &many, 3, &mut rng),
            Err(SharingError::InvalidParameters { n: 256, k: 3 })
        ));
        let all: Vec<u8> = (1..=255u8).collect();
        assert!(split(&secret(), &all, 255, &mut rng).is_ok());
    }

    #[test]
    fn index_zero_and_duplicate_indices_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        assert_eq!(
            split(&secret(), &[0, 1, 2], 2, &mut rng).unwrap_err(),
            SharingError::ZeroIndex
        );
        assert_eq!(
            split(&secret(), &[1, 2, 2], 2, &mut rng).unwrap_err(),
            SharingError::DuplicateIndex { index: 2 }
        );
        assert_eq!(
            UnverifiedShare::new(0, [0; 32])
                .verify(&Commitments(vec![CommitmentBytes([0; 32]); 2]))
                .unwrap_err(),
            SharingError::ZeroIndex
        );
    }

    #[test]
    fn tampered_share_is_rejected_and_named() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let (shares, c) = split(&secret(), &[1, 2, 3, 4, 5], 3, &mut rng).unwrap();
        let mut bytes = shares[2].value_bytes();
        bytes[0] ^= 1;
        let err = UnverifiedShare::new(3, bytes).verify(&c).unwrap_err();
        assert_eq!(err, SharingError::ShareMismatch { index: 3 });
        // A genuine share presented under another index is rejected too.
        let err = UnverifiedShare::new(4, shares[2].value_bytes())
            .verify(&c)
            .unwrap_err();
        assert_eq!(err, SharingError::ShareMismatch { index: 4 });
    }

    #[test]
    fn fewer_than_k_distinct_shares_never_combine() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let (shares, c) = split(&secret(), &[1, 2, 3, 4, 5], 3, &mut rng).unwrap();
        let v = verified(&shares, &c);
        let two = vec![v[0].clone(), v[1].clone(), v[1].clone(), v[0].clone()];
        assert_eq!(
            combine(&two, &c).unwrap_err(),
            SharingError::NotEnoughShares { have: 2, need: 3 }
        );
    }

    #[test]
    fn combined_secret_is_checked_against_commitment_zero() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let (shares, c) = split(&secret(), &[1, 2, 3], 2, &mut rng).unwrap();
        let v = verified(&shares, &c);
        let mut wrong = c.clone();
        wrong.0[0] = CommitmentBytes(
            (RISTRETTO_BASEPOINT_POINT * Scalar::from(7u64))
                .compress()
                .to_bytes(),
        );
        assert_eq!(
            combine(&v, &wrong).unwrap_err(),
            SharingError::SecretMismatch
        );
    }

    #[test]
    fn invalid_commitment_bytes_are_named_by_position() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let (shares, mut c) = split(&secret(), &[1, 2, 3], 2, &mut rng).unwrap();
        c.0[1] = CommitmentBytes([0xff; 32]);
        assert_eq!(
            unverified(&shares[0]).verify(&c).unwrap_err(),
            SharingError::BadCommitment { position: 1 }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_k_distinct_shares_rebuild_the_secret(n in 2usize..12, k_off in 0usize..10, seed in any::<[u8; 32]>(), pick_seed in any::<u64>()) {
            let k = 2 + k_off % (n - 1);
            let mut rng = ChaCha20Rng::from_seed(seed);
            let s = SessionSecret::derive(&seed, &[9; 32], &SessionId([1; 16])).unwrap();
            let indices: Vec<u8> = (1..=n as u8).map(|i| i.wrapping_mul(7).max(1)).collect::<BTreeSet<_>>().into_iter().collect();
            prop_assume!(indices.len() == n);
            let (shares, c) = split(&s, &indices, k, &mut rng).unwrap();
            prop_assert_eq!(c.threshold(), k);
            let mut v = verified(&shares, &c);
            // Rotate by a random amount so different subsets are used.
            v.rotate_left((pick_seed as usize) % n);
            let back = combine(&v[..k], &c).unwrap();
            prop_assert!(back == s);
            // The same secret as vsss-rs's own interpolation.
            let theirs: Vec<VsssShare> = v[..k]
                .iter()
                .map(|x| VsssShare {
                    identifier: IdentifierPrimeField(Scalar::from(u64::from(x.index))),
                    value: IdentifierPrimeField(x.scalar),
                })
                .collect();
            prop_assert!(theirs.combine().unwrap().0 == back.0);
            if k > 2 {
                prop_assert!(combine(&v[..k - 1], &c).is_err());
            }
        }
    }
}
