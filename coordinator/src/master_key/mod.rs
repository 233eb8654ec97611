//! The sealing master keys: the one that seals new shares, and during a master-key rotation the
//! one it replaces, kept until no session is sealed under it (decision 0046). Held in
//! `master.key` in the data directory (format in `format`, file handling and the move out of
//! the database in `disk`).

mod disk;
mod format;

pub use disk::{MasterKeyError, create, open, read, replace};
pub use format::{FormatError, MAX_FILE_BYTES};

use protocols::sealing::{MasterKeyId, SealingMasterKey, ShareOpeningKey, ShareSlot};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The keyring in force, shared by the daemon's loop and its tasks; replaced whole (never held
/// across an await) when a master-key rotation starts or ends.
#[derive(Debug)]
pub struct SharedKeyring(std::sync::RwLock<Keyring>);

impl SharedKeyring {
    /// Shares `ring`.
    pub fn new(ring: Keyring) -> Self {
        Self(std::sync::RwLock::new(ring))
    }

    /// The master keys in force now.
    pub fn get(&self) -> Keyring {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the master keys in force (after `master.key` holds them durably).
    pub fn set(&self, ring: Keyring) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
    }

    /// The key new shares are sealed under; a placement holds it until it ends, which keeps a
    /// retiring key in force while a placement still seals under it.
    pub fn sealing_key(&self) -> Arc<MasterKey> {
        self.get().current().clone()
    }

    /// The retiring master key's id, and whether anything besides the keyring still holds it (a
    /// placement that seals under it). `None` when no master-key rotation is under way.
    pub fn retiring_key(&self) -> Option<(MasterKeyId, bool)> {
        let ring = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.retiring().map(|k| (k.id(), Arc::strong_count(k) > 1))
    }
}

/// One sealing master key with its id.
#[derive(Debug)]
pub struct MasterKey {
    key: SealingMasterKey,
    id: MasterKeyId,
}

impl MasterKey {
    /// Wraps a key.
    pub fn new(key: SealingMasterKey) -> Self {
        let id = key.id();
        Self { key, id }
    }

    /// Its id.
    pub fn id(&self) -> MasterKeyId {
        self.id
    }

    /// The key.
    pub fn key(&self) -> &SealingMasterKey {
        &self.key
    }

    /// The key of one share slot.
    pub fn share_key(&self, slot: &ShareSlot) -> ShareOpeningKey {
        self.key.share_key(slot)
    }
}

/// The master keys in force: `current` seals every new share; `retiring`, present only while a
/// master-key rotation re-seals the sessions sealed under it, still opens them.
///
/// Placements hold an `Arc` of the key they seal with (the current one when they started), so
/// the holder of a `Keyring` can tell when no placement still seals under the retiring key.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: Arc<MasterKey>,
    retiring: Option<Arc<MasterKey>>,
}

impl Keyring {
    /// A keyring of one key.
    pub fn single(current: SealingMasterKey) -> Self {
        Self {
            current: Arc::new(MasterKey::new(current)),
            retiring: None,
        }
    }

    /// The key that seals new shares.
    pub fn current(&self) -> &Arc<MasterKey> {
        &self.current
    }

    /// The key being retired, if a master-key rotation is under way.
    pub fn retiring(&self) -> Option<&Arc<MasterKey>> {
        self.retiring.as_ref()
    }

    /// The key a session's epoch is sealed under (`None`: the current key, as sessions boxed to
    /// their holders are recorded), if this keyring holds it.
    pub fn for_session(&self, sealed_under: Option<&MasterKeyId>) -> Option<&MasterKey> {
        match sealed_under {
            Some(id) => self.get(id),
            None => Some(self.current()),
        }
    }

    /// The key of `id`, if this keyring holds it.
    pub fn get(&self, id: &MasterKeyId) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.retiring)
            .find(|k| &k.id == id)
            .map(|k| &**k)
    }

    /// Every id held, current first.
    pub fn ids(&self) -> Vec<MasterKeyId> {
        std::iter::once(&self.current)
            .chain(&self.retiring)
            .map(|k| k.id)
            .collect()
    }

    /// The keyring of a master-key rotation to `new`: `new` seals from now on, the current key
    /// retires. `None` while a rotation is already under way (at most two keys are in force).
    pub fn rotated(&self, new: SealingMasterKey) -> Option<Self> {
        if self.retiring.is_some() {
            return None;
        }
        Some(Self {
            current: Arc::new(MasterKey::new(new)),
            retiring: Some(self.current.clone()),
        })
    }

    /// This keyring without its retiring key (the rotation has finished).
    pub fn without_retiring(&self) -> Self {
        Self {
            current: self.current.clone(),
            retiring: None,
        }
    }

    /// The `master.key` file bytes of this keyring.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        format::encode(
            self.current.key(),
            self.retiring.as_deref().map(MasterKey::key),
        )
    }

    /// Reads a keyring from `master.key` file bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let (current, retiring) = format::decode(bytes)?;
        Ok(Self {
            current: Arc::new(MasterKey::new(current)),
            retiring: retiring.map(|k| Arc::new(MasterKey::new(k))),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_the_old_key_as_retiring_and_a_second_one_waits_for_it() {
        let one = Keyring::single(SealingMasterKey::from_bytes([1; 32]));
        let old = one.current().id();
        let two = one.rotated(SealingMasterKey::from_bytes([2; 32])).unwrap();
        assert_ne!(two.current().id(), old);
        assert_eq!(two.retiring().unwrap().id(), old);
        assert!(two.get(&old).is_some());
        assert_eq!(two.ids(), [two.current().id(), old]);
        assert!(
            two.rotated(SealingMasterKey::from_bytes([3; 32])).is_none(),
            "a third key while the second rotation is under way"
        );
        let done = two.without_retiring();
        assert!(done.get(&old).is_none());
        assert_eq!(Keyring::decode(&done.encode()).unwrap().ids(), done.ids());
        assert_eq!(Keyring::decode(&two.encode()).unwrap().ids(), two.ids());
    }
}
