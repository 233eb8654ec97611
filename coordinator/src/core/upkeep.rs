//! One upkeep tick decided on the loop's [`State`]: which sessions expire (and the deletions
//! their holders are sent), which rotate and on which new holders (or why a rotation is
//! postponed), which holder audits start and which owed deletions are delivered. Every session
//! a tick starts work on is locked in the ledger until the driver reports the work's end.

use super::errors::RotationError;
use super::holder_audits::AuditOrder;
use super::ledger::Mark;
use super::schedule::{self, Cause, Standing};
use super::state::{RoundTrips, State};
use crate::db::{OwedDeletion, SessionRecord};
use protocols::ids::{NodeId, SessionId};
use protocols::wire::{MAX_REDEAL_HOLDERS, NewHolder};

/// The addresses known of the nodes a piece of work talks to.
pub type Addrs = Vec<(NodeId, Vec<libp2p::Multiaddr>)>;

/// An expired session to delete: its holders are sent `deletions` (best effort), then the
/// record is deleted.
#[derive(Debug)]
pub struct Expiry {
    /// The session.
    pub record: SessionRecord,
    /// One plain deletion per holder of its current epoch.
    pub deletions: Vec<OwedDeletion>,
    /// Its holders' addresses.
    pub addrs: Addrs,
}

/// A rotation to run by redistribution, its session locked.
#[derive(Debug)]
pub struct RotationStart {
    /// The session at its current epoch.
    pub record: SessionRecord,
    /// Why it rotates.
    pub cause: Cause,
    /// The new quorum, each holder with the share key it stated, indices from 1.
    pub new_holders: Vec<NewHolder>,
    /// Acknowledgements the commit needs.
    pub min_acks: usize,
    /// Where it started among operator requests (report it back with the outcome).
    pub mark: Mark,
    /// Old and new holders' addresses.
    pub addrs: Addrs,
}

/// Why a rotation due was not started (the session stays on its epoch and is tried again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Postponed {
    /// Its shares were dealt before share keys: its holders cannot redistribute them.
    DealtBeforeShareKeys,
    /// More holders than a redistribution takes.
    TooManyHolders(usize),
    /// No quorum could be chosen (the text says why).
    NoQuorum(String),
    /// The session is busy already.
    Busy,
}

/// A holder audit to run, its session locked.
#[derive(Debug)]
pub struct AuditStart {
    /// The audit.
    pub order: AuditOrder,
    /// Its holders' addresses.
    pub addrs: Addrs,
}

/// Owed deletions to deliver, their sessions locked.
#[derive(Debug)]
pub struct Settlement {
    /// The sessions locked.
    pub sessions: Vec<SessionId>,
    /// The deletions.
    pub owed: Vec<OwedDeletion>,
    /// Their holders' addresses.
    pub addrs: Addrs,
}

/// What one upkeep tick starts, in the order the driver starts it.
#[derive(Debug, Default)]
pub struct Tick {
    /// Expired sessions to delete.
    pub expiries: Vec<Expiry>,
    /// Rotations to run.
    pub rotations: Vec<RotationStart>,
    /// Holder audits to run.
    pub audits: Vec<AuditStart>,
    /// Owed deletions to deliver.
    pub settlement: Option<Settlement>,
}

impl State {
    /// How `node` stands for upkeep at `now_ms`.
    pub fn standing(&self, node: &NodeId, now_ms: u64) -> Standing {
        let rules = &self.rules.sessions;
        schedule::standing(
            &self.peers,
            node,
            now_ms,
            rules.attestation_validity_ms,
            rules.heartbeat_max_age_ms,
        )
    }

