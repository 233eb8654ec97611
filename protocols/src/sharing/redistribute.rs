//! Verifiable redistribution of a Feldman sharing from one quorum to another without
//! rebuilding the secret (Desmedt–Jajodia with Wong–Wang–Wing's checks;
//! docs/protocol/redistribution.md, "Rotation by redistribution"):
//!
//! 1. each old holder sub-deals its own share onto the new indices ([`sub_deal`]);
//! 2. anyone checks a sub-dealing is of the right share, from the old commitments alone
//!    ([`check_dealing`]: `D_i0 == P_i`);
//! 3. each new holder checks its sub-share against the dealer's commitments
//!    ([`UnverifiedShare::verify`]);
//! 4. with a qualified set of k old indices fixed, the new commitments follow publicly
//!    ([`combined_commitments`], which checks the secret is unchanged) and each new holder
//!    combines its sub-shares with Lagrange weights ([`combine_sub_shares`]).

use super::{
    CommitmentBytes, Commitments, SharingError, UnverifiedShare, VerifiedShare, lagrange_at_zero,
    split,
};
use crate::ids::ShareIndex;
use crate::keys::SessionSecret;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// One old holder's sub-sharing of its share: public commitments and one sub-share per new
/// index (to be boxed to each new holder, then wiped).
pub struct SubDealing {
    /// The dealer's old index.
    pub dealer: ShareIndex,
    /// Feldman commitments of the dealer's polynomial; commitment 0 is its public share.
    pub commitments: Commitments,
    /// The sub-shares, indexed by the new holders' indices.
    pub sub_shares: Vec<VerifiedShare>,
}

/// Sub-deals `share` k'-of-n' onto `new_indices` with a fresh polynomial whose constant term is
/// the share itself.
pub fn sub_deal<R: rand_core::CryptoRng + ?Sized>(
    share: &VerifiedShare,
    new_indices: &[ShareIndex],
    new_threshold: usize,
    rng: &mut R,
) -> Result<SubDealing, SharingError> {
    let constant = SessionSecret(share.scalar);
    let (sub_shares, commitments) = split(&constant, new_indices, new_threshold, rng)?;
    Ok(SubDealing {
        dealer: share.index,
        commitments,
        sub_shares,
    })
}

fn point(c: &CommitmentBytes, position: usize) -> Result<RistrettoPoint, SharingError> {
    CompressedRistretto(c.0)
        .decompress()
        .ok_or(SharingError::BadCommitment { position })
}

/// The public share `P_x = Σ_l x^l · C_l` of index `x` under `commitments`.
pub fn public_share(
    commitments: &Commitments,
    index: ShareIndex,
) -> Result<RistrettoPoint, SharingError> {
    if index == 0 {
        return Err(SharingError::ZeroIndex);
    }
    let x = Scalar::from(u64::from(index));
    // Horner, from the highest coefficient down.
    let mut acc = RistrettoPoint::default();
    for (position, c) in commitments.0.iter().enumerate().rev() {
        acc = acc * x + point(c, position)?;
    }
    Ok(acc)
}

/// Checks that a sub-dealing by old index `dealer` is of the dealer's share: its commitment 0
/// equals the dealer's public share under the old commitments. A dealing that fails names its
/// dealer.
pub fn check_dealing(
    old: &Commitments,
    dealer: ShareIndex,
    dealing: &Commitments,
) -> Result<(), SharingError> {
    let expected = public_share(old, dealer)?.compress();
    let found = dealing
        .0
        .first()
        .ok_or(SharingError::ShareMismatch { index: dealer })?;
    if !bool::from(expected.as_bytes().ct_eq(&found.0)) {
        return Err(SharingError::ShareMismatch { index: dealer });
    }
    Ok(())
}

/// Distinct, non-zero dealer indices, at least `need` of them: the qualified set.
fn qualified(dealers: &[ShareIndex], need: usize) -> Result<(), SharingError> {
    let mut seen = BTreeSet::new();
    for &d in dealers {
        if d == 0 {
            return Err(SharingError::ZeroIndex);
        }
        if !seen.insert(d) {
            return Err(SharingError::DuplicateIndex { index: d });
        }
    }
    if seen.len() != need {
        return Err(SharingError::NotEnoughShares {
            have: seen.len(),
            need,
        });
    }
    Ok(())
}

/// The new epoch's commitments from the qualified dealers' `(old index, commitments)`:
/// `C'_l = Σ_i λ_i · D_il`. Exactly the old threshold of dealers, each checked with
/// [`check_dealing`] beforehand; the result is refused unless `C'_0` equals the old `C_0` (the
/// secret is unchanged).
pub fn combined_commitments(
    old: &Commitments,
    dealings: &[(ShareIndex, &Commitments)],
) -> Result<Commitments, SharingError> {
    let dealers: Vec<ShareIndex> = dealings.iter().map(|(d, _)| *d).collect();
    qualified(&dealers, old.threshold())?;
    let degree = dealings
        .first()
        .map(|(_, c)| c.threshold())
        .ok_or(SharingError::NotEnoughShares { have: 0, need: 1 })?;
    if dealings.iter().any(|(_, c)| c.threshold() != degree) {
        return Err(SharingError::InvalidParameters {
            n: dealings.len(),
            k: degree,
        });
    }
    let weights = lagrange_at_zero(&dealers);
    let mut combined = vec![RistrettoPoint::default(); degree];
    for ((_, commitments), weight) in dealings.iter().zip(&weights) {
        for (position, (acc, c)) in combined.iter_mut().zip(&commitments.0).enumerate() {
            *acc += point(c, position)? * weight;
        }
    }
    let out = Commitments(
        combined
            .iter()
            .map(|p| CommitmentBytes(p.compress().to_bytes()))
            .collect(),
    );
    match (out.0.first(), old.0.first()) {
        (Some(new), Some(was)) if bool::from(new.0.ct_eq(&was.0)) => Ok(out),
        _ => Err(SharingError::SecretMismatch),
    }
}

/// A new holder's share from its sub-shares `(old dealer index, sub-share)` of the qualified
/// dealers (each verified against its dealer's commitments), checked against the new
/// commitments.
pub fn combine_sub_shares(
    sub_shares: &[(ShareIndex, VerifiedShare)],
    new_commitments: &Commitments,
) -> Result<VerifiedShare, SharingError> {
    let dealers: Vec<ShareIndex> = sub_shares.iter().map(|(d, _)| *d).collect();
    qualified(&dealers, dealers.len().max(1))?;
    let index = sub_shares
        .first()
        .map(|(_, s)| s.index)
        .ok_or(SharingError::NotEnoughShares { have: 0, need: 1 })?;
    if sub_shares.iter().any(|(_, s)| s.index != index) {
        return Err(SharingError::ShareMismatch { index });
    }
    let mut value = Scalar::ZERO;
    for ((_, s), weight) in sub_shares.iter().zip(lagrange_at_zero(&dealers)) {
        value += s.scalar * weight;
    }
    let share = UnverifiedShare::new(index, value.to_bytes());
    value.zeroize();
    share.verify(new_commitments)
}

#[cfg(test)]
#[path = "redistribute_tests.rs"]
mod tests;
