//! The coordinator's decisions without I/O, in the shape of `quinn-proto`: state machines that
//! take each input with the time it arrived (`handle_*(…, now_ms)`) and say what to do next
//! ([`Action`], drained with `poll_action`). They never touch the clock, the disk, the network
//! or the OS generator: randomness comes in as values, time as arguments, and the daemon's
//! `service` module only carries out their actions (disk writes on a blocking thread, requests
//! to holders, timers) and feeds the results back. So every crash point and interleaving can be
//! replayed deterministically on virtual time (`tests`).
//!
//! * [`placement`] — one epoch of a session placed on its holders: pending record, sealed store
//!   orders, commit after durable acknowledgements or roll-back, then the owed deletions.
//! * [`redistribution`] — a rotation by redistribution: old holders sub-deal, new holders check
//!   and combine, the coordinator relays and judges, commits or rolls back; it holds no share.
//! * [`deletions`] — owed deletions delivered to their holders and settled as they acknowledge
//!   (after a commit, a roll-back, or a restart).
//! * [`gossip`] — heartbeats and contributions from peers: checked, credited, held for their
//!   source's audit or only witnessed; audits settled.
//! * [`orders`] — the signed holder orders both send.
//! * [`attestation`] — whom to challenge, and the verdict on each answer.
//! * [`ledger`] — shares held per peer, busy sessions, operator rotation requests.
//! * [`holder_audits`] — when the coordinator fetches shares itself, and how it judges them.
//! * [`sessions`] — a session's admission, quorum and dealing; tickets admitted and granted.
//! * [`schedule`] — which sessions each upkeep tick expires or rotates, and why.
//! * [`state`] — the loop's state: what each finished task, operator request and revocation
//!   changes; the views of the admin socket, the metrics and `/ready`.
//! * [`upkeep`] — one upkeep tick on that state: expiries, rotations (new quorum or why
//!   postponed), holder audits and owed deletions started, each session locked meanwhile.
//! * [`entropy_audits`] — which sources to audit, whether an answer may be assessed, its
//!   assessment and settling.
//! * [`errors`] — why a rotation or an entropy audit failed.
//! * [`admission`] — inbound requests admitted (size, remote, decoding); join tokens read.
//! * [`audit_trail`] — the audit-trail entries of the coordinator's own acts.

pub mod admission;
pub mod attestation;
pub mod audit_trail;
pub mod deletions;
pub mod entropy_audits;
pub mod errors;
pub mod gossip;
pub mod holder_audits;
pub mod ledger;
pub mod orders;
pub mod placement;
pub mod redistribution;
pub mod schedule;
pub mod sessions;
pub mod state;
pub mod upkeep;

use crate::db::{OwedDeletion, PendingEpoch, SessionRecord};
use protocols::ids::{NodeId, SessionId};

/// A durable write the driver performs, then reports with `handle_written`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `CoordinatorDb::put_pending_epoch`: the epoch being placed, rolled back after a crash.
    Pending(PendingEpoch),
    /// `CoordinatorDb::commit_epoch_owing`: the session at its new epoch, the pending record
    /// gone and the deletions it makes owed, in one transaction.
    Commit {
        /// The session as committed.
        record: Box<SessionRecord>,
        /// Deletions the commit makes owed.
        owed: Vec<OwedDeletion>,
    },
    /// `CoordinatorDb::retire_pending_epoch`: the pending epoch given up, every holder it was
    /// dealt to owing its deletion, in one transaction.
    Retire(SessionId),
    /// `CoordinatorDb::settle_deletions`: deletions their holders acknowledged.
    Settle(Vec<OwedDeletion>),
}

/// What a state machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Perform a durable write, then call `handle_written` with its outcome. At most one write
    /// is outstanding at a time; nothing else is asked until it is reported.
    Write(Write),
    /// Send an encoded holder order to `node` and call `handle_answer(id, acknowledged, now)`
    /// with whether it acknowledged (a refusal, a malformed answer or no answer: `false`).
    Send {
        /// Identifies the answer.
        id: u32,
        /// The holder.
        node: NodeId,
        /// The encoded `HolderCall`.
        bytes: Vec<u8>,
    },
    /// Call `handle_timeout(now)` at this time (milliseconds) if nothing else happened first.
    WakeAt(u64),
    /// The epoch is durably committed: the session as recorded (reply to its creator).
    Committed(Box<SessionRecord>),
    /// The machine is finished; nothing more will be asked.
    Done(Outcome),
}

/// How a placement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed (and its owed deletions delivered or left owed for later).
    Committed,
    /// Given up before the commit and rolled back (the holders owe their deletions).
    RolledBack(PlacementError),
    /// A durable write failed: nothing more can be decided until the next start-up, whose
    /// recovery rolls back whatever is left pending.
    WriteFailed(PlacementError),
}

