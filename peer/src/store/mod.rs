//! The device peer's durable share store: one sealed share per (session, epoch), in a redb file.

mod error;
mod record;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
mod writer;

pub use error::StoreError;
pub use record::{BoxedShare, HeldShare, MAX_RECORD_BYTES};
pub use writer::{ack_writer_share, run_ack_writer};

use crate::db::{Opened, begin_durable, open_guarded};
use protocols::ids::{Epoch, SessionId};
use protocols::sealing::{SealedShare, ShareSlot};
use record::KEY_LEN;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use std::path::{Path, PathBuf};
use tracing::{debug, info, warn};

/// Decodes one stored record exactly as the store reads it back (version probe, bounded CBOR,
/// the record's slot checked against its key), for the fuzz target `store_records`. The store
/// itself never calls this; it reads through the same private decoder. A record that does not
/// decode is [`StoreError::Corrupt`] naming `path` and the key.
#[doc(hidden)]
pub fn decode_stored_record(
    path: &Path,
    key: &[u8; KEY_LEN],
    bytes: &[u8],
) -> Result<(HeldShare, u64), StoreError> {
    record::decode_record(key, bytes).map_err(|detail| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    })
}

/// Length of a record's key (`session ‖ epoch`), for [`decode_stored_record`].
#[doc(hidden)]
pub const RECORD_KEY_LEN: usize = KEY_LEN;

/// Shares, keyed by `session ‖ epoch (u32 BE)`, valued by the CBOR record.
const SHARES: TableDefinition<&[u8; KEY_LEN], &[u8]> = TableDefinition::new("shares");
/// What this file is, stamped in its `meta` table by [`open_guarded`].
const FORMAT: &str = "entroshard-peer-share-store";
const LAYOUT: &str = "1";
/// redb's page cache bound (its default is 1 GiB); the store is small.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// What [`ShareStore::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The share is now stored, durably.
    Stored,
    /// The identical share was already stored; nothing changed (its expiry is kept).
    AlreadyStored,
}

/// A share read back from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredShare {
    /// The share, as it was put.
    pub share: HeldShare,
    /// When it may be deleted, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// One stored share, without its ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredShareInfo {
    /// Session of the share.
    pub session: SessionId,
    /// Epoch of the share.
    pub epoch: Epoch,
    /// The share's index (x-coordinate).
    pub index: u8,
    /// When it may be deleted, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// The durable share store of one holder.
///
/// Every mutation is one redb write transaction committed with
/// [`redb::Durability::Immediate`] and two-phase commit ([`begin_durable`]), so a `put` or delete
/// that returned `Ok` survives a crash of the process (and, as far as the disk honours `fsync`, of
/// the machine). Opening refuses, without writing to it, any file that is not a share store; a
/// store left by a crash is recovered by redb as usual ([`open_guarded`]).
///
/// All methods block on disk I/O: call them from `spawn_blocking`. `ShareStore` is `Send + Sync`;
/// share it behind an `Arc`. Write transactions are serialised by redb, so concurrent `put`s of
/// the same slot resolve to one `Stored` and the rest `AlreadyStored` or `Conflict`.
#[derive(Debug)]
pub struct ShareStore {
    db: Database,
    path: PathBuf,
    capacity: u32,
}

impl ShareStore {
    /// Opens the store at `path`, creating it if the file is absent (or empty).
    ///
    /// A file that is not a share store — garbage, or a redb database of another program — is
    /// refused with [`StoreError::Corrupt`] and not written to. A store left by a crash is
    /// recovered (redb's normal crash recovery); every open also verifies the checksums of the
    /// whole file, so silent corruption is reported as [`StoreError::Corrupt`] rather than trusted.
    /// `capacity` is the number of shares [`Self::put`] accepts; it is not stored in the file.
    ///
    /// One exception to "not written to": a redb file that needs crash recovery can only be
    /// identified after redb has recovered it, so another program's crashed redb database is
    /// recovered and then refused.
    pub fn open(path: &Path, capacity: u32) -> Result<Self, StoreError> {
        Self::open_with_cache(path, capacity, CACHE_BYTES)
    }

    /// [`Self::open`] with redb's page cache bounded to `cache_bytes` (the low-memory profile).
    pub fn open_with_cache(
        path: &Path,
        capacity: u32,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let (db, opened) = open_guarded(path, FORMAT, LAYOUT, &[&SHARES], cache_bytes)?;
        match opened {
            Opened::Created => info!(path = %path.display(), "share store created"),
            Opened::Existing => debug!(path = %path.display(), capacity, "share store opened"),
            Opened::Recovered => {
                warn!(path = %path.display(), "share store was not closed cleanly; recovered");
            }
        }
        Ok(Self {
            db,
            path: path.to_path_buf(),
            capacity,
        })
    }

