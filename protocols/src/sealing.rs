//! Share sealing: ChaCha20-Poly1305 under a key derived per (session, epoch, holder, index).

use crate::ids::{Epoch, NodeId, SessionId, ShareIndex};
use crate::sharing::UnverifiedShare;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

const SEAL_SALT: &[u8] = b"entroshard/v1/share-seal";
/// Domain separation of a master key's id from every other hash of it.
const KEY_ID_DOMAIN: &[u8] = b"entroshard/v1/master-key-id";

/// A sealing master key's public name: the first 8 bytes of
/// SHA-256(`"entroshard/v1/master-key-id"` ‖ key). Printed as 16 hex digits; it tells keys apart
/// and names which key sealed a session, and reveals nothing usable about the key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MasterKeyId(#[serde(with = "serde_bytes")] pub [u8; 8]);

impl std::fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::ids::hex8(&self.0))
    }
}

impl std::fmt::Debug for MasterKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKeyId({self})")
    }
}

/// The coordinator's long-term sealing master key. Never leaves the coordinator.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SealingMasterKey([u8; 32]);

impl SealingMasterKey {
    /// Wraps 32 secret bytes (from the OS generator at `coordinator init`).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for writing the coordinator's `master.key` file.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's id ([`MasterKeyId`]).
    pub fn id(&self) -> MasterKeyId {
        use sha2::Digest;
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(self.0)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        MasterKeyId(id)
    }

    /// Derives the key that seals and opens one share slot.
    pub fn share_key(&self, slot: &ShareSlot) -> ShareOpeningKey {
        let hk = Hkdf::<Sha256>::new(Some(SEAL_SALT), &self.0);
        let mut key = [0u8; 32];
        // 32 bytes never exceeds HKDF's output limit.
        let _ = hk.expand(&slot.associated_data(), &mut key);
        ShareOpeningKey(key)
    }
}

impl std::fmt::Debug for SealingMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingMasterKey([redacted])")
    }
}

/// Where a share lives: the fields bound into its key and associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ShareSlot {
    /// Session the share belongs to.
    pub session: SessionId,
    /// Sharing epoch.
    pub epoch: Epoch,
    /// Node that holds the sealed share.
    pub holder: NodeId,
    /// The share's x-coordinate.
    pub index: ShareIndex,
}

impl ShareSlot {
    /// `session ‖ epoch ‖ holder ‖ index`, fixed width.
    pub fn associated_data(&self) -> [u8; 16 + 4 + 32 + 1] {
        let mut ad = [0u8; 53];
        ad[..16].copy_from_slice(&self.session.0);
        ad[16..20].copy_from_slice(&self.epoch.to_be_bytes());
        ad[20..52].copy_from_slice(&self.holder.0);
        ad[52] = self.index;
        ad
    }
}

/// The AEAD key of one share slot. The coordinator derives it; a requester receives it in its ticket grant.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ShareOpeningKey(#[serde(with = "serde_bytes")] [u8; 32]);

impl ShareOpeningKey {
    /// Compares two keys in constant time.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for ShareOpeningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareOpeningKey([redacted])")
    }
}

/// A share as a holder stores and serves it: it cannot read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SealedShare {
    /// The slot the share is bound to.
    pub slot: ShareSlot,
    /// AEAD nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 12],
    /// Ciphertext of the 32-byte share value plus the 16-byte tag.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Why a sealed share could not be opened.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The ciphertext, its slot fields or the key do not match.
    #[error("share {index} of holder {holder} does not open: wrong key, slot or tampered bytes")]
    OpenFailed {
        /// Share index claimed.
        index: ShareIndex,
        /// Holder claimed.
        holder: NodeId,
    },
    /// The share was bound to a different slot than the one expected.
    #[error("share is bound to {found:?}, expected {expected:?}")]
    WrongSlot {
        /// Slot expected.
        expected: ShareSlot,
        /// Slot found.
        found: ShareSlot,
    },
}

/// Seals a share's 32 value bytes for `slot`. `nonce` comes from the caller's CSPRNG.
pub fn seal(
    key: &ShareOpeningKey,
    slot: ShareSlot,
    share_value: &[u8; 32],
    nonce: [u8; 12],
) -> SealedShare {
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    let ad = slot.associated_data();
    // Encryption into a Vec fails only for plaintexts beyond 256 GiB.
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: share_value,
                aad: &ad,
            },
        )
        .unwrap_or_default();
    SealedShare {
        slot,
        nonce,
        ciphertext,
    }
}

/// Opens a sealed share expected at `expected` with that slot's key.
pub fn open(
    key: &ShareOpeningKey,
    expected: &ShareSlot,
    sealed: &SealedShare,
) -> Result<UnverifiedShare, SealError> {
    if &sealed.slot != expected {
        return Err(SealError::WrongSlot {
            expected: *expected,
            found: sealed.slot,
        });
    }
    let failed = SealError::OpenFailed {
        index: sealed.slot.index,
        holder: sealed.slot.holder,
    };
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    let ad = expected.associated_data();
    let mut plain = cipher
        .decrypt(
            &sealed.nonce.into(),
            Payload {
                msg: &sealed.ciphertext,
                aad: &ad,
            },
        )
        .map_err(|_| failed.clone())?;
    let Ok(value) = <[u8; 32]>::try_from(plain.as_slice()) else {
        plain.zeroize();
        return Err(failed);
    };
    plain.zeroize();
    Ok(UnverifiedShare::new(expected.index, value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_master_key_id_is_stable_and_tells_keys_apart() {
        let a = SealingMasterKey::from_bytes([1; 32]);
        assert_eq!(a.id(), SealingMasterKey::from_bytes([1; 32]).id());
        assert_ne!(a.id(), SealingMasterKey::from_bytes([2; 32]).id());
        assert_eq!(a.id().to_string().len(), 16);
        // Not a prefix of the plain SHA-256 of the key: the id is domain-separated.
        use sha2::Digest;
        assert_ne!(a.id().0[..], Sha256::digest([1u8; 32])[..8]);
    }

    fn slot() -> ShareSlot {
        ShareSlot {
            session: SessionId([7; 16]),
            epoch: 3,
            holder: NodeId([9; 32]),
            index: 2,
        }
    }

    #[test]
    fn sealed_share_opens_with_its_slot_key() {
        let master = SealingMasterKey::from_bytes([1; 32]);
        let key = master.share_key(&slot());
        let sealed = seal(&key, slot(), &[5; 32], [0; 12]);
        let share = open(&key, &slot(), &sealed).unwrap();
        assert_eq!(share.index(), 2);
    }

    proptest! {
        #[test]
        fn any_changed_slot_field_or_byte_makes_open_fail(which in 0usize..6, byte in 0usize..48) {
            let master = SealingMasterKey::from_bytes([1; 32]);
            let key = master.share_key(&slot());
            let mut sealed = seal(&key, slot(), &[5; 32], [0; 12]);
            let mut other = slot();
            match which {
                0 => other.session.0[0] ^= 1,
                1 => other.epoch += 1,
                2 => other.holder.0[31] ^= 1,
                3 => other.index = 3,
                4 => { sealed.ciphertext[byte] ^= 0x80; other = slot(); }
                _ => { sealed.nonce[byte % 12] ^= 1; other = slot(); }
            }
            // The holder could relabel the slot: use the relabelled slot's own key and AD.
            sealed.slot = other;
            let relabelled_key = master.share_key(&other);
            prop_assert!(open(&relabelled_key, &other, &sealed).is_err());
            prop_assert!(open(&key, &slot(), &sealed).is_err());
        }
    }
}
