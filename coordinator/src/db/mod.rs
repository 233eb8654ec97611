//! The coordinator's durable state: secrets, enrolments, join tokens, allowlists and sessions, in one redb file.

mod audit;
mod deletions;
mod error;
mod master_key;
mod records;
mod registry;
mod restored;
mod revocation;
mod sessions;
mod snapshot;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
mod writer;

pub use audit::{AUDIT_KEEP, AuditEntry};
pub use deletions::{OwedDeletion, ShareToProve};
pub use error::DbError;
pub use master_key::MasterKeyMoved;
pub use records::{
    CoordinatorSecrets, Enrolment, Holder, JoinToken, MAX_RECORD_BYTES, PendingEpoch,
    SessionRecord, holders_of,
};
pub use restored::RestoredFrom;
pub use snapshot::{DbSnapshot, SnapshotRow, SnapshotTable};
pub use writer::{run_session_writer, session_writer_record};

/// The record codec the database reads and writes its tables with, reachable from outside for
/// the fuzz target `coordinator_records` only. Nothing in the coordinator goes through this
/// module; it forwards to the private functions the database uses.
#[doc(hidden)]
pub mod fuzzing {
    use super::{DbError, records};
    use protocols::ids::SessionId;
    use redb::{ReadableTable, TableHandle};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use std::path::Path;

