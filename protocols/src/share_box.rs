//! A 32-byte share boxed to one party's ristretto255 key (a holder's share key, or a requester's
//! key for one fetch), and the Chaum–Pedersen proof a party gives when it reveals what a box
//! held so that anyone can check a complaint (docs/protocol/redistribution.md, "Keys").
//!
//! `box_to(PK, context, m)`: ephemeral `r`, `E = r·G`, `Z = r·PK`; a ChaCha20-Poly1305 key and
//! nonce from HKDF-SHA256 over `Z` (salt `E ‖ PK`, info `LABEL ‖ context`); `context` is also
//! the associated data. Every box has its own ephemeral key, so key and nonce are never reused.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const LABEL: &[u8] = b"entroshard/seal/2";
const PROOF_LABEL: &[u8] = b"entroshard/dleq/1";
/// Sealed bytes of a box: 32 bytes of share and the 16-byte tag.
pub const BOXED_BYTES: usize = 32 + 16;

/// Why a box did not open, or a reveal did not check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BoxError {
    /// A public key or ephemeral point is not a valid, non-identity ristretto255 point.
    #[error("not a valid public point")]
    BadPoint,
    /// The box does not open under this key and context (wrong key, wrong context, tampered).
    #[error("box does not open")]
    DoesNotOpen,
    /// A revealed shared point does not come with a valid proof for this key and box.
    #[error("reveal proof does not check")]
    BadProof,
}

/// A party's secret box key and its public key (computed once: every open and reveal needs it,
/// and a base-point multiplication per share was a third of a fetch's box work). The secret is
/// wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BoxSecret {
    secret: Scalar,
    #[zeroize(skip)]
    public: BoxPublic,
}

/// A party's public box key: `secret·G`, compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct BoxPublic(#[serde(with = "serde_bytes")] pub [u8; 32]);

/// A boxed share: the ephemeral point and the sealed bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Boxed {
    /// `E = r·G`, compressed.
    #[serde(with = "serde_bytes")]
    pub ephemeral: [u8; 32],
    /// ChaCha20-Poly1305 output ([`BOXED_BYTES`]).
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// What a party reveals about one box it received: the shared point `Z = secret·E` and a proof
/// that it used the secret of its public key. With it anyone can open that box (and only it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Reveal {
    /// `Z`, compressed.
    #[serde(with = "serde_bytes")]
    pub shared: [u8; 32],
    /// Chaum–Pedersen challenge `c`.
    #[serde(with = "serde_bytes")]
    pub challenge: [u8; 32],
    /// Chaum–Pedersen response `s = w + c·secret`.
    #[serde(with = "serde_bytes")]
    pub response: [u8; 32],
}

impl BoxSecret {
    /// A fresh key from `rng` (the OS generator in the daemons).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::of(Scalar::random(rng))
    }

    fn of(secret: Scalar) -> Self {
        let public = BoxPublic((secret * G).compress().to_bytes());
        Self { secret, public }
    }

    /// A key from 64 uniformly random bytes, reduced mod q: for hosts that derive a device's
    /// keys from one seed (the simulator).
    pub fn from_uniform_bytes(bytes: &[u8; 64]) -> Self {
        Self::of(Scalar::from_bytes_mod_order_wide(bytes))
    }

    /// Restores a key from its 32 canonical bytes (`None`: not canonical, or zero).
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let scalar = Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))?;
        (scalar != Scalar::ZERO).then(|| Self::of(scalar))
    }

    /// The 32 secret bytes, for a 0600 file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> BoxPublic {
        self.public
    }
}

impl std::fmt::Debug for BoxSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxSecret([redacted])")
    }
}

fn point(bytes: &[u8; 32]) -> Result<RistrettoPoint, BoxError> {
    let p = CompressedRistretto(*bytes)
        .decompress()
        .ok_or(BoxError::BadPoint)?;
    if p.is_identity() {
        return Err(BoxError::BadPoint);
    }
    Ok(p)
}

/// Key and nonce of the box with ephemeral `e` to `pk`, from the shared point `z`.
fn cipher_of(
    z: &RistrettoPoint,
    e: &[u8; 32],
    pk: &[u8; 32],
    context: &[u8],
) -> (ChaCha20Poly1305, [u8; 12]) {
    let shared = Zeroizing::new(z.compress().to_bytes());
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(e);
    salt[32..].copy_from_slice(pk);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared.as_ref());
    let mut okm = Zeroizing::new([0u8; 44]);
    // 44 bytes is far below HKDF-SHA256's output limit.
    let _ = hk.expand_multi_info(&[LABEL, context], okm.as_mut());
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm[..32]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    (ChaCha20Poly1305::new(&(*key).into()), nonce)
}

