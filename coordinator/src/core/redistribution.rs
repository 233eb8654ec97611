//! A rotation by redistribution, the coordinator's side (docs/protocol/redistribution.md, steps
//! 1–9; decision 0057), decided here and carried out by the driver; the coordinator relays and
//! judges and never holds a share or the key. Write the pending epoch e+1; ask every old
//! holder to sub-deal ([`Redeal`](protocols::wire::Redeal)) and keep the dealings that pass the
//! public check (`judge::dealing_fault`; fewer than k: roll back, postponed); relay them to
//! every new holder and judge the complaints of their signed reports (`judge::judge_reports`);
//! fix `Q` and `C'` and have the sound new holders combine; commit e+1 after `min_acks`
//! acknowledgements that match `C'` (epoch e's deletions owed in the same transaction) or retire
//! it (epoch e stays fetchable); then deliver the owed deletions. Holders shown at fault are
//! reported ([`Redistribution::faults`]).

use super::deletions::{DeleteOrders, Delivery};
use super::holder_audits::HolderFault;
use super::orders::Signer;
use super::{Action, Outcome, PlacementError, Write, WriteError};
use crate::db::{OwedDeletion, SessionRecord};
use judge::Dealing;
use protocols::ids::{Epoch, NodeId, ShareIndex};
use protocols::sharing::Commitments;
use protocols::wire::{self, HolderCall, HolderOrder, NewHolder, SubShareReport, WIRE_VERSION};

mod judge;
mod messages;
mod steps;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug)]
enum Phase {
    WritingPending,
    Redealing { deadline: u64 },
    Relaying { deadline: u64 },
    Combining { deadline: u64 },
    WritingCommit,
    Retiring { reason: PlacementError },
    Delivering { outcome: Outcome },
    Done,
}

/// One rotation by redistribution (see the module documentation).
pub struct Redistribution<'k> {
    signer: Signer<'k>,
    record: SessionRecord,
    /// Epoch e's deletions, owed by every old holder once e+1 commits, each with the share it
    /// must prove before deleting (docs/protocol/holder-audits.md).
    old_owed: Vec<OwedDeletion>,
    to: Epoch,
    new_threshold: u8,
    new_holders: Vec<NewHolder>,
    min_acks: usize,
    waiting: BTreeMap<u32, NodeId>,
    dealings: BTreeMap<ShareIndex, Dealing>,
    not_ready: usize,
    reports: BTreeMap<NodeId, SubShareReport>,
    dropped: BTreeSet<NodeId>,
    new_commitments: Option<Commitments>,
    acked: BTreeSet<NodeId>,
    faults: Vec<(NodeId, HolderFault)>,
    deletes: DeleteOrders,
    delivery: Option<Delivery>,
    actions: VecDeque<Action>,
    phase: Phase,
    answer_ms: u64,
    next_id: u32,
}

