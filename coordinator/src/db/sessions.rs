//! Sessions and the rotations in flight, with the one transaction that completes a rotation.

use super::records::{self, PendingEpoch, SessionRecord};
use super::{CoordinatorDb, DbError, PENDING_EPOCHS, SESSIONS};
use protocols::ids::SessionId;
use redb::TableHandle;
use tracing::debug;

impl CoordinatorDb {
    /// Stores `s` under its session id (replacing any record there), durably once `Ok`.
    pub fn put_session(&self, s: &SessionRecord) -> Result<(), DbError> {
        let bytes = records::encode_record("session record", s)?;
        self.put_bytes("storing a session", SESSIONS, &s.session.0, &bytes)?;
        debug!(session = %s.session, epoch = s.epoch, "session stored");
        Ok(())
    }

    /// The session `id`, if stored.
    pub fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, DbError> {
        let record: Option<SessionRecord> =
            self.get_record("reading a session", SESSIONS, &id.0)?;
        if let Some(r) = &record {
            records::filed_under(&self.path, SESSIONS.name(), &id.0, &r.session)?;
        }
        Ok(record)
    }

    /// Every stored session, by session id.
    pub fn sessions(&self) -> Result<Vec<SessionRecord>, DbError> {
        self.all_records("listing sessions", SESSIONS)?
            .into_iter()
            .map(|(k, r): (_, SessionRecord)| {
                records::filed_under(&self.path, SESSIONS.name(), &k, &r.session).map(|()| r)
            })
            .collect()
    }

    /// Deletes the session `id` at its expiry, durably; `false` if there was none. Deletions
    /// still owed for it go in the same transaction: every share of a session expires with it and
    /// holders delete expired shares themselves, so a holder that never came back is owed nothing
    /// more (decision 0030). Its pending epoch, if any, is left to
    /// [`Self::delete_pending_epoch`].
    pub fn delete_session(&self, id: &SessionId) -> Result<bool, DbError> {
        const OP: &str = "deleting a session";
        let (removed, dropped) = self.write(OP, |txn| {
            let removed = txn
                .open_table(SESSIONS)
                .map_err(|e| self.err(OP, e))?
                .remove(&id.0)
                .map_err(|e| self.err(OP, e))?
                .is_some();
            let dropped = self.drop_owed_of(txn, id, OP)?;
            Ok(((removed, dropped), removed || dropped > 0))
        })?;
        if removed || dropped > 0 {
            debug!(session = %id, owed_deletions_dropped = dropped, "session deleted");
        }
        Ok(removed)
    }

    /// Records a rotation in flight (replacing any of that session), durably.
    pub fn put_pending_epoch(&self, p: &PendingEpoch) -> Result<(), DbError> {
        let bytes = records::encode_record("pending epoch", p)?;
        self.put_bytes(
            "storing a pending epoch",
            PENDING_EPOCHS,
            &p.session.0,
            &bytes,
        )?;
        debug!(session = %p.session, epoch = p.epoch, "pending epoch stored");
        Ok(())
    }

    /// Every rotation in flight, by session id.
    pub fn pending_epochs(&self) -> Result<Vec<PendingEpoch>, DbError> {
        self.all_records("listing pending epochs", PENDING_EPOCHS)?
            .into_iter()
            .map(|(k, p): (_, PendingEpoch)| {
                records::filed_under(&self.path, PENDING_EPOCHS.name(), &k, &p.session).map(|()| p)
            })
            .collect()
    }

    /// Deletes the rotation in flight of `session`, durably; `false` if there was none.
    pub fn delete_pending_epoch(&self, session: &SessionId) -> Result<bool, DbError> {
        let removed = self.remove("deleting a pending epoch", PENDING_EPOCHS, &session.0)?;
        if removed {
            debug!(%session, "pending epoch deleted");
        }
        Ok(removed)
    }

    /// Completes a rotation in one durable transaction: stores `s` and deletes the pending epoch
    /// of `s.session` (if any). After a crash either both happened or neither.
    pub fn commit_epoch(&self, s: &SessionRecord) -> Result<(), DbError> {
        self.commit_epoch_owing(s, &[])
    }
}
