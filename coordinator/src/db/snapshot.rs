//! A consistent copy of every table, for backups: taken in one read transaction (a snapshot of
//! one committed state, while the coordinator keeps writing), and put back into a new, empty
//! database in one write transaction. Rows travel as raw key and value bytes; restoring checks
//! every key's size, and [`CoordinatorDb::check_restored`] then decodes every record.

use super::audit::AUDIT_LOG;
use super::deletions::{OWED_DELETIONS, OWED_PROOFS};
use super::restored::RESTORED;
use super::revocation::REVOKED_REQUESTERS;
use super::{
    BINARIES, CoordinatorDb, DbError, ENROLMENTS, JOIN_TOKENS, PENDING_EPOCHS, REQUESTERS, Records,
    SECRETS, SESSIONS, records,
};
use protocols::sealing::MasterKeyId;
use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError,
    TableHandle, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The `meta` table every guarded database has: stamped by the open that creates the database,
/// so it is not carried in a snapshot.
const META: &str = "meta";

/// Every table a snapshot carries. A table added to the database and not here makes
/// [`CoordinatorDb::snapshot`] fail rather than leave it out of backups.
const TABLES: &[&str] = &[
    "secrets",
    "enrolments",
    "join_tokens",
    "allowed_binaries",
    "requesters",
    "sessions",
    "pending_epochs",
    "revoked_requesters",
    "owed_deletions",
    "owed_proofs",
    "audit_log",
    "restored",
];

/// One row: the key's and the value's bytes as the table stores them (an `u64` key as 8
/// big-endian bytes, a `()` value as none).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SnapshotRow {
    /// Key bytes.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Value bytes.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// One table's rows, in key order.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SnapshotTable {
    /// The table's name.
    pub name: String,
    /// Its rows.
    pub rows: Vec<SnapshotRow>,
}

/// Every table of a coordinator database at one committed state. It holds the database's
/// secrets (the Noise static key): zeroed on drop, `Debug` prints only its size.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct DbSnapshot {
    /// The tables present, in `TABLES` order.
    pub tables: Vec<SnapshotTable>,
}

impl std::fmt::Debug for DbSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DbSnapshot({} tables, {} rows, [redacted])",
            self.tables.len(),
            self.tables.iter().map(|t| t.rows.len()).sum::<usize>()
        )
    }
}

impl DbSnapshot {
    /// Rows of the table `name` (0 when absent).
    pub fn rows_of(&self, name: &str) -> usize {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.rows.len())
    }

    /// The master keys the snapshot's sessions are sealed under (`None`: a record from before
    /// key ids). A session row that does not decode is an error.
    pub fn sealed_under(&self) -> Result<BTreeSet<Option<MasterKeyId>>, DbError> {
        let path = std::path::Path::new("<snapshot>");
        let mut keys = BTreeSet::new();
        for table in self.tables.iter().filter(|t| t.name == SESSIONS.name()) {
            for row in &table.rows {
                let record: records::SessionRecord =
                    records::decode_record(path, SESSIONS.name(), &row.key, &row.value)?;
                keys.insert(record.sealed_under);
            }
        }
        Ok(keys)
    }
}

impl CoordinatorDb {
    /// Every table at one committed state (one read transaction): see [`DbSnapshot`].
    pub fn snapshot(&self) -> Result<DbSnapshot, DbError> {
        const OP: &str = "taking a snapshot";
        self.read(OP, |txn| {
            for handle in txn.list_tables().map_err(|e| self.err(OP, e))? {
                let name = handle.name();
                if name != META && !TABLES.contains(&name) {
                    return Err(DbError::Database {
                        path: self.path.clone(),
                        op: OP,
                        detail: format!("table {name} is not one a snapshot carries"),
                    });
                }
            }
            let mut snap = DbSnapshot::default();
            let mut add = |table: Option<SnapshotTable>| snap.tables.extend(table);
            add(self.dump(txn, SECRETS, |k: &str| k.as_bytes().to_vec())?);
            add(self.dump_records(txn, ENROLMENTS)?);
            add(self.dump_records(txn, JOIN_TOKENS)?);
            add(self.dump_set(txn, BINARIES)?);
            add(self.dump_set(txn, REQUESTERS)?);
            add(self.dump_records(txn, SESSIONS)?);
            add(self.dump_records(txn, PENDING_EPOCHS)?);
            add(self.dump_set(txn, REVOKED_REQUESTERS)?);
            add(self.dump_set(txn, OWED_DELETIONS)?);
            add(self.dump_records(txn, OWED_PROOFS)?);
            add(self.dump(txn, AUDIT_LOG, |k: u64| k.to_be_bytes().to_vec())?);
            add(self.dump(txn, RESTORED, |k: &str| k.as_bytes().to_vec())?);
            Ok(snap)
        })
    }

