//! The audit trail: an append-only table of who did what and when (admin actions, enrolments,
//! join-token redemptions, ticket issuances), trimmed to the newest [`AUDIT_KEEP`] entries.

use super::{CoordinatorDb, DbError, records};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError, TableHandle};
use serde::{Deserialize, Serialize};
use tracing::info;

/// Audit entries keyed by their sequence number. An optional table, created by the first entry,
/// so that databases written before it existed keep their layout.
pub(super) const AUDIT_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_log");

/// Entries kept; the oldest beyond it are removed by the append that adds one (decision 0045).
pub const AUDIT_KEEP: u64 = 100_000;

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the trail, from 1; set by [`CoordinatorDb::append_audit`].
    pub seq: u64,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who: `operator (admin socket, uid 0)`, `peer <PeerId>`, `requester <PeerId>`, …
    pub actor: String,
    /// What: `requesters remove`, `sessions revoke`, `ticket`, `join`, …
    pub action: String,
    /// The PeerId, session id or digest acted on.
    pub subject: String,
    /// Anything else worth knowing (labels, epoch, lifetime).
    pub detail: String,
}

impl AuditEntry {
    /// An entry to append (its `seq` is set when appended).
    pub fn new(
        at_ms: u64,
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            seq: 0,
            at_ms,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

impl CoordinatorDb {
    /// Appends `entry` durably under the next sequence number, keeping the newest
    /// [`AUDIT_KEEP`], and logs it at INFO. Returns the entry as stored.
    pub fn append_audit(&self, entry: AuditEntry) -> Result<AuditEntry, DbError> {
        self.append_audit_keeping(entry, AUDIT_KEEP)
    }

    /// [`Self::append_audit`] keeping the newest `keep` entries.
    pub fn append_audit_keeping(
        &self,
        mut entry: AuditEntry,
        keep: u64,
    ) -> Result<AuditEntry, DbError> {
        const OP: &str = "appending to the audit trail";
        let entry = self.write(OP, |txn| {
            let mut t = txn.open_table(AUDIT_LOG).map_err(|e| self.err(OP, e))?;
            let last = t
                .last()
                .map_err(|e| self.err(OP, e))?
                .map(|(k, _)| k.value())
                .unwrap_or(0);
            entry.seq = last.saturating_add(1);
            let bytes = records::encode_record("audit entry", &entry)?;
            t.insert(entry.seq, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            while t.len().map_err(|e| self.err(OP, e))? > keep.max(1) {
                if t.pop_first().map_err(|e| self.err(OP, e))?.is_none() {
                    break;
                }
            }
            Ok((entry, true))
        })?;
        info!(
            target: "entroshard::audit",
            seq = entry.seq,
            actor = %entry.actor,
            action = %entry.action,
            subject = %entry.subject,
            detail = %entry.detail,
            "audit"
        );
        Ok(entry)
    }

    /// The sequence number of the newest entry (0: none yet).
    pub(super) fn audit_last_seq(&self) -> Result<u64, DbError> {
        const OP: &str = "reading the audit trail";
        self.read(OP, |txn| match txn.open_table(AUDIT_LOG) {
            Ok(t) => Ok(t
                .last()
                .map_err(|e| self.err(OP, e))?
                .map(|(k, _)| k.value())
                .unwrap_or(0)),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.err(OP, e)),
        })
    }

    /// Every kept entry written at or after `since_ms`, oldest first.
    pub fn audit_since(&self, since_ms: u64) -> Result<Vec<AuditEntry>, DbError> {
        const OP: &str = "reading the audit trail";
        self.read(OP, |txn| {
            let t = match txn.open_table(AUDIT_LOG) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(self.err(OP, e)),
            };
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| self.err(OP, e))? {
                let (k, v) = row.map_err(|e| self.err(OP, e))?;
                let seq = k.value();
                let entry: AuditEntry = records::decode_record(
                    &self.path,
                    AUDIT_LOG.name(),
                    &seq.to_be_bytes(),
                    v.value(),
                )?;
                if entry.at_ms >= since_ms {
                    out.push(entry);
                }
            }
            Ok(out)
        })
    }
}
