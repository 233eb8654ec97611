//! What a backup holds (docs/protocol/backup-format.md): the coordinator's identity key, its
//! `master.key` file, its config, and a snapshot of its database, as one CBOR record; and the
//! check that these make a coordinator that starts, run on the whole before anything is restored.

use super::envelope::{BackupError, MAX_BACKUP_BYTES};
use crate::config::CoordinatorConfig;
use crate::db::DbSnapshot;
use crate::master_key::Keyring;
use protocols::identity::NodeKey;
use protocols::sealing::MasterKeyId;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The only contents version this build writes and reads.
pub const CONTENTS_VERSION: u16 = 1;

/// The contents of a backup. Secret throughout: zeroed on drop, `Debug` redacted, no `Clone`.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct BackupContents {
    /// [`CONTENTS_VERSION`].
    pub v: u16,
    /// When the backup was taken, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The coordinator's Ed25519 identity (`identity.key`): its PeerId, which every peer pins.
    #[serde(with = "serde_bytes")]
    pub identity_key: [u8; 32],
    /// The `master.key` file as it was (one key, or two during a master-key rotation).
    #[serde(with = "serde_bytes")]
    pub master_key: Vec<u8>,
    /// The config file's text (`coordinator.toml`), if one was found.
    pub config: Option<String>,
    /// Every table of the database at one committed state.
    pub database: DbSnapshot,
}

impl std::fmt::Debug for BackupContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupContents([redacted])")
    }
}

/// What a checked backup holds, for the operator to read.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The coordinator's PeerId.
    pub peer_id: String,
    /// The master key that seals new shares.
    pub master_key: MasterKeyId,
    /// The master key being retired, if a rotation was under way.
    pub retiring: Option<MasterKeyId>,
    /// Sessions stored.
    pub sessions: usize,
    /// Peers enrolled.
    pub enrolled: usize,
    /// Entries of the audit trail.
    pub audit_entries: usize,
}

impl BackupContents {
    /// The CBOR encoding (zeroed on drop).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(protocols::wire::encode(self))
    }

    /// Decodes contents (bounded, with a recursion limit); another version is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, BackupError> {
        #[derive(Deserialize)]
        struct Version {
            v: u16,
        }
        let version: Version = protocols::wire::decode_bounded(bytes, MAX_BACKUP_BYTES)
            .map_err(|e| BackupError::Contents(e.to_string()))?;
        if version.v != CONTENTS_VERSION {
            return Err(BackupError::Contents(format!(
                "contents version {} is not one this build reads ({CONTENTS_VERSION})",
                version.v
            )));
        }
        protocols::wire::decode_bounded(bytes, MAX_BACKUP_BYTES)
            .map_err(|e| BackupError::Contents(e.to_string()))
    }

    /// The master keys held.
    pub fn keyring(&self) -> Result<Keyring, BackupError> {
        Keyring::decode(&self.master_key)
            .map_err(|e| BackupError::Contents(format!("its master key file: {e}")))
    }

    /// The config held, if any, checked as `coordinator run` checks it.
    pub fn config(&self) -> Result<Option<CoordinatorConfig>, BackupError> {
        let Some(text) = &self.config else {
            return Ok(None);
        };
        let config: CoordinatorConfig =
            toml::from_str(text).map_err(|e| BackupError::Contents(format!("its config: {e}")))?;
        config
            .validate()
            .map_err(|e| BackupError::Contents(format!("its config: {e}")))?;
        Ok(Some(config))
    }

    /// Checks that the contents make a coordinator: the master key file decodes and holds the
    /// key of every session, the config (if any) is valid.
    pub fn check(&self) -> Result<Summary, BackupError> {
        let ring = self.keyring()?;
        let node = NodeKey::from_secret_bytes(&self.identity_key).node_id();
        let peer_id = peer::identity::peer_id(&node)
            .map(|p| p.to_string())
            .ok_or_else(|| {
                BackupError::Contents("its identity key is not an Ed25519 key".into())
            })?;
        let sealed_under = self
            .database
            .sealed_under()
            .map_err(|e| BackupError::Contents(e.to_string()))?;
        if let Some(missing) = sealed_under
            .iter()
            .flatten()
            .find(|id| ring.get(id).is_none())
        {
            return Err(BackupError::Contents(format!(
                "sessions are sealed under master key {missing}, which its master key file does not hold"
            )));
        }
        self.config()?;
        Ok(Summary {
            peer_id,
            master_key: ring.current().id(),
            retiring: ring.retiring().map(|k| k.id()),
            sessions: self.database.rows_of("sessions"),
            enrolled: self.database.rows_of("enrolments"),
            audit_entries: self.database.rows_of("audit_log"),
        })
    }
}