    /// Puts every row of `snapshot` into this database, which must hold nothing yet (just
    /// created), in one durable transaction: all of it or, on any error, nothing. A table this
    /// build does not know, or a key of the wrong size, is [`DbError::BadSnapshot`].
    pub fn restore_snapshot(&self, snapshot: &DbSnapshot) -> Result<(), DbError> {
        const OP: &str = "restoring a snapshot";
        self.write(OP, |txn| {
            let holds_data = !txn
                .open_table(SECRETS)
                .map_err(|e| self.err(OP, e))?
                .is_empty()
                .map_err(|e| self.err(OP, e))?;
            if holds_data {
                return Err(DbError::BadSnapshot {
                    detail: format!(
                        "{} already holds a coordinator; a snapshot is restored only into a new database",
                        self.path.display()
                    ),
                });
            }
            let mut seen = BTreeSet::new();
            for table in &snapshot.tables {
                if !seen.insert(table.name.as_str()) {
                    return Err(bad(format!("table {} appears twice", table.name)));
                }
                match table.name.as_str() {
                    "secrets" => self.load_text_keyed(txn, SECRETS, table)?,
                    "restored" => self.load_text_keyed(txn, RESTORED, table)?,
                    "enrolments" => self.load_records(txn, ENROLMENTS, table)?,
                    "join_tokens" => self.load_records(txn, JOIN_TOKENS, table)?,
                    "allowed_binaries" => self.load_set(txn, BINARIES, table)?,
                    "requesters" => self.load_set(txn, REQUESTERS, table)?,
                    "sessions" => self.load_records(txn, SESSIONS, table)?,
                    "pending_epochs" => self.load_records(txn, PENDING_EPOCHS, table)?,
                    "revoked_requesters" => self.load_set(txn, REVOKED_REQUESTERS, table)?,
                    "owed_deletions" => self.load_set(txn, OWED_DELETIONS, table)?,
                    "owed_proofs" => self.load_records(txn, OWED_PROOFS, table)?,
                    "audit_log" => self.load_audit(txn, table)?,
                    other => return Err(bad(format!("unknown table {other:?}"))),
                }
            }
            Ok(((), true))
        })
    }

    /// Reads every record of a restored database back (secrets, enrolments, sessions, rotations
    /// in flight, owed deletions, the audit trail), so a restore that would not start fails
    /// before it is put in place.
    pub fn check_restored(&self) -> Result<(), DbError> {
        if self.secrets()?.is_none() {
            return Err(bad("it holds no coordinator secrets".into()));
        }
        self.enrolments()?;
        self.sessions()?;
        self.pending_epochs()?;
        self.owed_deletions()?;
        self.audit_since(0)?;
        Ok(())
    }