    /// Stores `share` until `expires_at_ms`, durably once this returns `Ok`.
    ///
    /// The identical share again is [`PutOutcome::AlreadyStored`] (its stored expiry is kept);
    /// a different share for the same (session, epoch) is [`StoreError::Conflict`]; a new share
    /// when the store holds `capacity` shares is [`StoreError::Full`].
    pub fn put(&self, share: &SealedShare, expires_at_ms: u64) -> Result<PutOutcome, StoreError> {
        self.put_held(&HeldShare::Sealed(share.clone()), expires_at_ms)
    }

    /// [`Self::put`] for a share boxed to this holder (or sealed).
    pub fn put_held(
        &self,
        share: &HeldShare,
        expires_at_ms: u64,
    ) -> Result<PutOutcome, StoreError> {
        let ShareSlot {
            session,
            epoch,
            index,
            ..
        } = *share.slot();
        let k = record::key(&session, epoch);
        let bytes =
            record::encode_record(share, expires_at_ms).map_err(|len| StoreError::TooLarge {
                len,
                max: MAX_RECORD_BYTES,
            })?;
        const OP: &str = "storing a share";
        let txn = self.begin_write(OP)?;
        {
            let mut table = txn.open_table(SHARES).map_err(|e| self.err(OP, e))?;
            let existing = match table.get(&k).map_err(|e| self.err(OP, e))? {
                Some(guard) => Some(
                    record::decode_record(&k, guard.value())
                        .map_err(|d| StoreError::corrupt(&self.path, d))?,
                ),
                None => None,
            };
            if let Some((stored, _)) = existing {
                return if stored == *share {
                    Ok(PutOutcome::AlreadyStored)
                } else {
                    Err(StoreError::Conflict { session, epoch })
                };
            }
            if table.len().map_err(|e| self.err(OP, e))? >= u64::from(self.capacity) {
                return Err(StoreError::Full {
                    capacity: self.capacity,
                });
            }
            table
                .insert(&k, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
        }
        txn.commit().map_err(|e| self.err(OP, e))?;
        debug!(%session, epoch, index, "share stored");
        Ok(PutOutcome::Stored)
    }

    /// The share stored for (session, epoch), if any.
    pub fn get(
        &self,
        session: &SessionId,
        epoch: Epoch,
    ) -> Result<Option<StoredShare>, StoreError> {
        const OP: &str = "reading a share";
        let k = record::key(session, epoch);
        let txn = self.db.begin_read().map_err(|e| self.err(OP, e))?;
        let table = txn.open_table(SHARES).map_err(|e| self.err(OP, e))?;
        let Some(guard) = table.get(&k).map_err(|e| self.err(OP, e))? else {
            return Ok(None);
        };
        let (share, expires_at_ms) = record::decode_record(&k, guard.value())
            .map_err(|d| StoreError::corrupt(&self.path, d))?;
        Ok(Some(StoredShare {
            share,
            expires_at_ms,
        }))
    }

    /// The epochs stored for `session`, ascending.
    pub fn epochs(&self, session: &SessionId) -> Result<Vec<Epoch>, StoreError> {
        Ok(self.scan_session(session, None, "listing epochs")?.0)
    }

    /// What a fetch needs in one read transaction: the epochs held for `session` and the share
    /// of `epoch` if it is one of them.
    pub fn epochs_and_share(
        &self,
        session: &SessionId,
        epoch: Epoch,
    ) -> Result<(Vec<Epoch>, Option<StoredShare>), StoreError> {
        self.scan_session(session, Some(epoch), "reading a share to serve")
    }

    /// One read transaction over `session`'s records: the epochs held, ascending, and the share of
    /// `wanted` (decoded only for that epoch).
    fn scan_session(
        &self,
        session: &SessionId,
        wanted: Option<Epoch>,
        op: &'static str,
    ) -> Result<(Vec<Epoch>, Option<StoredShare>), StoreError> {
        let lo = record::key(session, 0);
        let hi = record::key(session, Epoch::MAX);
        let txn = self.db.begin_read().map_err(|e| self.err(op, e))?;
        let table = txn.open_table(SHARES).map_err(|e| self.err(op, e))?;
        let mut epochs = Vec::new();
        let mut found = None;
        for entry in table
            .range::<&[u8; KEY_LEN]>(&lo..=&hi)
            .map_err(|e| self.err(op, e))?
        {
            let (k, v) = entry.map_err(|e| self.err(op, e))?;
            let key = k.value();
            let held = record::split_key(key).1;
            if Some(held) == wanted {
                let (share, expires_at_ms) = record::decode_record(key, v.value())
                    .map_err(|d| StoreError::corrupt(&self.path, d))?;
                found = Some(StoredShare {
                    share,
                    expires_at_ms,
                });
            }
            epochs.push(held);
        }
        Ok((epochs, found))
    }

    /// Deletes the share of (session, epoch), durably; `false` if there was none.
    pub fn delete_epoch(&self, session: &SessionId, epoch: Epoch) -> Result<bool, StoreError> {
        const OP: &str = "deleting a share";
        let k = record::key(session, epoch);
        let txn = self.begin_write(OP)?;
        let removed = {
            let mut table = txn.open_table(SHARES).map_err(|e| self.err(OP, e))?;
            table.remove(&k).map_err(|e| self.err(OP, e))?.is_some()
        };
        if removed {
            txn.commit().map_err(|e| self.err(OP, e))?;
            debug!(%session, epoch, "share deleted");
        }
        Ok(removed)
    }

    /// Deletes, durably and at once, every share whose expiry is at or before `now_ms`; returns
    /// how many. A record that does not decode stops the sweep with [`StoreError::Corrupt`].
    pub fn delete_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        const OP: &str = "deleting expired shares";
        let txn = self.begin_write(OP)?;
        let expired = {
            let mut table = txn.open_table(SHARES).map_err(|e| self.err(OP, e))?;
            let mut expired = Vec::new();
            for entry in table.iter().map_err(|e| self.err(OP, e))? {
                let (k, v) = entry.map_err(|e| self.err(OP, e))?;
                let (_, expires_at_ms) = record::decode_record(k.value(), v.value())
                    .map_err(|d| StoreError::corrupt(&self.path, d))?;
                if expires_at_ms <= now_ms {
                    expired.push(*k.value());
                }
            }
            for k in &expired {
                table.remove(k).map_err(|e| self.err(OP, e))?;
            }
            expired.len()
        };
        if expired > 0 {
            txn.commit().map_err(|e| self.err(OP, e))?;
            info!(count = expired, now_ms, "expired shares deleted");
        }
        Ok(expired)
    }

