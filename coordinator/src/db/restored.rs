//! Whether this database came from a backup, and from when (decision 0046): a session whose last
//! commit is no newer than the backup may have rotated since, so its holders may rightly have
//! deleted the epoch the record names. An optional table, written by `coordinator restore`.

use super::{CoordinatorDb, DbError, records};
use redb::{TableDefinition, TableError, TableHandle};
use serde::{Deserialize, Serialize};

/// One record under [`KEY`]. Created by the first restore.
pub(super) const RESTORED: TableDefinition<&str, &[u8]> = TableDefinition::new("restored");
const KEY: &str = "backup";

/// The backup a database was restored from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredFrom {
    /// When that backup was taken, milliseconds since the Unix epoch.
    pub backup_created_at_ms: u64,
}

impl CoordinatorDb {
    /// Records that this database was restored from a backup taken at `backup_created_at_ms`
    /// (replacing an earlier mark), durably.
    pub fn mark_restored(&self, backup_created_at_ms: u64) -> Result<(), DbError> {
        const OP: &str = "marking the database restored";
        let bytes = records::encode_record(
            "restore mark",
            &RestoredFrom {
                backup_created_at_ms,
            },
        )?;
        self.write(OP, |txn| {
            let mut t = txn.open_table(RESTORED).map_err(|e| self.err(OP, e))?;
            t.insert(KEY, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            Ok(((), true))
        })
    }

    /// The backup this database was last restored from, if any.
    pub fn restored_from(&self) -> Result<Option<RestoredFrom>, DbError> {
        const OP: &str = "reading the restore mark";
        self.read(OP, |txn| {
            let t = match txn.open_table(RESTORED) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.err(OP, e)),
            };
            let Some(guard) = t.get(KEY).map_err(|e| self.err(OP, e))? else {
                return Ok(None);
            };
            records::decode_record(&self.path, RESTORED.name(), KEY.as_bytes(), guard.value())
                .map(Some)
        })
    }
}
