//! Deletions owed to holders: shares of a rolled-back, aborted or superseded epoch that a holder
//! must still be told to delete. Recorded in the same transaction that makes them owed, settled
//! one by one as holders acknowledge, so a crash loses none.

use super::records::{PendingEpoch, SessionRecord};
use super::{CoordinatorDb, DbError, PENDING_EPOCHS, Records, SESSIONS, records};
use protocols::ids::{Epoch, NodeId, SessionId, ShareIndex};
use redb::{ReadableTable, TableDefinition, TableError};
use tracing::debug;

/// Owed deletions keyed by session ‖ epoch (big-endian) ‖ node. An optional table, created on
/// first use, so that databases written before it existed keep their layout.
pub(super) const OWED_DELETIONS: TableDefinition<&[u8; 52], ()> =
    TableDefinition::new("owed_deletions");

/// The share proofs owed with a deletion (docs/protocol/holder-audits.md): same key as
/// [`OWED_DELETIONS`], the value the holder's index and public share (33 bytes). Optional and
/// created on first use, like the deletions; a row never outlives its deletion.
pub(super) const OWED_PROOFS: Records<52> = TableDefinition::new("owed_proofs");

/// One holder that must delete its share of one epoch of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwedDeletion {
    /// The session.
    pub session: SessionId,
    /// The epoch to delete.
    pub epoch: Epoch,
    /// The holder.
    pub node: NodeId,
    /// The share the holder must prove before it deletes (a superseded epoch of a session
    /// boxed to its holders); `None`: a plain deletion.
    pub prove: Option<ShareToProve>,
}

/// The share a holder proves it still holds before deleting it: what the coordinator kept of
/// the superseded epoch's commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareToProve {
    /// The holder's index in that epoch.
    pub index: ShareIndex,
    /// Its public share `P_i`, compressed.
    pub public_share: [u8; 32],
}

impl ShareToProve {
    fn to_bytes(self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.index;
        out[1..].copy_from_slice(&self.public_share);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&index, public) = bytes.split_first()?;
        Some(Self {
            index,
            public_share: public.try_into().ok()?,
        })
    }
}

impl OwedDeletion {
    pub(super) fn key(&self) -> [u8; 52] {
        let mut key = [0u8; 52];
        key[..16].copy_from_slice(&self.session.0);
        key[16..20].copy_from_slice(&self.epoch.to_be_bytes());
        key[20..].copy_from_slice(&self.node.0);
        key
    }

    fn from_key(key: &[u8; 52]) -> Self {
        let mut session = [0u8; 16];
        session.copy_from_slice(&key[..16]);
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&key[16..20]);
        let mut node = [0u8; 32];
        node.copy_from_slice(&key[20..]);
        Self {
            session: SessionId(session),
            epoch: Epoch::from_be_bytes(epoch),
            node: NodeId(node),
            prove: None,
        }
    }

    /// Every holder of `pending`, owing the deletion of its epoch.
    pub fn of_pending(pending: &PendingEpoch) -> Vec<Self> {
        pending
            .holders
            .iter()
            .map(|h| Self {
                session: pending.session,
                epoch: pending.epoch,
                node: h.node,
                prove: None,
            })
            .collect()
    }
}

impl CoordinatorDb {
    /// Removes, inside `txn`, every deletion owed for `session`; returns how many there were.
    /// (A write transaction creates the table if it is missing; it is left empty then.)
    pub(super) fn drop_owed_of(
        &self,
        txn: &redb::WriteTransaction,
        session: &SessionId,
        op: &'static str,
    ) -> Result<usize, DbError> {
        let mut table = txn
            .open_table(OWED_DELETIONS)
            .map_err(|e| self.err(op, e))?;
        let first = OwedDeletion {
            session: *session,
            epoch: 0,
            node: NodeId([0; 32]),
            prove: None,
        }
        .key();
        let last = OwedDeletion {
            session: *session,
            epoch: Epoch::MAX,
            node: NodeId([0xff; 32]),
            prove: None,
        }
        .key();
        let removed = table
            .extract_from_if::<&[u8; 52], _>(&first..=&last, |_, _| true)
            .map_err(|e| self.err(op, e))?
            .count();
        let mut proofs = txn.open_table(OWED_PROOFS).map_err(|e| self.err(op, e))?;
        proofs
            .extract_from_if::<&[u8; 52], _>(&first..=&last, |_, _| true)
            .map_err(|e| self.err(op, e))?
            .for_each(drop);
        Ok(removed)
    }

