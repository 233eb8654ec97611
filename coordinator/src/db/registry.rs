//! Who may do what: the coordinator's secrets, enrolments, join tokens and allowlists.

use super::records::{self, CoordinatorSecrets, Enrolment, JoinToken};
use super::{
    BINARIES, CoordinatorDb, DbError, ENROLMENTS, JOIN_TOKENS, REQUESTERS, SECRETS, SECRETS_KEY,
    Set,
};
use protocols::ids::NodeId;
use redb::{ReadableTable, TableHandle};
use std::collections::BTreeSet;
use tracing::{debug, info};
use zeroize::Zeroizing;

impl CoordinatorDb {
    /// Stores the coordinator's secrets, durably; [`DbError::AlreadyInitialised`] (and nothing
    /// written) if secrets are already stored.
    pub fn init_secrets(&self, s: &CoordinatorSecrets) -> Result<(), DbError> {
        const OP: &str = "storing the coordinator's secrets";
        let bytes = Zeroizing::new(records::encode_record("secrets record", s)?);
        self.write(OP, |txn| {
            let mut t = txn.open_table(SECRETS).map_err(|e| self.err(OP, e))?;
            if t.get(SECRETS_KEY).map_err(|e| self.err(OP, e))?.is_some() {
                return Err(DbError::AlreadyInitialised {
                    path: self.path.clone(),
                });
            }
            t.insert(SECRETS_KEY, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            Ok(((), true))
        })?;
        info!(path = %self.path.display(), "coordinator secrets stored");
        Ok(())
    }

    /// The coordinator's secrets, if [`Self::init_secrets`] stored them.
    pub fn secrets(&self) -> Result<Option<CoordinatorSecrets>, DbError> {
        const OP: &str = "reading the coordinator's secrets";
        self.read(OP, |txn| {
            let t = txn.open_table(SECRETS).map_err(|e| self.err(OP, e))?;
            let Some(guard) = t.get(SECRETS_KEY).map_err(|e| self.err(OP, e))? else {
                return Ok(None);
            };
            records::decode_record(
                &self.path,
                SECRETS.name(),
                SECRETS_KEY.as_bytes(),
                guard.value(),
            )
            .map(Some)
        })
    }

    /// Enrols `node`, or relabels it if already enrolled (keeping the share key it stated),
    /// durably.
    pub fn enrol(&self, node: &NodeId, e: &Enrolment) -> Result<(), DbError> {
        const OP: &str = "enrolling a peer";
        self.write(OP, |txn| {
            let mut enrolments = txn.open_table(ENROLMENTS).map_err(|e| self.err(OP, e))?;
            let mut e = e.clone();
            if e.share_key.is_none() {
                e.share_key = self
                    .enrolment_in(&enrolments, node)?
                    .and_then(|old| old.share_key);
            }
            let bytes = records::encode_record("enrolment", &e)?;
            enrolments
                .insert(&node.0, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            Ok(((), true))
        })?;
        debug!(%node, region = %e.region, operator = %e.operator, "peer enrolled");
        Ok(())
    }

    /// Records the share key `node` stated in a valid attestation, durably. `Ok(false)` when
    /// `node` is not enrolled (removed meanwhile): nothing is written.
    pub fn record_share_key(
        &self,
        node: &NodeId,
        share_key: protocols::share_box::BoxPublic,
    ) -> Result<bool, DbError> {
        const OP: &str = "recording a share key";
        self.write(OP, |txn| {
            let mut enrolments = txn.open_table(ENROLMENTS).map_err(|e| self.err(OP, e))?;
            let Some(mut e) = self.enrolment_in(&enrolments, node)? else {
                return Ok((false, false));
            };
            e.share_key = Some(share_key);
            let bytes = records::encode_record("enrolment", &e)?;
            enrolments
                .insert(&node.0, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            Ok((true, true))
        })
    }

    /// `node`'s enrolment as `table` holds it.
    fn enrolment_in(
        &self,
        table: &redb::Table<'_, &'static [u8; 32], &'static [u8]>,
        node: &NodeId,
    ) -> Result<Option<Enrolment>, DbError> {
        let Some(guard) = table
            .get(&node.0)
            .map_err(|e| self.err("reading an enrolment", e))?
        else {
            return Ok(None);
        };
        records::decode_record(&self.path, ENROLMENTS.name(), &node.0, guard.value()).map(Some)
    }

    /// Removes `node`'s enrolment, durably; `false` if it was not enrolled.
    pub fn unenrol(&self, node: &NodeId) -> Result<bool, DbError> {
        let removed = self.remove("unenrolling a peer", ENROLMENTS, &node.0)?;
        if removed {
            debug!(%node, "peer unenrolled");
        }
        Ok(removed)
    }

    /// Every enrolment, by node id.
    pub fn enrolments(&self) -> Result<Vec<(NodeId, Enrolment)>, DbError> {
        Ok(self
            .all_records("listing enrolments", ENROLMENTS)?
            .into_iter()
            .map(|(k, e)| (NodeId(k), e))
            .collect())
    }

    /// Stores a join token under the SHA-256 of the token, durably (replacing one of that digest).
    pub fn add_join_token(&self, token_sha256: [u8; 32], t: &JoinToken) -> Result<(), DbError> {
        let bytes = records::encode_record("join token", t)?;
        self.put_bytes("storing a join token", JOIN_TOKENS, &token_sha256, &bytes)?;
        debug!(expires_at_ms = t.expires_at_ms, "join token stored");
        Ok(())
    }

    /// Redeems the join token of digest `token_sha256` for `node`, in one durable transaction:
    /// a token that exists and has not expired (`now_ms < expires_at_ms`) is deleted and `node`
    /// is enrolled (or relabelled) with its labels at `now_ms`. `Ok(None)` if the token is absent
    /// or expired; an expired token is deleted.
    pub fn redeem_join_token(
        &self,
        token_sha256: &[u8; 32],
        node: &NodeId,
        now_ms: u64,
    ) -> Result<Option<Enrolment>, DbError> {
        const OP: &str = "redeeming a join token";
        let enrolment = self.write(OP, |txn| {
            let mut tokens = txn.open_table(JOIN_TOKENS).map_err(|e| self.err(OP, e))?;
            let token: JoinToken = {
                let Some(guard) = tokens.get(token_sha256).map_err(|e| self.err(OP, e))? else {
                    return Ok((None, false));
                };
                records::decode_record(&self.path, JOIN_TOKENS.name(), token_sha256, guard.value())?
            };
            tokens.remove(token_sha256).map_err(|e| self.err(OP, e))?;
            if token.expires_at_ms <= now_ms {
                return Ok((None, true));
            }
            let mut enrolments = txn.open_table(ENROLMENTS).map_err(|e| self.err(OP, e))?;
            let enrolment = Enrolment {
                region: token.region,
                operator: token.operator,
                enrolled_at_ms: now_ms,
                share_key: self
                    .enrolment_in(&enrolments, node)?
                    .and_then(|e| e.share_key),
            };
            let bytes = records::encode_record("enrolment", &enrolment)?;
            enrolments
                .insert(&node.0, bytes.as_slice())
                .map_err(|e| self.err(OP, e))?;
            Ok((Some(enrolment), true))
        })?;
        match &enrolment {
            Some(e) => {
                info!(%node, region = %e.region, operator = %e.operator, "join token redeemed")
            }
            None => debug!(%node, "join token absent or expired"),
        }
        Ok(enrolment)
    }

    /// Allows the peer binary of SHA-256 `sha256`, durably.
    pub fn allow_binary(&self, sha256: [u8; 32]) -> Result<(), DbError> {
        self.insert_key("allowing a binary", BINARIES, &sha256)
    }

    /// Withdraws the binary of SHA-256 `sha256`, durably; `false` if it was not allowed.
    pub fn disallow_binary(&self, sha256: &[u8; 32]) -> Result<bool, DbError> {
        self.remove("disallowing a binary", BINARIES, sha256)
    }

    /// The SHA-256 digests of every allowed binary.
    pub fn allowed_binaries(&self) -> Result<BTreeSet<[u8; 32]>, DbError> {
        Ok(self
            .set_keys("listing allowed binaries", BINARIES)?
            .into_iter()
            .collect())
    }

    /// Allows `node` to create sessions, durably, and takes it off the revoked list.
    pub fn add_requester(&self, node: &NodeId) -> Result<(), DbError> {
        const OP: &str = "adding a requester";
        self.write(OP, |txn| {
            txn.open_table(REQUESTERS)
                .map_err(|e| self.err(OP, e))?
                .insert(&node.0, ())
                .map_err(|e| self.err(OP, e))?;
            txn.open_table(super::revocation::REVOKED_REQUESTERS)
                .map_err(|e| self.err(OP, e))?
                .remove(&node.0)
                .map_err(|e| self.err(OP, e))?;
            Ok(((), true))
        })
    }

    /// Withdraws `node`'s right to create sessions, durably; `false` if it had none.
    pub fn remove_requester(&self, node: &NodeId) -> Result<bool, DbError> {
        self.remove("removing a requester", REQUESTERS, &node.0)
    }

    /// Every node allowed to create sessions.
    pub fn requesters(&self) -> Result<BTreeSet<NodeId>, DbError> {
        Ok(self
            .set_keys("listing requesters", REQUESTERS)?
            .into_iter()
            .map(NodeId)
            .collect())
    }

    /// Adds `key` to a set table, durably.
    fn insert_key(&self, op: &'static str, table: Set, key: &[u8; 32]) -> Result<(), DbError> {
        self.write(op, |txn| {
            let mut t = txn.open_table(table).map_err(|e| self.err(op, e))?;
            t.insert(key, ()).map_err(|e| self.err(op, e))?;
            Ok(((), true))
        })
    }
}
