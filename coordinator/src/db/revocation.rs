//! Taking grants back: requesters removed (kept on a revoked list so that a requester named by a
//! session is refused too) and sessions revoked (their holders owe the deletion of their shares).

use super::deletions::OwedDeletion;
use super::records::{self, PendingEpoch, SessionRecord};
use super::{CoordinatorDb, DbError, PENDING_EPOCHS, REQUESTERS, SESSIONS, Set};
use protocols::ids::{NodeId, SessionId};
use redb::{ReadableTable, TableDefinition, TableError, TableHandle};
use std::collections::BTreeSet;
use tracing::debug;

/// Requesters removed by an operator; refused a ticket even where a session names them. An
/// optional table, created by the first removal.
pub(super) const REVOKED_REQUESTERS: Set = TableDefinition::new("revoked_requesters");

impl CoordinatorDb {
    /// Removes `node` from the requesters and puts it on the revoked list, in one durable
    /// transaction. `false`, and nothing written, when it is neither an authorised requester,
    /// nor named by a stored session, nor removed already (an unknown or mistyped PeerId).
    pub fn revoke_requester(&self, node: &NodeId) -> Result<bool, DbError> {
        const OP: &str = "removing a requester";
        let named = self
            .sessions()?
            .iter()
            .any(|s| s.creator == *node || s.policy.requesters.contains(node));
        let found = self.write(OP, |txn| {
            let authorised = txn
                .open_table(REQUESTERS)
                .map_err(|e| self.err(OP, e))?
                .remove(&node.0)
                .map_err(|e| self.err(OP, e))?
                .is_some();
            let mut revoked = txn
                .open_table(REVOKED_REQUESTERS)
                .map_err(|e| self.err(OP, e))?;
            let already = revoked
                .insert(&node.0, ())
                .map_err(|e| self.err(OP, e))?
                .is_some();
            let found = authorised || named || already;
            Ok((found, found))
        })?;
        if found {
            debug!(%node, "requester removed");
        }
        Ok(found)
    }

    /// Whether `node` was removed by [`Self::revoke_requester`] (and not added again since).
    pub fn requester_revoked(&self, node: &NodeId) -> Result<bool, DbError> {
        const OP: &str = "checking a requester";
        self.read(OP, |txn| match txn.open_table(REVOKED_REQUESTERS) {
            Ok(t) => Ok(t.get(&node.0).map_err(|e| self.err(OP, e))?.is_some()),
            Err(TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(self.err(OP, e)),
        })
    }

    /// Every removed requester.
    pub fn revoked_requesters(&self) -> Result<BTreeSet<NodeId>, DbError> {
        const OP: &str = "listing removed requesters";
        self.read(OP, |txn| {
            let t = match txn.open_table(REVOKED_REQUESTERS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeSet::new()),
                Err(e) => return Err(self.err(OP, e)),
            };
            let mut out = BTreeSet::new();
            for entry in t.iter().map_err(|e| self.err(OP, e))? {
                let (k, _) = entry.map_err(|e| self.err(OP, e))?;
                out.insert(NodeId(*k.value()));
            }
            Ok(out)
        })
    }

    /// Revokes the session `id` in one durable transaction: its record is removed, and every
    /// holder of its current epoch and of a rotation in flight owes the deletion of its share
    /// (delivered like every owed deletion, decision 0030). `None`, and nothing written, when
    /// there is no such session.
    pub fn revoke_session(&self, id: &SessionId) -> Result<Option<SessionRecord>, DbError> {
        const OP: &str = "revoking a session";
        let revoked = self.write(OP, |txn| {
            let record: SessionRecord = {
                let mut sessions = txn.open_table(SESSIONS).map_err(|e| self.err(OP, e))?;
                let Some(guard) = sessions.remove(&id.0).map_err(|e| self.err(OP, e))? else {
                    return Ok((None, false));
                };
                records::decode_record(&self.path, SESSIONS.name(), &id.0, guard.value())?
            };
            records::filed_under(&self.path, SESSIONS.name(), &id.0, &record.session)?;
            let pending: Option<PendingEpoch> = {
                let mut table = txn
                    .open_table(PENDING_EPOCHS)
                    .map_err(|e| self.err(OP, e))?;
                let removed = table.remove(&id.0).map_err(|e| self.err(OP, e))?;
                match removed {
                    Some(guard) => Some(records::decode_record(
                        &self.path,
                        PENDING_EPOCHS.name(),
                        &id.0,
                        guard.value(),
                    )?),
                    None => None,
                }
            };
            let mut owed: Vec<OwedDeletion> = record
                .holders
                .iter()
                .map(|h| OwedDeletion {
                    session: *id,
                    epoch: record.epoch,
                    node: h.node,
                    prove: None,
                })
                .collect();
            if let Some(p) = &pending {
                owed.extend(OwedDeletion::of_pending(p));
            }
            Self::insert_owed(txn, &owed).map_err(|e| self.err(OP, e))?;
            Ok((Some(record), true))
        })?;
        if let Some(r) = &revoked {
            debug!(session = %id, holders = r.holders.len(), "session revoked; its holders owe a deletion");
        }
        Ok(revoked)
    }
}
