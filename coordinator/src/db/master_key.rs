//! The database's side of moving the sealing master key into `master.key` (decision 0046):
//! reading the key a record written before still holds, then removing it and stamping every
//! session with the id of the key that sealed it, in one transaction.

use super::records::{self, CoordinatorSecrets, LegacySecrets, SessionRecord};
use super::{CoordinatorDb, DbError, SECRETS, SECRETS_KEY, SESSIONS};
use protocols::sealing::{MasterKeyId, SealingMasterKey};
use redb::{ReadableTable, TableHandle};
use zeroize::Zeroizing;

/// What [`CoordinatorDb::finish_master_key_move`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MasterKeyMoved {
    /// The secrets record held the key and no longer does.
    pub key_removed: bool,
    /// Session records stamped with the key's id.
    pub stamped: usize,
}

impl CoordinatorDb {
    /// The sealing master key a secrets record written before decision 0046 still holds.
    pub fn legacy_sealing_master(&self) -> Result<Option<SealingMasterKey>, DbError> {
        const OP: &str = "reading the coordinator's secrets";
        self.read(OP, |txn| {
            let t = txn.open_table(SECRETS).map_err(|e| self.err(OP, e))?;
            let Some(guard) = t.get(SECRETS_KEY).map_err(|e| self.err(OP, e))? else {
                return Ok(None);
            };
            let legacy: LegacySecrets = records::decode_record(
                &self.path,
                SECRETS.name(),
                SECRETS_KEY.as_bytes(),
                guard.value(),
            )?;
            Ok(legacy.sealing_master.map(SealingMasterKey::from_bytes))
        })
    }

    /// Removes the sealing master key from the secrets record (keeping the rest) and stamps
    /// every session record without a key id with `id`, in one durable transaction; writes
    /// nothing when there is nothing to do. Call only once `master.key` durably holds the key.
    pub fn finish_master_key_move(&self, id: MasterKeyId) -> Result<MasterKeyMoved, DbError> {
        const OP: &str = "moving the sealing master key out of the database";
        // Read first: a database with nothing to move is never opened for writing (and a
        // corrupt one is refused by the read, untouched).
        let unstamped = self
            .sessions()?
            .iter()
            .any(|s| s.sealed_under.is_none() && !s.boxed);
        if !unstamped && self.legacy_sealing_master()?.is_none() {
            return Ok(MasterKeyMoved::default());
        }
        self.write(OP, |txn| {
            let mut moved = MasterKeyMoved::default();
            let mut secrets = txn.open_table(SECRETS).map_err(|e| self.err(OP, e))?;
            let kept = match secrets.get(SECRETS_KEY).map_err(|e| self.err(OP, e))? {
                None => None,
                Some(guard) => {
                    let bytes = guard.value();
                    let legacy: LegacySecrets = records::decode_record(
                        &self.path,
                        SECRETS.name(),
                        SECRETS_KEY.as_bytes(),
                        bytes,
                    )?;
                    if legacy.sealing_master.is_some() {
                        let current: CoordinatorSecrets = records::decode_record(
                            &self.path,
                            SECRETS.name(),
                            SECRETS_KEY.as_bytes(),
                            bytes,
                        )?;
                        Some(Zeroizing::new(records::encode_record(
                            "secrets record",
                            &current,
                        )?))
                    } else {
                        None
                    }
                }
            };
            if let Some(bytes) = kept {
                secrets
                    .insert(SECRETS_KEY, bytes.as_slice())
                    .map_err(|e| self.err(OP, e))?;
                moved.key_removed = true;
            }
            let mut sessions = txn.open_table(SESSIONS).map_err(|e| self.err(OP, e))?;
            let mut unstamped: Vec<SessionRecord> = Vec::new();
            for entry in sessions.iter().map_err(|e| self.err(OP, e))? {
                let (k, v) = entry.map_err(|e| self.err(OP, e))?;
                let key = *k.value();
                let record: SessionRecord =
                    records::decode_record(&self.path, SESSIONS.name(), &key, v.value())?;
                if record.sealed_under.is_none() && !record.boxed {
                    unstamped.push(record);
                }
            }
            for mut record in unstamped {
                record.sealed_under = Some(id);
                let bytes = records::encode_record("session record", &record)?;
                sessions
                    .insert(&record.session.0, bytes.as_slice())
                    .map_err(|e| self.err(OP, e))?;
                moved.stamped += 1;
            }
            let changed = moved.key_removed || moved.stamped > 0;
            Ok((moved, changed))
        })
    }
}

#[cfg(test)]
impl CoordinatorDb {
    /// Stores a secrets record as databases before decision 0046 wrote it (with the sealing
    /// master key), for the tests of the move.
    pub(crate) fn init_legacy_secrets(
        &self,
        sealing_master: [u8; 32],
        noise_static: [u8; 32],
    ) -> Result<(), DbError> {
        #[derive(serde::Serialize)]
        struct Legacy {
            #[serde(with = "serde_bytes")]
            sealing_master: [u8; 32],
            #[serde(with = "serde_bytes")]
            noise_static: [u8; 32],
        }
        const OP: &str = "storing legacy secrets";
        let bytes = records::encode_record(
            "secrets record",
            &Legacy {
                sealing_master,
                noise_static,
            },
        )?;
        self.write(OP, |txn| {
            let mut t = txn.open_table(SECRETS).map_err(|e| self.err(OP, e))?;
            t.insert(SECRETS_KEY, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            Ok(((), true))
        })
    }
}