/// Why a placement did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// Fewer holders acknowledged a durable write than the commit needs.
    #[error("not enough holders stored their share: {0}")]
    TooFewAcknowledgements(protocols::reshare::ReshareError),
    /// Fewer old holders sub-dealt acceptably than the threshold (`not_ready` of them still hold
    /// a share sealed under the coordinator's key, dealt before share keys): postponed.
    #[error(
        "{have} of {need} old holders sub-dealt ({not_ready} hold a share dealt before share keys); postponed"
    )]
    TooFewDealers {
        /// Dealings that passed.
        have: usize,
        /// The threshold.
        need: usize,
        /// Old holders that answered `not_ready`.
        not_ready: usize,
    },
    /// Fewer new holders reported soundly on the sub-dealings than the commit needs.
    #[error("{have} new holders reported soundly, {need} needed")]
    TooFewNewHolders {
        /// Sound reports.
        have: usize,
        /// Acknowledgements the commit needs.
        need: usize,
    },
    /// The redistribution could not go on (text: why).
    #[error("redistribution: {0}")]
    Redistribution(String),
    /// The pending epoch could not be recorded (nothing was sent).
    #[error("the pending epoch was not recorded: {0}")]
    PendingNotRecorded(WriteError),
    /// The commit could not be recorded.
    #[error("the commit was not recorded: {0}")]
    CommitNotRecorded(WriteError),
    /// Giving the epoch up could not be recorded either; start-up recovery will.
    #[error("{cause}; its roll-back was not recorded either: {rollback}")]
    RollBackNotRecorded {
        /// Why the epoch was given up.
        cause: Box<PlacementError>,
        /// Why the roll-back failed.
        rollback: WriteError,
    },
}

/// A durable write the driver could not carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The database refused it.
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    /// The thread carrying it out ended without an answer (a panic or a shutdown).
    #[error("the write task ended without an answer: {0}")]
    Task(String),
}

/// The interface every core state machine offers its driver.
pub trait Machine {
    /// The next thing to do, if any.
    fn poll_action(&mut self) -> Option<Action>;
    /// The outcome of the write last asked for.
    fn handle_written(&mut self, result: Result<(), WriteError>, now_ms: u64);
    /// A holder's answer to the order sent as `id`.
    fn handle_answer(&mut self, id: u32, acknowledged: bool, now_ms: u64);
    /// A holder's reply to the order sent as `id`, as received (`None`: no answer). Machines
    /// that only send store and delete orders take whether it acknowledged.
    fn handle_reply(&mut self, id: u32, reply: Option<&[u8]>, now_ms: u64) {
        self.handle_answer(id, reply.is_some_and(store_acknowledged), now_ms);
    }
    /// Time passed (a [`Action::WakeAt`] came due).
    fn handle_timeout(&mut self, now_ms: u64);
    /// Nothing more will be asked.
    fn finished(&self) -> bool;
}

/// Implements [`Machine`] by the machine's own methods of the same names; `reads_replies`: the
/// machine judges a reply's bytes itself (`handle_reply`), not only whether it acknowledged.
macro_rules! machine {
    ($t:ty) => {
        machine!(@impl $t;);
    };
    ($t:ty, reads_replies) => {
        machine!(@impl $t;
            fn handle_reply(&mut self, id: u32, reply: Option<&[u8]>, now_ms: u64) {
                Self::handle_reply(self, id, reply, now_ms)
            }
        );
    };
    (@impl $t:ty; $($extra:item)*) => {
        impl Machine for $t {
            fn poll_action(&mut self) -> Option<Action> {
                Self::poll_action(self)
            }
            fn handle_written(&mut self, result: Result<(), WriteError>, now_ms: u64) {
                Self::handle_written(self, result, now_ms)
            }
            fn handle_answer(&mut self, id: u32, acknowledged: bool, now_ms: u64) {
                Self::handle_answer(self, id, acknowledged, now_ms)
            }
            fn handle_timeout(&mut self, now_ms: u64) {
                Self::handle_timeout(self, now_ms)
            }
            fn finished(&self) -> bool {
                Self::finished(self)
            }
            $($extra)*
        }
    };
}
machine!(placement::EpochPlacement);
machine!(deletions::Delivery, reads_replies);
machine!(redistribution::Redistribution<'_>, reads_replies);

/// Whether `reply` is a holder's acknowledgement of a store or delete order.
pub fn store_acknowledged(reply: &[u8]) -> bool {
    protocols::wire::decode::<protocols::wire::Reply<protocols::wire::StoreAck>>(
        reply,
        peer::node::Protocol::Store.limits().1,
    )
    .is_ok_and(|r| r.result.is_ok())
}

#[cfg(test)]
mod test_state;
#[cfg(test)]
mod test_world;
#[cfg(test)]
mod tests;
