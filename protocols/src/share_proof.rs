//! A holder's proof that it still has its share, without showing it (docs/protocol/
//! holder-audits.md): Schnorr's proof of knowledge of `s_i = log_G(P_i)` over ristretto255,
//! made non-interactive with SHA-512 over the coordinator's fresh challenge and the share's
//! slot. The coordinator computes `P_i` from the epoch's commitments itself, so a proof that
//! checks says the holder has the share the commitments promise, and nothing more.

use crate::ids::{Epoch, SessionId, ShareIndex};
use crate::sharing::redistribute::public_share;
use crate::sharing::{Commitments, SharingError};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use thiserror::Error;
use zeroize::Zeroizing;

const LABEL: &[u8] = b"entroshard/share-proof/1";

/// What a proof is about: one share slot and the coordinator's challenge for this asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofContext {
    /// The session.
    pub session: SessionId,
    /// The epoch.
    pub epoch: Epoch,
    /// The share's index.
    pub index: ShareIndex,
    /// The coordinator's fresh random challenge.
    pub challenge: [u8; 32],
}

/// A Schnorr proof `(c, z)`: `c` the Fiat–Shamir challenge, `z = w + c·s_i`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ShareProof {
    /// `c`, a canonical scalar.
    #[serde(with = "serde_bytes")]
    pub c: [u8; 32],
    /// `z`, a canonical scalar.
    #[serde(with = "serde_bytes")]
    pub z: [u8; 32],
}

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The commitments do not give a public share for this index.
    #[error("no public share for this index: {0}")]
    Commitments(#[from] SharingError),
    /// The proof is not of the share the commitments promise (or its scalars are malformed).
    #[error("the proof does not check against the share's public point")]
    DoesNotCheck,
}

fn hash_challenge(ctx: &ProofContext, public: &RistrettoPoint, r: &RistrettoPoint) -> Scalar {
    let mut h = Sha512::new();
    h.update(LABEL);
    h.update(G.compress().as_bytes());
    h.update(ctx.session.0);
    h.update(ctx.epoch.to_be_bytes());
    h.update([ctx.index]);
    h.update(ctx.challenge);
    h.update(public.compress().as_bytes());
    h.update(r.compress().as_bytes());
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Proves knowledge of `share` (32 bytes, as stored) for `ctx`. The share is not checked
/// against any commitments here: a holder proves what it has, and the verifier judges. `None`
/// when the bytes are not a canonical scalar (no share at all).
pub fn prove<R: rand_core::CryptoRng + ?Sized>(
    ctx: &ProofContext,
    share: &[u8; 32],
    rng: &mut R,
) -> Option<ShareProof> {
    let s = Zeroizing::new(Option::<Scalar>::from(Scalar::from_canonical_bytes(
        *share,
    ))?);
    let public = *s * G;
    let w = Zeroizing::new(Scalar::random(rng));
    let r = *w * G;
    let c = hash_challenge(ctx, &public, &r);
    let z = *w + c * *s;
    Some(ShareProof {
        c: c.to_bytes(),
        z: z.to_bytes(),
    })
}

/// The public share `P_i` of `index` under `commitments`, compressed: what a verifier keeps to
/// check a proof once the commitments are gone (a superseded epoch).
pub fn public_share_bytes(
    commitments: &Commitments,
    index: ShareIndex,
) -> Result<[u8; 32], ProofError> {
    Ok(public_share(commitments, index)?.compress().to_bytes())
}

/// Checks `proof` for `ctx` against the public share of `ctx.index` under `commitments`.
pub fn verify(
    ctx: &ProofContext,
    commitments: &Commitments,
    proof: &ShareProof,
) -> Result<(), ProofError> {
    let public = public_share(commitments, ctx.index)?;
    check(ctx, &public, proof)
}

/// Checks `proof` for `ctx` against a public share `P_i` the verifier kept
/// ([`public_share_bytes`]).
pub fn verify_public(
    ctx: &ProofContext,
    public: &[u8; 32],
    proof: &ShareProof,
) -> Result<(), ProofError> {
    let public = CompressedRistretto(*public)
        .decompress()
        .ok_or(ProofError::DoesNotCheck)?;
    check(ctx, &public, proof)
}

fn check(
    ctx: &ProofContext,
    public: &RistrettoPoint,
    proof: &ShareProof,
) -> Result<(), ProofError> {
    let scalar = |b: [u8; 32]| {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(b)).ok_or(ProofError::DoesNotCheck)
    };
    let (c, z) = (scalar(proof.c)?, scalar(proof.z)?);
    let r = z * G - c * public;
    if hash_challenge(ctx, public, &r) == c {
        Ok(())
    } else {
        Err(ProofError::DoesNotCheck)
    }
}

#[cfg(test)]
#[path = "share_proof_tests.rs"]
mod tests;