/// Boxes `share` to `to`, bound to `context`.
pub fn box_to<R: rand_core::CryptoRng + ?Sized>(
    to: &BoxPublic,
    context: &[u8],
    share: &[u8; 32],
    rng: &mut R,
) -> Result<Boxed, BoxError> {
    box_with(to, context, share, &Zeroizing::new(Scalar::random(rng)))
}

/// [`box_to`] with the ephemeral scalar given (fixed only in the test vector).
fn box_with(
    to: &BoxPublic,
    context: &[u8],
    share: &[u8; 32],
    r: &Scalar,
) -> Result<Boxed, BoxError> {
    let pk = point(&to.0)?;
    let e = (r * G).compress().to_bytes();
    let z = r * pk;
    let (cipher, nonce) = cipher_of(&z, &e, &to.0, context);
    let sealed = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: share,
                aad: context,
            },
        )
        .map_err(|_| BoxError::DoesNotOpen)?;
    Ok(Boxed {
        ephemeral: e,
        sealed,
    })
}

fn open_with(
    z: &RistrettoPoint,
    to: &[u8; 32],
    context: &[u8],
    boxed: &Boxed,
) -> Result<Zeroizing<[u8; 32]>, BoxError> {
    let (cipher, nonce) = cipher_of(z, &boxed.ephemeral, to, context);
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &boxed.sealed,
                    aad: context,
                },
            )
            .map_err(|_| BoxError::DoesNotOpen)?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(BoxError::DoesNotOpen);
    }
    out.copy_from_slice(&plain);
    Ok(out)
}

impl BoxSecret {
    /// Opens a box sent to this key under `context`.
    pub fn open(&self, context: &[u8], boxed: &Boxed) -> Result<Zeroizing<[u8; 32]>, BoxError> {
        let e = point(&boxed.ephemeral)?;
        let z = self.secret * e;
        open_with(&z, &self.public.0, context, boxed)
    }

    /// Reveals the shared point of `boxed` with a proof that it is `secret·E` for this key, so
    /// that anyone can open that box ([`open_revealed`]) and check what it held.
    pub fn reveal<R: rand_core::CryptoRng + ?Sized>(
        &self,
        boxed: &Boxed,
        rng: &mut R,
    ) -> Result<Reveal, BoxError> {
        let e = point(&boxed.ephemeral)?;
        let pk = self.public;
        let z = (self.secret * e).compress().to_bytes();
        let w = Zeroizing::new(Scalar::random(rng));
        let a1 = (*w * G).compress().to_bytes();
        let a2 = (*w * e).compress().to_bytes();
        let c = challenge(&pk.0, &boxed.ephemeral, &z, &a1, &a2);
        let s = *w + c * self.secret;
        Ok(Reveal {
            shared: z,
            challenge: c.to_bytes(),
            response: s.to_bytes(),
        })
    }
}

/// `c = H(label ‖ G ‖ PK ‖ E ‖ Z ‖ A1 ‖ A2)` reduced from SHA-512.
fn challenge(pk: &[u8; 32], e: &[u8; 32], z: &[u8; 32], a1: &[u8; 32], a2: &[u8; 32]) -> Scalar {
    let mut h = Sha512::new();
    h.update(PROOF_LABEL);
    h.update(G.compress().as_bytes());
    for part in [pk, e, z, a1, a2] {
        h.update(part);
    }
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Opens `boxed`, sent to `to` under `context`, with what its recipient revealed, after
/// checking the reveal's proof: `log_G(PK) == log_E(Z)`.
pub fn open_revealed(
    to: &BoxPublic,
    context: &[u8],
    boxed: &Boxed,
    reveal: &Reveal,
) -> Result<Zeroizing<[u8; 32]>, BoxError> {
    let pk = point(&to.0)?;
    let e = point(&boxed.ephemeral)?;
    let z = point(&reveal.shared).map_err(|_| BoxError::BadProof)?;
    let c = Option::<Scalar>::from(Scalar::from_canonical_bytes(reveal.challenge))
        .ok_or(BoxError::BadProof)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(reveal.response))
        .ok_or(BoxError::BadProof)?;
    let a1 = (s * G - c * pk).compress().to_bytes();
    let a2 = (s * e - c * z).compress().to_bytes();
    if challenge(&to.0, &boxed.ephemeral, &reveal.shared, &a1, &a2) != c {
        return Err(BoxError::BadProof);
    }
    open_with(&z, &to.0, context, boxed)
}

impl BoxPublic {
    /// Whether the key is a valid, non-identity ristretto255 point (a key anybody can box to).
    pub fn check(&self) -> Result<(), BoxError> {
        point(&self.0).map(|_| ())
    }
}

/// A short fingerprint of a public key for logs (never of a secret).
pub fn fingerprint(key: &BoxPublic) -> String {
    let digest = Sha256::digest(key.0);
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "share_box_tests.rs"]
mod tests;
