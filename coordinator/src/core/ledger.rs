//! Who holds how many shares, and which sessions are busy: the bookkeeping each session task
//! reports into (a session stored, rotated, expired, revoked, its deletions settled) and that
//! placement (shares held weigh a peer down) and upkeep (a busy session is left alone) read.
//! Operator rotation requests are ordered against rotation starts by a counter, not a clock: a
//! request made after a rotation started asks for another one.

use crate::core::schedule::Cause;
use crate::db::SessionRecord;
use protocols::ids::{NodeId, SessionId};
use std::collections::{BTreeMap, BTreeSet};

/// Where a rotation started, in the order of requests and starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(u64);

/// The coordinator's bookkeeping of shares and busy sessions.
#[derive(Debug, Default)]
pub struct Ledger {
    shares_held: BTreeMap<NodeId, u32>,
    busy: BTreeSet<SessionId>,
    requested: BTreeMap<SessionId, Mark>,
    rotations_by_cause: BTreeMap<String, u64>,
    marks: u64,
}

impl Ledger {
    /// The books at start: every stored session's holders hold one share each; nothing busy.
    pub fn from_sessions(sessions: &[SessionRecord]) -> Self {
        let mut ledger = Self::default();
        for s in sessions {
            ledger.stored(s.holders.iter().map(|h| h.node));
        }
        ledger
    }

    /// Shares each peer holds.
    pub fn shares_held(&self) -> &BTreeMap<NodeId, u32> {
        &self.shares_held
    }

    /// Sessions a rotation, audit, expiry or deletion holds now.
    pub fn busy(&self) -> &BTreeSet<SessionId> {
        &self.busy
    }

    /// Whether `session` is busy.
    pub fn is_busy(&self, session: &SessionId) -> bool {
        self.busy.contains(session)
    }

    /// Marks `session` busy; `false` when it already was (the caller must not start).
    pub fn lock(&mut self, session: SessionId) -> bool {
        self.busy.insert(session)
    }

    /// `session` is no longer busy.
    pub fn release(&mut self, session: &SessionId) {
        self.busy.remove(session);
    }

    /// A session's shares were stored on `holders`.
    pub fn stored(&mut self, holders: impl IntoIterator<Item = NodeId>) {
        for h in holders {
            *self.shares_held.entry(h).or_insert(0) += 1;
        }
    }

    /// A session's shares left `holders` (expired, revoked).
    pub fn dropped(&mut self, holders: impl IntoIterator<Item = NodeId>) {
        for h in holders {
            if let Some(c) = self.shares_held.get_mut(&h) {
                *c = c.saturating_sub(1);
            }
        }
    }

    /// An operator asked for `session` to rotate.
    pub fn request_rotation(&mut self, session: SessionId) {
        let mark = self.next_mark();
        self.requested.insert(session, mark);
    }

    /// Sessions an operator asked to rotate that no committed rotation has satisfied yet.
    pub fn requested(&self) -> BTreeSet<SessionId> {
        self.requested.keys().copied().collect()
    }

    /// Forgets an operator's request (its session is gone or expired).
    pub fn forget_request(&mut self, session: &SessionId) {
        self.requested.remove(session);
    }

    /// A rotation of `session` starts: the session is busy, and the returned mark orders the
    /// start against operator requests.
    pub fn rotation_started(&mut self, session: SessionId) -> Mark {
        self.busy.insert(session);
        self.next_mark()
    }

    /// A rotation that started at `started` ended; when it committed (`moved` from the old
    /// holders to the new), a request made before it started is satisfied and the shares move.
    pub fn rotation_ended(
        &mut self,
        session: SessionId,
        cause: Cause,
        started: Mark,
        moved: Option<(&[NodeId], &[NodeId])>,
    ) {
        self.busy.remove(&session);
        let Some((old, new)) = moved else {
            return;
        };
        if self.requested.get(&session).is_some_and(|at| *at < started) {
            self.requested.remove(&session);
        }
        self.dropped(old.iter().copied());
        self.stored(new.iter().copied());
        *self
            .rotations_by_cause
            .entry(format!("{cause:?}"))
            .or_insert(0) += 1;
    }

    /// Committed rotations by cause.
    pub fn rotations_by_cause(&self) -> &BTreeMap<String, u64> {
        &self.rotations_by_cause
    }

    fn next_mark(&mut self) -> Mark {
        self.marks += 1;
        Mark(self.marks)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId([i; 32])
    }

    const S: SessionId = SessionId([1; 16]);

    #[test]
    fn a_request_made_before_a_rotation_started_is_satisfied_by_it_and_a_later_one_is_not() {
        let mut ledger = Ledger::default();
        ledger.request_rotation(S);
        let first = ledger.rotation_started(S);
        // Asked again while the first runs: the first does not satisfy it.
        ledger.request_rotation(S);
        ledger.rotation_ended(S, Cause::Manual, first, Some((&[], &[])));
        assert_eq!(ledger.requested(), [S].into());
        let second = ledger.rotation_started(S);
        ledger.rotation_ended(S, Cause::Manual, second, Some((&[], &[])));
        assert!(ledger.requested().is_empty());
        assert_eq!(ledger.rotations_by_cause().get("Manual"), Some(&2));
    }

    #[test]
    fn a_failed_rotation_frees_the_session_and_satisfies_nothing() {
        let mut ledger = Ledger::default();
        ledger.request_rotation(S);
        let started = ledger.rotation_started(S);
        assert!(ledger.is_busy(&S));
        assert!(!ledger.lock(S), "busy sessions are not started twice");
        ledger.rotation_ended(S, Cause::Manual, started, None);
        assert!(!ledger.is_busy(&S));
        assert_eq!(ledger.requested(), [S].into());
        assert!(ledger.rotations_by_cause().is_empty());
    }

    #[test]
    fn shares_follow_stores_rotations_and_drops_and_never_go_below_zero() {
        let mut ledger = Ledger::default();
        ledger.stored([node(1), node(2), node(3)]);
        let started = ledger.rotation_started(S);
        ledger.rotation_ended(
            S,
            Cause::Period,
            started,
            Some((&[node(1), node(2), node(3)], &[node(2), node(3), node(4)])),
        );
        let held = |l: &Ledger, i| l.shares_held().get(&node(i)).copied().unwrap_or(0);
        assert_eq!(
            (held(&ledger, 1), held(&ledger, 2), held(&ledger, 4)),
            (0, 1, 1)
        );
        ledger.dropped([node(1), node(4), node(4)]);
        assert_eq!((held(&ledger, 1), held(&ledger, 4)), (0, 0));
    }
}