    /// Decides the tick at `now_ms` over the stored `sessions` and `owed` deletions: expiries
    /// first, then rotations (a session owing the deletion of a rolled-back next epoch to a
    /// live holder settles first), then the audits due of sessions left free, then owed
    /// deletions of sessions still free. `rng` chooses the rotations' quorums.
    pub fn plan_tick<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        sessions: &[SessionRecord],
        owed: Vec<OwedDeletion>,
        now_ms: u64,
        round_trips: &RoundTrips,
        rng: &mut R,
    ) -> Tick {
        let plan = {
            let standing = |node: &NodeId| self.standing(node, now_ms);
            let requested = self.ledger.requested();
            let mut plan = schedule::plan(
                sessions,
                self.ledger.busy(),
                &requested,
                standing,
                now_ms,
                self.rules.rotation_period_ms,
            );
            schedule::settle_before_rotating(&mut plan, sessions, &owed, standing);
            plan
        };
        for session in &plan.forget_requests {
            self.ledger.forget_request(session);
        }
        let find = |session: &SessionId| sessions.iter().find(|s| &s.session == session);
        let mut tick = Tick::default();
        for session in &plan.expire {
            if let Some(record) = find(session)
                && let Some(expiry) = self.expire(record.clone())
            {
                tick.expiries.push(expiry);
            }
        }
        for (session, cause) in &plan.rotate {
            if let Some(record) = find(session)
                && let Ok(start) =
                    self.start_rotation(record.clone(), *cause, now_ms, round_trips, rng)
            {
                tick.rotations.push(start);
            }
        }
        // After rotations: an audit waits for a session that is rotating now.
        tick.audits = self.start_audits(sessions, now_ms);
        // After rotations start: settling locks a session, and an unreachable holder's
        // deliveries can take a request timeout; settling first would starve its rotations.
        tick.settlement = self.settle(owed);
        tick
    }

    /// Locks an expired session and drops its holders' shares from the ledger; `None` if it is
    /// busy.
    fn expire(&mut self, record: SessionRecord) -> Option<Expiry> {
        if !self.ledger.lock(record.session) {
            return None;
        }
        self.ledger.dropped(record.holders.iter().map(|h| h.node));
        let addrs = self.peers.addrs_of(record.holders.iter().map(|h| h.node));
        // Plain deletions: nothing is owed for an expired session, nothing to prove.
        let deletions = record
            .holders
            .iter()
            .map(|h| OwedDeletion {
                session: record.session,
                epoch: record.epoch,
                node: h.node,
                prove: None,
            })
            .collect();
        Some(Expiry {
            record,
            deletions,
            addrs,
        })
    }

    /// Starts rotating `record` for `cause` by redistribution: chooses the new quorum (from the
    /// peers that stated a share key) and locks the session, or says why not now (logged).
    pub fn start_rotation<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        record: SessionRecord,
        cause: Cause,
        now_ms: u64,
        round_trips: &RoundTrips,
        rng: &mut R,
    ) -> Result<RotationStart, Postponed> {
        let session = record.session;
        if self.ledger.is_busy(&session) {
            return Err(Postponed::Busy);
        }
        let n = usize::from(record.policy.n);
        let k = record.commitments.threshold();
        if !record.boxed {
            // Decision 0057: its holders cannot sub-deal a share sealed under the coordinator's
            // key, and the coordinator no longer rebuilds a key to deal it again.
            tracing::warn!(%session, ?cause, "rotation postponed: the session's shares were dealt before share keys (sealed under the coordinator's key), which its holders cannot redistribute");
            return Err(Postponed::DealtBeforeShareKeys);
        }
        if n > MAX_REDEAL_HOLDERS || record.holders.len() > MAX_REDEAL_HOLDERS {
            tracing::warn!(%session, ?cause, n, "rotation postponed: more holders than a redistribution takes ({MAX_REDEAL_HOLDERS})");
            return Err(Postponed::TooManyHolders(n));
        }
        let quorum = match self.choose_quorum(n, k, now_ms, round_trips, rng) {
            Ok(q) => q,
            Err(e) => {
                let validity = self.rules.sessions.attestation_validity_ms;
                let keyless = self.peers.trusted_without_share_key(now_ms, validity).len();
                let note = super::sessions::keyless_note(keyless);
                let error = format!("{e}{note}");
                tracing::warn!(%session, ?cause, %error, "rotation postponed: no quorum");
                return Err(Postponed::NoQuorum(error));
            }
        };
        // Every holder chosen stated a share key (the quorum skips those that did not).
        let new_holders: Vec<NewHolder> = quorum
            .holders
            .iter()
            .filter_map(|n| Some((*n, self.peers.share_key(n)?)))
            .zip(1u8..)
            .map(|((node, share_key), index)| NewHolder {
                node,
                index,
                share_key,
            })
            .collect();
        let mark = self.ledger.rotation_started(session);
        let mut addrs = self.peers.addrs_of(record.holders.iter().map(|h| h.node));
        addrs.extend(self.peers.addrs_of(quorum.holders.iter().copied()));
        let min_acks = k.max(new_holders.len().saturating_sub(1));
        Ok(RotationStart {
            record,
            cause,
            new_holders,
            min_acks,
            mark,
            addrs,
        })
    }

    /// Locks each session whose holder audit is due and free now.
    fn start_audits(&mut self, sessions: &[SessionRecord], now_ms: u64) -> Vec<AuditStart> {
        let ledger = &self.ledger;
        let orders = self.audits.due(now_ms, sessions, |s| ledger.is_busy(s));
        orders
            .into_iter()
            .map(|order| {
                self.ledger.lock(order.record.session);
                let addrs = self
                    .peers
                    .addrs_of(order.record.holders.iter().map(|h| h.node));
                AuditStart { order, addrs }
            })
            .collect()
    }

    /// The owed deletions (rolled-back, aborted or superseded epochs) of sessions that are not
    /// busy, their sessions locked until the deliveries return; `None` if there are none.
    fn settle(&mut self, owed: Vec<OwedDeletion>) -> Option<Settlement> {
        let owed: Vec<_> = owed
            .into_iter()
            .filter(|d| !self.ledger.is_busy(&d.session))
            .collect();
        if owed.is_empty() {
            return None;
        }
        // Each session once, whatever order the deletions come in (the database lists them by
        // session already).
        let mut sessions: Vec<_> = owed.iter().map(|d| d.session).collect();
        sessions.sort();
        sessions.dedup();
        for session in &sessions {
            self.ledger.lock(*session);
        }
        let mut nodes: Vec<NodeId> = owed.iter().map(|d| d.node).collect();
        nodes.sort();
        nodes.dedup();
        let addrs = self.peers.addrs_of(nodes.into_iter());
        Some(Settlement {
            sessions,
            owed,
            addrs,
        })
    }
}

/// Whether a rotation must wait: a holder chosen again for epoch e+1 still owes the deletion of
/// a rolled-back e+1, and the new share must not race that deletion (the settling task
/// delivers it; the rotation runs after).
pub fn deletion_still_owed(start: &RotationStart, owed: &[OwedDeletion]) -> Option<RotationError> {
    let next = start.record.epoch.saturating_add(1);
    let session = start.record.session;
    owed.iter()
        .find(|d| {
            d.session == session
                && d.epoch == next
                && start.new_holders.iter().any(|h| h.node == d.node)
        })
        .map(|d| RotationError::DeletionStillOwed {
            node: d.node,
            epoch: next,
        })
}

#[cfg(test)]
#[path = "upkeep_tests.rs"]
mod tests;
