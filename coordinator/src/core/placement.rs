//! A new session's first epoch placed on its holders, decided here and carried out by the
//! driver. (A rotation moves a session by redistribution instead: [`super::redistribution`].)
//!
//! 1. Write the pending epoch (a crash from here on rolls it back at start-up).
//! 2. Send every holder its share, boxed to its share key (the placement holds only those
//!    boxes: [`BoxedDealing`]); wait for each durable acknowledgement, or the answer
//!    window.
//! 3. Enough acknowledgements (`min_acks` of `Dealt`): write the commit — the session at its new
//!    epoch, the pending record gone, and in the same transaction the deletions it makes owed
//!    (the old epoch by its holders, the new one by holders that never acknowledged). Only then
//!    is the session reported [`Action::Committed`]. Too few: retire the pending epoch (every
//!    holder it was dealt to owes a deletion).
//! 4. Deliver the owed deletions ([`Delivery`]) and settle those acknowledged.
//!
//! A crash between any two steps leaves the database in a state start-up recovery completes:
//! a pending epoch is retired, owed deletions are delivered again. `tests` replays every such
//! point.

use super::deletions::{DeleteOrders, Delivery};
use super::orders::Signer;
use super::{Action, Outcome, PlacementError, Write, WriteError};
use crate::db::{Holder, OwedDeletion, PendingEpoch, SessionRecord, holders_of};
use protocols::holder_box::BoxedDealing;
use protocols::ids::{Epoch, NodeId};
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug)]
enum Phase {
    WritingPending,
    Storing { deadline: u64 },
    WritingCommit,
    Retiring { reason: PlacementError },
    Delivering { outcome: Outcome },
    Done,
}

/// One epoch's placement (see the module documentation).
#[derive(Debug)]
pub struct EpochPlacement {
    /// The epoch being placed.
    epoch: Epoch,
    dealt: Option<BoxedDealing>,
    record: SessionRecord,
    stores: Vec<(NodeId, Vec<u8>)>,
    waiting: BTreeMap<u32, NodeId>,
    deletes: DeleteOrders,
    delivery: Option<Delivery>,
    actions: VecDeque<Action>,
    phase: Phase,
    answer_ms: u64,
    next_id: u32,
}

impl EpochPlacement {
    /// Starts placing `dealt` (already boxed to its holders) for `record` (a new session: epoch
    /// 0, no holders yet) at `now_ms`; holders have `answer_ms` to acknowledge a store order.
    pub fn new(
        dealt: BoxedDealing,
        record: SessionRecord,
        signer: &Signer<'_>,
        now_ms: u64,
        answer_ms: u64,
    ) -> Self {
        let (session, epoch) = (dealt.session(), dealt.epoch());
        let stores = dealt
            .boxes()
            .iter()
            .map(|b| {
                let order = signer.store_boxed_order(&dealt, b, record.expires_at_ms);
                (b.placement.node, order)
            })
            .collect();
        // Every delete order this placement may send: the new epoch (roll-back, holders that
        // never acknowledged).
        let mut deletes = DeleteOrders::default();
        deletes.add_plain(signer, session, epoch);
        let pending = PendingEpoch {
            session,
            epoch,
            holders: dealt
                .boxes()
                .iter()
                .map(|b| Holder {
                    node: b.placement.node,
                    index: b.placement.index,
                })
                .collect(),
            commitments: dealt.commitments().clone(),
            started_at_ms: now_ms,
        };
        EpochPlacement {
            epoch,
            dealt: Some(dealt),
            record,
            stores,
            waiting: BTreeMap::new(),
            deletes,
            delivery: None,
            actions: VecDeque::from([Action::Write(Write::Pending(pending))]),
            phase: Phase::WritingPending,
            answer_ms,
            next_id: 0,
        }
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        let delivery = self.delivery.as_mut()?;
        let action = delivery.poll_action();
        if action.is_none() && delivery.finished() {
            self.finish_delivery();
            return self.actions.pop_front();
        }
        action
    }