    /// Decodes `bytes` as the record of `table` under `key`, as every read does.
    pub fn decode_stored_record<T: DeserializeOwned>(
        path: &Path,
        table: &str,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T, DbError> {
        records::decode_record(path, table, key, bytes)
    }

    /// Encodes `record` as every write does.
    pub fn encode_stored_record<T: Serialize>(record: &T) -> Result<Vec<u8>, DbError> {
        records::encode_record("record", record)
    }

    /// The check session and pending-epoch reads make after decoding: the record names the
    /// session it is filed under.
    pub fn check_filed_under(
        path: &Path,
        table: &str,
        key: &[u8; 16],
        found: &SessionId,
    ) -> Result<(), DbError> {
        records::filed_under(path, table, key, found)
    }

    /// Every row of every table of `db` but the audit trail as `(table, key, value)` raw bytes,
    /// in table and key order: the fuzz target `coordinator_requests` compares it before and
    /// after a request to prove that refused input wrote nothing. The audit trail, which only
    /// grows, is followed with [`audit_last_seq`] instead.
    pub fn raw_contents(db: &super::CoordinatorDb) -> Result<Vec<RawRow>, DbError> {
        const OP: &str = "reading every table";
        let mut rows = Vec::new();
        db.read(OP, |txn| {
            let t = txn.open_table(super::SECRETS).map_err(|e| db.err(OP, e))?;
            for entry in t.iter().map_err(|e| db.err(OP, e))? {
                let (k, v) = entry.map_err(|e| db.err(OP, e))?;
                rows.push((
                    "secrets".to_string(),
                    k.value().as_bytes().to_vec(),
                    v.value().to_vec(),
                ));
            }
            for table in [super::ENROLMENTS, super::JOIN_TOKENS] {
                records(db, txn, table, &mut rows)?;
            }
            for table in [super::BINARIES, super::REQUESTERS] {
                let t = txn.open_table(table).map_err(|e| db.err(OP, e))?;
                for entry in t.iter().map_err(|e| db.err(OP, e))? {
                    let (k, _) = entry.map_err(|e| db.err(OP, e))?;
                    rows.push((table.name().to_string(), k.value().to_vec(), Vec::new()));
                }
            }
            for table in [super::SESSIONS, super::PENDING_EPOCHS] {
                records(db, txn, table, &mut rows)?;
            }
            // Created by the first removal.
            match txn.open_table(super::revocation::REVOKED_REQUESTERS) {
                Ok(t) => {
                    for entry in t.iter().map_err(|e| db.err(OP, e))? {
                        let (k, _) = entry.map_err(|e| db.err(OP, e))?;
                        rows.push((
                            "revoked_requesters".to_string(),
                            k.value().to_vec(),
                            Vec::new(),
                        ));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(db.err(OP, e)),
            }
            // Created by the first owed deletion.
            match txn.open_table(super::deletions::OWED_DELETIONS) {
                Ok(t) => {
                    for entry in t.iter().map_err(|e| db.err(OP, e))? {
                        let (k, _) = entry.map_err(|e| db.err(OP, e))?;
                        rows.push(("owed_deletions".to_string(), k.value().to_vec(), Vec::new()));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(db.err(OP, e)),
            }
            match txn.open_table(super::deletions::OWED_PROOFS) {
                Ok(t) => {
                    for entry in t.iter().map_err(|e| db.err(OP, e))? {
                        let (k, v) = entry.map_err(|e| db.err(OP, e))?;
                        rows.push((
                            "owed_proofs".to_string(),
                            k.value().to_vec(),
                            v.value().to_vec(),
                        ));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(db.err(OP, e)),
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// The sequence number of the newest audit entry (0: none yet).
    pub fn audit_last_seq(db: &super::CoordinatorDb) -> Result<u64, DbError> {
        db.audit_last_seq()
    }

    /// Appends every row of a records table (fixed-size key, byte value) to `rows`.
    fn records<const N: usize>(
        db: &super::CoordinatorDb,
        txn: &redb::ReadTransaction,
        table: super::Records<N>,
        rows: &mut Vec<RawRow>,
    ) -> Result<(), DbError> {
        const OP: &str = "reading every table";
        let t = txn.open_table(table).map_err(|e| db.err(OP, e))?;
        for entry in t.iter().map_err(|e| db.err(OP, e))? {
            let (k, v) = entry.map_err(|e| db.err(OP, e))?;
            rows.push((
                table.name().to_string(),
                k.value().to_vec(),
                v.value().to_vec(),
            ));
        }
        Ok(())
    }

    /// One row of [`raw_contents`]: table name, key bytes, value bytes.
    pub type RawRow = (String, Vec<u8>, Vec<u8>);
}

use peer::db::{Opened, RequiredTable, begin_durable, open_guarded};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tracing::{debug, info, warn};

/// A table of CBOR records keyed by fixed-size ids.
type Records<const N: usize> = TableDefinition<'static, &'static [u8; N], &'static [u8]>;
/// A set of 32-byte ids.
type Set = TableDefinition<'static, &'static [u8; 32], ()>;

/// The coordinator's secrets: one record under [`SECRETS_KEY`].
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
const SECRETS_KEY: &str = "coordinator";
/// Enrolments, keyed by node id.
const ENROLMENTS: Records<32> = TableDefinition::new("enrolments");
/// Join tokens, keyed by the token's SHA-256.
const JOIN_TOKENS: Records<32> = TableDefinition::new("join_tokens");
/// SHA-256 digests of the peer binaries allowed to contribute.
const BINARIES: Set = TableDefinition::new("allowed_binaries");
/// Nodes allowed to create sessions.
const REQUESTERS: Set = TableDefinition::new("requesters");
/// Sessions, keyed by session id.
const SESSIONS: Records<16> = TableDefinition::new("sessions");
/// Rotations in flight, keyed by session id.
const PENDING_EPOCHS: Records<16> = TableDefinition::new("pending_epochs");

const TABLES: &[&dyn RequiredTable] = &[
    &SECRETS,
    &ENROLMENTS,
    &JOIN_TOKENS,
    &BINARIES,
    &REQUESTERS,
    &SESSIONS,
    &PENDING_EPOCHS,
];

/// What this file is, stamped in its `meta` table.
const FORMAT: &str = "entroshard-coordinator-db";
const LAYOUT: &str = "1";
/// redb's page cache bound (its default is 1 GiB).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The coordinator's database.
///
/// Every mutation is one redb write transaction committed durably (fsync'd, two-phase), so a
/// mutation that returned `Ok` survives a crash of the process. Opening refuses, without writing
/// to it, any file that is not a coordinator database (see [`peer::db::open_guarded`]); a
/// database left by a crash is recovered. A record that does not decode is reported as
/// [`DbError::Corrupt`] naming its table and key.
///
/// All methods block on disk I/O: call them from `spawn_blocking`. `CoordinatorDb` is
/// `Send + Sync`; share it behind an `Arc`. Write transactions are serialised by redb.
#[derive(Debug)]
pub struct CoordinatorDb {
    db: Database,
    path: PathBuf,
}

impl CoordinatorDb {
    /// Opens the database at `path`, creating it if the file is absent (or empty).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let (db, opened) = open_guarded(path, FORMAT, LAYOUT, TABLES, CACHE_BYTES)?;
        match opened {
            Opened::Created => info!(path = %path.display(), "coordinator database created"),
            Opened::Existing => debug!(path = %path.display(), "coordinator database opened"),
            Opened::Recovered => warn!(
                path = %path.display(),
                "coordinator database was not closed cleanly; recovered"
            ),
        }
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The database's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a durable write transaction, committed when `f` returns `(_, true)` and
    /// abandoned (nothing written) on `(_, false)` or an error.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, bool), DbError>,
    ) -> Result<T, DbError> {
        let txn = begin_durable(&self.db).map_err(|e| self.err(op, e))?;
        let (out, commit) = f(&txn)?;
        if commit {
            txn.commit().map_err(|e| self.err(op, e))?;
        }
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&ReadTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let txn = self.db.begin_read().map_err(|e| self.err(op, e))?;
        f(&txn)
    }

    /// Puts `bytes` under `key`, durably.
    fn put_bytes<const N: usize>(
        &self,
        op: &'static str,
        table: Records<N>,
        key: &[u8; N],
        bytes: &[u8],
    ) -> Result<(), DbError> {
        self.write(op, |txn| {
            let mut t = txn.open_table(table).map_err(|e| self.err(op, e))?;
            t.insert(key, bytes).map_err(|e| self.err(op, e))?;
            Ok(((), true))
        })
    }

    /// The record under `key`, decoded.
    fn get_record<const N: usize, T: DeserializeOwned>(
        &self,
        op: &'static str,
        table: Records<N>,
        key: &[u8; N],
    ) -> Result<Option<T>, DbError> {
        self.read(op, |txn| {
            let t = txn.open_table(table).map_err(|e| self.err(op, e))?;
            let Some(guard) = t.get(key).map_err(|e| self.err(op, e))? else {
                return Ok(None);
            };
            records::decode_record(&self.path, table.name(), key, guard.value()).map(Some)
        })
    }

    /// Every record of `table` with its key, in key order.
    fn all_records<const N: usize, T: DeserializeOwned>(
        &self,
        op: &'static str,
        table: Records<N>,
    ) -> Result<Vec<([u8; N], T)>, DbError> {
        self.read(op, |txn| {
            let t = txn.open_table(table).map_err(|e| self.err(op, e))?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(|e| self.err(op, e))? {
                let (k, v) = entry.map_err(|e| self.err(op, e))?;
                let key = *k.value();
                out.push((
                    key,
                    records::decode_record(&self.path, table.name(), &key, v.value())?,
                ));
            }
            Ok(out)
        })
    }

    /// Removes `key` from `table`, durably; `false` (and nothing written) if it was absent.
    fn remove<const N: usize, V: redb::Value + 'static>(
        &self,
        op: &'static str,
        table: TableDefinition<'static, &'static [u8; N], V>,
        key: &[u8; N],
    ) -> Result<bool, DbError> {
        self.write(op, |txn| {
            let mut t = txn.open_table(table).map_err(|e| self.err(op, e))?;
            let removed = t.remove(key).map_err(|e| self.err(op, e))?.is_some();
            Ok((removed, removed))
        })
    }

    /// Every key of a set table, in order.
    fn set_keys(&self, op: &'static str, table: Set) -> Result<Vec<[u8; 32]>, DbError> {
        self.read(op, |txn| {
            let t = txn.open_table(table).map_err(|e| self.err(op, e))?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(|e| self.err(op, e))? {
                let (k, _) = entry.map_err(|e| self.err(op, e))?;
                out.push(*k.value());
            }
            Ok(out)
        })
    }

    fn err(&self, op: &'static str, e: impl Into<redb::Error>) -> DbError {
        DbError::redb(&self.path, op, e)
    }
}