    /// How many shares are stored.
    pub fn len(&self) -> Result<u32, StoreError> {
        const OP: &str = "counting shares";
        let txn = self.db.begin_read().map_err(|e| self.err(OP, e))?;
        let table = txn.open_table(SHARES).map_err(|e| self.err(OP, e))?;
        let len = table.len().map_err(|e| self.err(OP, e))?;
        Ok(u32::try_from(len).unwrap_or(u32::MAX))
    }

    /// Whether no share is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// How many more shares [`Self::put`] accepts (0 when over capacity).
    pub fn free_slots(&self) -> Result<u32, StoreError> {
        Ok(self.capacity.saturating_sub(self.len()?))
    }

    /// The capacity this handle enforces.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every stored share, by session then epoch.
    pub fn list(&self) -> Result<Vec<StoredShareInfo>, StoreError> {
        const OP: &str = "listing shares";
        let txn = self.db.begin_read().map_err(|e| self.err(OP, e))?;
        let table = txn.open_table(SHARES).map_err(|e| self.err(OP, e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(OP, e))? {
            let (k, v) = entry.map_err(|e| self.err(OP, e))?;
            let (share, expires_at_ms) = record::decode_record(k.value(), v.value())
                .map_err(|d| StoreError::corrupt(&self.path, d))?;
            out.push(StoredShareInfo {
                session: share.slot().session,
                epoch: share.slot().epoch,
                index: share.slot().index,
                expires_at_ms,
            });
        }
        Ok(out)
    }

    /// A write transaction that commits durably: fsync'd, and in two phases so that a torn or
    /// rotted commit is reported as corruption instead of silently rolled back to the one before.
    fn begin_write(&self, op: &'static str) -> Result<WriteTransaction, StoreError> {
        begin_durable(&self.db).map_err(|e| self.err(op, e))
    }

    fn err(&self, op: &'static str, e: impl Into<redb::Error>) -> StoreError {
        StoreError::redb(&self.path, op, e)
    }
}
