//! Session secrets and user keys: HKDF-SHA256 with a wide reduction into the ristretto255 scalar field.

use crate::ids::SessionId;
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

const SESSION_SALT: &[u8] = b"entroshard/v1/session-secret";
const USER_KEY_SALT: &[u8] = b"entroshard/v1/user-key";

/// A session's secret: a non-zero scalar of ristretto255, the value that is shared.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionSecret(pub(crate) Scalar);

impl SessionSecret {
    /// Derives the session secret from the generator's output and fresh OS randomness,
    /// salted with the session id. Returns `None` only for the (2^-252) zero scalar.
    pub fn derive(
        generator_output: &[u8; 32],
        os_random: &[u8; 32],
        session: &SessionId,
    ) -> Option<Self> {
        let mut ikm = [0u8; 64];
        ikm[..32].copy_from_slice(generator_output);
        ikm[32..].copy_from_slice(os_random);
        let mut salt = Vec::with_capacity(SESSION_SALT.len() + 16);
        salt.extend_from_slice(SESSION_SALT);
        salt.extend_from_slice(&session.0);
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        ikm.zeroize();
        let mut wide = [0u8; 64];
        // 64 bytes is far below HKDF-SHA256's 8160-byte limit.
        hk.expand(b"scalar", &mut wide).ok()?;
        let scalar = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        if bool::from(scalar.ct_eq(&Scalar::ZERO)) {
            return None;
        }
        Some(Self(scalar))
    }

    /// The user's key for this session: HKDF of the scalar with the policy digest as info.
    pub fn user_key(&self, policy_digest: &[u8; 32]) -> SessionKey {
        let mut ikm = self.0.to_bytes();
        let hk = Hkdf::<Sha256>::new(Some(USER_KEY_SALT), &ikm);
        ikm.zeroize();
        let mut key = [0u8; 32];
        // 32 bytes never exceeds HKDF's output limit.
        let _ = hk.expand(policy_digest, &mut key);
        SessionKey(key)
    }

    /// Compressed public commitment `G·s`, comparable with commitment 0.
    pub fn public_point(&self) -> [u8; 32] {
        // The precomputed base table: constant time, several times faster than a generic multiply.
        curve25519_dalek::ristretto::RistrettoPoint::mul_base(&self.0)
            .compress()
            .to_bytes()
    }
}

impl PartialEq for SessionSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret([redacted])")
    }
}

/// The 32-byte key handed to the user (a Noise or WireGuard pre-shared key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key bytes, for handing to the user's program.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short public fingerprint (SHA-256 of the key, first 8 bytes in hex) for logs.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        crate::ids::hex8(&digest[..8])
    }
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionKey {}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_key_depends_on_the_policy_digest() {
        let s = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap();
        assert_ne!(s.user_key(&[0; 32]), s.user_key(&[1; 32]));
        assert_eq!(s.user_key(&[0; 32]), s.user_key(&[0; 32]));
    }

    #[test]
    fn secrets_and_keys_are_redacted_in_debug_output() {
        let s = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap();
        assert_eq!(format!("{s:?}"), "SessionSecret([redacted])");
        assert_eq!(
            format!("{:?}", s.user_key(&[0; 32])),
            "SessionKey([redacted])"
        );
    }

    proptest! {
        #[test]
        fn every_input_changes_the_secret(g in any::<[u8; 32]>(), os in any::<[u8; 32]>(), id in any::<[u8; 16]>(), flip in 0usize..80) {
            let base = SessionSecret::derive(&g, &os, &SessionId(id)).unwrap();
            let (mut g2, mut os2, mut id2) = (g, os, id);
            match flip {
                0..32 => g2[flip] ^= 1,
                32..64 => os2[flip - 32] ^= 1,
                _ => id2[(flip - 64) % 16] ^= 1,
            }
            let other = SessionSecret::derive(&g2, &os2, &SessionId(id2)).unwrap();
            prop_assert!(base != other);
        }
    }
}