    /// The outcome of the write last asked for.
    pub fn handle_written(&mut self, result: Result<(), WriteError>, now_ms: u64) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::WritingPending => match result {
                Ok(()) => self.send_stores(now_ms),
                Err(e) => self.finish(Outcome::WriteFailed(PlacementError::PendingNotRecorded(e))),
            },
            Phase::WritingCommit => match result {
                Ok(()) => {
                    let owed = self.owed_after_commit();
                    self.actions
                        .push_back(Action::Committed(Box::new(self.record.clone())));
                    self.deliver(&owed, Outcome::Committed, now_ms);
                }
                // The commit did not happen: the pending epoch is still recorded; give it up.
                Err(e) => self.retire(PlacementError::CommitNotRecorded(e)),
            },
            Phase::Retiring { reason } => match result {
                Ok(()) => {
                    let owed = self.owed_after_retire();
                    self.deliver(&owed, Outcome::RolledBack(reason), now_ms);
                }
                Err(e) => self.finish(Outcome::WriteFailed(PlacementError::RollBackNotRecorded {
                    cause: Box::new(reason),
                    rollback: e,
                })),
            },
            Phase::Delivering { outcome } => {
                self.phase = Phase::Delivering { outcome };
                if let Some(d) = self.delivery.as_mut() {
                    d.handle_written(result, now_ms);
                }
            }
            other => self.phase = other,
        }
    }

    /// A holder's answer to the order sent as `id`.
    pub fn handle_answer(&mut self, id: u32, acknowledged: bool, now_ms: u64) {
        match &self.phase {
            Phase::Storing { .. } => {
                let Some(node) = self.waiting.remove(&id) else {
                    return;
                };
                if acknowledged && let Some(dealt) = self.dealt.as_mut() {
                    // Only nodes the epoch was dealt to were sent an order.
                    let _ = dealt.acknowledge(&node);
                }
                if self.waiting.is_empty() {
                    self.decide();
                }
            }
            Phase::Delivering { .. } => {
                if let Some(d) = self.delivery.as_mut() {
                    d.handle_answer(id, acknowledged, now_ms);
                }
            }
            _ => {}
        }
    }

    /// Time passed: answers still missing after their window count as not acknowledged.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        match self.phase {
            Phase::Storing { deadline } if now_ms >= deadline => {
                self.waiting.clear();
                self.decide();
            }
            Phase::Delivering { .. } => {
                if let Some(d) = self.delivery.as_mut() {
                    d.handle_timeout(now_ms);
                }
            }
            _ => {}
        }
    }

    /// Nothing more will be asked.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done) && self.actions.is_empty()
    }

    /// Holders the epoch was dealt to.
    pub fn dealt_to(&self) -> Vec<NodeId> {
        self.stores.iter().map(|(n, _)| *n).collect()
    }

    fn send_stores(&mut self, now_ms: u64) {
        let deadline = now_ms.saturating_add(self.answer_ms);
        for (node, bytes) in self.stores.clone() {
            let id = self.take_id();
            self.waiting.insert(id, node);
            self.actions.push_back(Action::Send { id, node, bytes });
        }
        self.actions.push_back(Action::WakeAt(deadline));
        self.phase = Phase::Storing { deadline };
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Every store order answered (or its window passed): commit or give up.
    fn decide(&mut self) {
        let Some(dealt) = self.dealt.take() else {
            return;
        };
        match dealt.commit() {
            Ok(committed) => {
                self.record.epoch = committed.epoch();
                self.record.holders = holders_of(committed.holders());
                self.record.commitments = committed.commitments().clone();
                // Boxed to its holders: no master key opens this epoch.
                self.record.sealed_under = None;
                self.record.boxed = true;
                self.phase = Phase::WritingCommit;
                let owed = self.owed_after_commit();
                self.actions.push_back(Action::Write(Write::Commit {
                    record: Box::new(self.record.clone()),
                    owed,
                }));
            }
            Err(e) => self.retire(PlacementError::TooFewAcknowledgements(e)),
        }
    }

    fn retire(&mut self, reason: PlacementError) {
        self.phase = Phase::Retiring { reason };
        self.actions
            .push_back(Action::Write(Write::Retire(self.record.session)));
    }

    /// Deletions the commit makes owed: the epoch by holders dealt a share that never
    /// acknowledged it (`record` is the committed one).
    fn owed_after_commit(&self) -> Vec<OwedDeletion> {
        let session = self.record.session;
        let mut owed: Vec<OwedDeletion> = Vec::new();
        owed.extend(
            self.dealt_to()
                .into_iter()
                .filter(|n| !self.record.holders.iter().any(|h| &h.node == n))
                .map(|node| OwedDeletion {
                    session,
                    epoch: self.epoch,
                    node,
                    prove: None,
                }),
        );
        owed
    }

    /// Deletions a roll-back makes owed: the new epoch by every holder it was dealt to.
    fn owed_after_retire(&self) -> Vec<OwedDeletion> {
        let epoch = self.epoch;
        self.dealt_to()
            .into_iter()
            .map(|node| OwedDeletion {
                session: self.record.session,
                epoch,
                node,
                prove: None,
            })
            .collect()
    }

    fn deliver(&mut self, owed: &[OwedDeletion], outcome: Outcome, now_ms: u64) {
        let first_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(owed.len() as u32);
        self.delivery = Some(Delivery::new(
            owed,
            &self.deletes,
            now_ms,
            self.answer_ms,
            first_id,
        ));
        self.phase = Phase::Delivering { outcome };
    }

    fn finish_delivery(&mut self) {
        self.delivery = None;
        if let Phase::Delivering { outcome } = std::mem::replace(&mut self.phase, Phase::Done) {
            self.finish(outcome);
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Done;
        self.actions.push_back(Action::Done(outcome));
    }
}