impl std::fmt::Debug for Redistribution<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redistribution")
            .field("session", &self.record.session)
            .field("to", &self.to)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<'k> Redistribution<'k> {
    /// Starts moving `record` (at its current epoch e) to epoch e+1 on `new_holders` (distinct
    /// nodes and indices, each with its verified share key), same threshold, committing after
    /// `min_acks` acknowledgements; holders have `answer_ms` to answer each order. `rng` draws
    /// the challenges of the proofs old holders give before deleting epoch e.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        record: SessionRecord,
        new_holders: Vec<NewHolder>,
        min_acks: usize,
        signer: Signer<'k>,
        now_ms: u64,
        answer_ms: u64,
        rng: &mut R,
    ) -> Result<Self, PlacementError> {
        let session = record.session;
        let to = record
            .epoch
            .checked_add(1)
            .ok_or(PlacementError::Redistribution(
                "the epoch counter is exhausted".into(),
            ))?;
        let new_threshold = u8::try_from(record.commitments.threshold())
            .map_err(|_| PlacementError::Redistribution("threshold above 255".into()))?;
        let old_owed = judge::owed_with_proofs(&record);
        let mut deletes = DeleteOrders::default();
        deletes.add_plain(&signer, session, to);
        for d in &old_owed {
            deletes.add(&signer, d, rng);
        }
        let pending = messages::pending(&record, to, &new_holders, now_ms);
        Ok(Redistribution {
            signer,
            old_owed,
            record,
            to,
            new_threshold,
            new_holders,
            min_acks,
            waiting: BTreeMap::new(),
            dealings: BTreeMap::new(),
            not_ready: 0,
            reports: BTreeMap::new(),
            dropped: BTreeSet::new(),
            new_commitments: None,
            acked: BTreeSet::new(),
            faults: Vec::new(),
            deletes,
            delivery: None,
            actions: VecDeque::from([Action::Write(Write::Pending(pending))]),
            phase: Phase::WritingPending,
            answer_ms,
            next_id: 0,
        })
    }

    /// Holders shown at fault so far (a dealer whose dealing failed, a holder whose complaint
    /// or acknowledgement was false), to quarantine.
    pub fn faults(&self) -> &[(NodeId, HolderFault)] {
        &self.faults
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        let delivery = self.delivery.as_mut()?;
        let action = delivery.poll_action();
        if action.is_none() && delivery.finished() {
            for (node, fault) in delivery.faults() {
                // Named once: an old holder that refused to sub-deal its changed share also
                // fails to prove it before deleting.
                if !self.faults.iter().any(|(n, _)| n == node) {
                    self.faults.push((*node, fault.clone()));
                }
            }
            self.delivery = None;
            if let Phase::Delivering { outcome } = std::mem::replace(&mut self.phase, Phase::Done) {
                self.finish(outcome);
            }
            return self.actions.pop_front();
        }
        action
    }

    /// The outcome of the write last asked for.
    pub fn handle_written(&mut self, result: Result<(), WriteError>, now_ms: u64) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::WritingPending => match result {
                Ok(()) => self.send_redeals(now_ms),
                Err(e) => self.finish(Outcome::WriteFailed(PlacementError::PendingNotRecorded(e))),
            },
            Phase::WritingCommit => match result {
                Ok(()) => {
                    let owed = self.owed_after_commit();
                    self.actions
                        .push_back(Action::Committed(Box::new(self.record.clone())));
                    self.deliver(&owed, Outcome::Committed, now_ms);
                }
                Err(e) => self.retire(PlacementError::CommitNotRecorded(e)),
            },
            Phase::Retiring { reason } => match result {
                Ok(()) => {
                    let nodes = self.new_holders.iter().map(|h| h.node);
                    let owed = judge::owed(self.record.session, self.to, nodes);
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

    /// A holder's answer to the order sent as `id`, known only as acknowledged or not: only a
    /// reply's bytes say anything here, so a bare "no" is no answer.
    pub fn handle_answer(&mut self, id: u32, acknowledged: bool, now_ms: u64) {
        if !acknowledged {
            self.handle_reply(id, None, now_ms);
        }
    }

    /// A holder's reply (its raw bytes; `None`: no answer) to the order sent as `id`.
    pub fn handle_reply(&mut self, id: u32, reply: Option<&[u8]>, now_ms: u64) {
        if let Phase::Delivering { .. } = self.phase {
            if let Some(d) = self.delivery.as_mut() {
                d.handle_reply(id, reply, now_ms);
            }
            return;
        }
        let Some(node) = self.waiting.remove(&id) else {
            return;
        };
        match self.phase {
            Phase::Redealing { .. } => self.take_sub_deal(node, reply),
            Phase::Relaying { .. } => self.take_report(node, reply),
            Phase::Combining { .. } => self.take_ack(node, reply),
            _ => return,
        }
        if self.waiting.is_empty() {
            self.next_step(now_ms);
        }
    }

    /// Time passed: answers still missing after their window count as none.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        match self.phase {
            Phase::Redealing { deadline }
            | Phase::Relaying { deadline }
            | Phase::Combining { deadline }
                if now_ms >= deadline =>
            {
                self.waiting.clear();
                self.next_step(now_ms);
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

    fn next_step(&mut self, now_ms: u64) {
        match self.phase {
            Phase::Redealing { .. } => self.send_sub_shares(now_ms),
            Phase::Relaying { .. } => self.send_combines(now_ms),
            Phase::Combining { .. } => self.decide(now_ms),
            _ => {}
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn send(&mut self, node: NodeId, order: HolderOrder) {
        let id = self.take_id();
        self.waiting.insert(id, node);
        let bytes = wire::encode(&HolderCall {
            v: WIRE_VERSION,
            order,
        });
        self.actions.push_back(Action::Send { id, node, bytes });
    }

    fn deadline(&mut self, now_ms: u64) -> u64 {
        let deadline = now_ms.saturating_add(self.answer_ms);
        self.actions.push_back(Action::WakeAt(deadline));
        deadline
    }

    fn decide(&mut self, now_ms: u64) {
        let (have, need) = (self.acked.len(), self.min_acks);
        let Some(commitments) = self.new_commitments.clone().filter(|_| have >= need) else {
            let e = protocols::reshare::ReshareError::NotEnoughAcks { have, need };
            return self.retire(PlacementError::TooFewAcknowledgements(e));
        };
        let holders: Vec<&NewHolder> = self
            .new_holders
            .iter()
            .filter(|h| self.acked.contains(&h.node))
            .collect();
        self.record = judge::committed(&self.record, self.to, &holders, commitments, now_ms);
        self.phase = Phase::WritingCommit;
        let owed = self.owed_after_commit();
        self.actions.push_back(Action::Write(Write::Commit {
            record: Box::new(self.record.clone()),
            owed,
        }));
    }

    fn retire(&mut self, reason: PlacementError) {
        self.phase = Phase::Retiring { reason };
        self.actions
            .push_back(Action::Write(Write::Retire(self.record.session)));
    }

    /// The old epoch by every old holder; e+1 by new holders that did not acknowledge (the
    /// record is the committed one by then).
    fn owed_after_commit(&self) -> Vec<OwedDeletion> {
        let kept: BTreeSet<NodeId> = self.record.holders.iter().map(|h| h.node).collect();
        let lost = self.new_holders.iter().map(|h| h.node);
        let session = self.record.session;
        let mut owed = self.old_owed.clone();
        owed.extend(judge::owed(
            session,
            self.to,
            lost.filter(|n| !kept.contains(n)),
        ));
        owed
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

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Done;
        self.actions.push_back(Action::Done(outcome));
    }
}

#[cfg(test)]
#[path = "redistribution_tests.rs"]
mod tests;