    /// Every row of a table, each key and value as bytes; `None` if the table was never created.
    fn dump_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        txn: &ReadTransaction,
        def: TableDefinition<'static, K, V>,
        key_bytes: impl Fn(K::SelfType<'_>) -> Vec<u8>,
        value_bytes: impl Fn(V::SelfType<'_>) -> Vec<u8>,
    ) -> Result<Option<SnapshotTable>, DbError> {
        const OP: &str = "taking a snapshot";
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(OP, e)),
        };
        let mut rows = Vec::new();
        for entry in t.iter().map_err(|e| self.err(OP, e))? {
            let (k, v) = entry.map_err(|e| self.err(OP, e))?;
            rows.push(SnapshotRow {
                key: key_bytes(k.value()),
                value: value_bytes(v.value()),
            });
        }
        Ok(Some(SnapshotTable {
            name: def.name().to_string(),
            rows,
        }))
    }

    /// A table whose values are byte strings.
    fn dump<K: redb::Key + 'static>(
        &self,
        txn: &ReadTransaction,
        def: TableDefinition<'static, K, &'static [u8]>,
        key_bytes: impl Fn(K::SelfType<'_>) -> Vec<u8>,
    ) -> Result<Option<SnapshotTable>, DbError> {
        self.dump_table(txn, def, key_bytes, |v: &[u8]| v.to_vec())
    }

    fn dump_records<const N: usize>(
        &self,
        txn: &ReadTransaction,
        def: Records<N>,
    ) -> Result<Option<SnapshotTable>, DbError> {
        self.dump(txn, def, |k: &[u8; N]| k.to_vec())
    }

    /// A table of fixed-size keys and no values.
    fn dump_set<const N: usize>(
        &self,
        txn: &ReadTransaction,
        def: TableDefinition<'static, &'static [u8; N], ()>,
    ) -> Result<Option<SnapshotTable>, DbError> {
        self.dump_table(txn, def, |k: &[u8; N]| k.to_vec(), |()| Vec::new())
    }

    /// Inserts a table of UTF-8 keys and byte-string values.
    fn load_text_keyed(
        &self,
        txn: &WriteTransaction,
        def: TableDefinition<'static, &'static str, &'static [u8]>,
        table: &SnapshotTable,
    ) -> Result<(), DbError> {
        const OP: &str = "restoring a snapshot";
        let mut t = txn.open_table(def).map_err(|e| self.err(OP, e))?;
        for row in &table.rows {
            let key = std::str::from_utf8(&row.key)
                .map_err(|_| bad(format!("table {}: a key that is not UTF-8", table.name)))?;
            t.insert(key, row.value.as_slice())
                .map_err(|e| self.err(OP, e))?;
        }
        Ok(())
    }

    /// Inserts the audit trail (8-byte big-endian sequence numbers).
    fn load_audit(&self, txn: &WriteTransaction, table: &SnapshotTable) -> Result<(), DbError> {
        const OP: &str = "restoring a snapshot";
        let mut t = txn.open_table(AUDIT_LOG).map_err(|e| self.err(OP, e))?;
        for row in &table.rows {
            let seq = u64::from_be_bytes(fixed_key::<8>(table, &row.key)?);
            t.insert(seq, row.value.as_slice())
                .map_err(|e| self.err(OP, e))?;
        }
        Ok(())
    }

    fn load_records<const N: usize>(
        &self,
        txn: &WriteTransaction,
        def: Records<N>,
        table: &SnapshotTable,
    ) -> Result<(), DbError> {
        const OP: &str = "restoring a snapshot";
        let mut t = txn.open_table(def).map_err(|e| self.err(OP, e))?;
        for row in &table.rows {
            let key = fixed_key::<N>(table, &row.key)?;
            t.insert(&key, row.value.as_slice())
                .map_err(|e| self.err(OP, e))?;
        }
        Ok(())
    }

    fn load_set<const N: usize>(
        &self,
        txn: &WriteTransaction,
        def: TableDefinition<'static, &'static [u8; N], ()>,
        table: &SnapshotTable,
    ) -> Result<(), DbError> {
        const OP: &str = "restoring a snapshot";
        let mut t = txn.open_table(def).map_err(|e| self.err(OP, e))?;
        for row in &table.rows {
            if !row.value.is_empty() {
                return Err(bad(format!("table {}: a row with a value", table.name)));
            }
            let key = fixed_key::<N>(table, &row.key)?;
            t.insert(&key, ()).map_err(|e| self.err(OP, e))?;
        }
        Ok(())
    }
}

fn fixed_key<const N: usize>(table: &SnapshotTable, key: &[u8]) -> Result<[u8; N], DbError> {
    <[u8; N]>::try_from(key).map_err(|_| {
        bad(format!(
            "table {}: a key of {} bytes, expected {N}",
            table.name,
            key.len()
        ))
    })
}

fn bad(detail: String) -> DbError {
    DbError::BadSnapshot { detail }
}