    /// Every deletion still owed, in (session, epoch, node) order.
    pub fn owed_deletions(&self) -> Result<Vec<OwedDeletion>, DbError> {
        const OP: &str = "listing owed deletions";
        self.read(OP, |txn| {
            let table = match txn.open_table(OWED_DELETIONS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(self.err(OP, e)),
            };
            let proofs = match txn.open_table(OWED_PROOFS) {
                Ok(t) => Some(t),
                Err(TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(self.err(OP, e)),
            };
            let mut out = Vec::new();
            for entry in table.iter().map_err(|e| self.err(OP, e))? {
                let (k, _) = entry.map_err(|e| self.err(OP, e))?;
                let mut owed = OwedDeletion::from_key(k.value());
                if let Some(proofs) = &proofs {
                    owed.prove = proofs
                        .get(k.value())
                        .map_err(|e| self.err(OP, e))?
                        .and_then(|v| ShareToProve::from_bytes(v.value()));
                }
                out.push(owed);
            }
            Ok(out)
        })
    }

    /// Marks a deletion acknowledged by its holder, durably; `false` if it was not owed.
    pub fn settle_deletion(&self, owed: &OwedDeletion) -> Result<bool, DbError> {
        const OP: &str = "settling an owed deletion";
        self.write(OP, |txn| {
            let removed = Self::remove_owed(txn, owed).map_err(|e| self.err(OP, e))?;
            Ok((removed, removed))
        })
    }

    /// Removes one owed deletion and its proof, if owed; whether it was.
    fn remove_owed(txn: &redb::WriteTransaction, owed: &OwedDeletion) -> Result<bool, redb::Error> {
        let removed = txn
            .open_table(OWED_DELETIONS)?
            .remove(&owed.key())?
            .is_some();
        txn.open_table(OWED_PROOFS)?.remove(&owed.key())?;
        Ok(removed)
    }

    /// Records `owed` inside `txn` (with the proof each one is owed with).
    pub(super) fn insert_owed(
        txn: &redb::WriteTransaction,
        owed: &[OwedDeletion],
    ) -> Result<(), redb::Error> {
        let mut table = txn.open_table(OWED_DELETIONS)?;
        for d in owed {
            table.insert(&d.key(), ())?;
        }
        if owed.iter().any(|d| d.prove.is_some()) {
            let mut proofs = txn.open_table(OWED_PROOFS)?;
            for d in owed {
                if let Some(p) = d.prove {
                    proofs.insert(&d.key(), p.to_bytes().as_slice())?;
                }
            }
        }
        Ok(())
    }

    /// Marks every deletion in `owed` acknowledged, in one durable transaction.
    pub fn settle_deletions(&self, owed: &[OwedDeletion]) -> Result<(), DbError> {
        const OP: &str = "settling owed deletions";
        if owed.is_empty() {
            return Ok(());
        }
        self.write(OP, |txn| {
            for d in owed {
                Self::remove_owed(txn, d).map_err(|e| self.err(OP, e))?;
            }
            Ok(((), true))
        })
    }

    /// Gives up the rotation (or creation) in flight of `session` in one durable transaction:
    /// its pending epoch is removed and every holder it was dealt to owes the deletion of that
    /// epoch. Returns the pending epoch, if there was one.
    pub fn retire_pending_epoch(
        &self,
        session: &SessionId,
    ) -> Result<Option<PendingEpoch>, DbError> {
        const OP: &str = "retiring a pending epoch";
        let pending: Option<PendingEpoch> = self.get_record(OP, PENDING_EPOCHS, &session.0)?;
        let Some(pending) = pending else {
            return Ok(None);
        };
        self.write(OP, |txn| {
            let mut table = txn
                .open_table(PENDING_EPOCHS)
                .map_err(|e| self.err(OP, e))?;
            table.remove(&session.0).map_err(|e| self.err(OP, e))?;
            Self::insert_owed(txn, &OwedDeletion::of_pending(&pending))
                .map_err(|e| self.err(OP, e))?;
            Ok(((), true))
        })?;
        debug!(%session, epoch = pending.epoch, "pending epoch retired; its holders owe a deletion");
        Ok(Some(pending))
    }

    /// Start-up recovery: retires every epoch a crash left pending (a creation or a rotation
    /// never committed), each in its own transaction; returns those retired. Their holders owe
    /// the deletions, delivered once they are reachable.
    pub fn retire_all_pending_epochs(&self) -> Result<Vec<PendingEpoch>, DbError> {
        let mut retired = Vec::new();
        for p in self.pending_epochs()? {
            if let Some(p) = self.retire_pending_epoch(&p.session)? {
                retired.push(p);
            }
        }
        Ok(retired)
    }

    /// Completes a rotation or creation in one durable transaction: stores `s`, deletes the
    /// pending epoch of `s.session` (if any) and records `owed` (the old epoch's holders, and
    /// holders that were dealt a share but never acknowledged it). After a crash either all of
    /// it happened or none.
    pub fn commit_epoch_owing(
        &self,
        s: &SessionRecord,
        owed: &[OwedDeletion],
    ) -> Result<(), DbError> {
        const OP: &str = "committing an epoch";
        let bytes = records::encode_record("session record", s)?;
        self.write(OP, |txn| {
            let mut sessions = txn.open_table(SESSIONS).map_err(|e| self.err(OP, e))?;
            sessions
                .insert(&s.session.0, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            let mut pending = txn
                .open_table(PENDING_EPOCHS)
                .map_err(|e| self.err(OP, e))?;
            pending.remove(&s.session.0).map_err(|e| self.err(OP, e))?;
            if !owed.is_empty() {
                Self::insert_owed(txn, owed).map_err(|e| self.err(OP, e))?;
            }
            Ok(((), true))
        })?;
        debug!(session = %s.session, epoch = s.epoch, owed = owed.len(), "epoch committed");
        Ok(())
    }
}
