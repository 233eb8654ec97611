//! Owed deletions delivered: one delete order per (holder, epoch) owed, then the acknowledged
//! ones settled in one durable write. What is not acknowledged stays owed and is sent again by a
//! later delivery (the daemon's upkeep), so a crash or an unreachable holder loses nothing.

use super::orders::Signer;
use super::{Action, Write, WriteError};
use crate::db::OwedDeletion;
use protocols::ids::{Epoch, SessionId};
use std::collections::{BTreeMap, VecDeque};

/// Encoded delete orders by (session, epoch).
pub type DeleteOrders = BTreeMap<(SessionId, Epoch), Vec<u8>>;

/// The delete orders `owed` needs.
pub fn delete_orders(signer: &Signer<'_>, owed: &[OwedDeletion]) -> DeleteOrders {
    let mut orders = DeleteOrders::new();
    for d in owed {
        orders
            .entry((d.session, d.epoch))
            .or_insert_with(|| signer.delete_order(d.session, d.epoch));
    }
    orders
}

#[derive(Debug)]
enum Phase {
    Sending { deadline: u64 },
    Settling,
    Finished,
}

/// One delivery of owed deletions (see the module documentation).
#[derive(Debug)]
pub struct Delivery {
    outstanding: BTreeMap<u32, OwedDeletion>,
    acknowledged: Vec<OwedDeletion>,
    actions: VecDeque<Action>,
    phase: Phase,
}

impl Delivery {
    /// Starts delivering `owed` at `now`; answers not in after `answer_ms` count as missing.
    /// Request ids start at `first_id`.
    pub fn new(
        owed: &[OwedDeletion],
        orders: &DeleteOrders,
        now_ms: u64,
        answer_ms: u64,
        first_id: u32,
    ) -> Self {
        let mut delivery = Delivery {
            outstanding: BTreeMap::new(),
            acknowledged: Vec::new(),
            actions: VecDeque::new(),
            phase: Phase::Sending {
                deadline: now_ms.saturating_add(answer_ms),
            },
        };
        for (id, d) in (first_id..).zip(owed) {
            let Some(bytes) = orders.get(&(d.session, d.epoch)) else {
                continue;
            };
            delivery.outstanding.insert(id, *d);
            delivery.actions.push_back(Action::Send {
                id,
                node: d.node,
                bytes: bytes.clone(),
            });
        }
        if delivery.outstanding.is_empty() {
            delivery.phase = Phase::Finished;
        } else {
            delivery
                .actions
                .push_back(Action::WakeAt(now_ms.saturating_add(answer_ms)));
        }
        delivery
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// A holder's answer to the delete order sent as `id`.
    pub fn handle_answer(&mut self, id: u32, acknowledged: bool, _now_ms: u64) {
        if !matches!(self.phase, Phase::Sending { .. }) {
            return;
        }
        if let Some(d) = self.outstanding.remove(&id)
            && acknowledged
        {
            self.acknowledged.push(d);
        }
        if self.outstanding.is_empty() {
            self.settle();
        }
    }

    /// Time passed; past the deadline the missing answers count as not acknowledged.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if let Phase::Sending { deadline } = self.phase
            && now_ms >= deadline
        {
            self.outstanding.clear();
            self.settle();
        }
    }

    /// The settling write finished (a failure leaves the deletions owed: they are sent again).
    pub fn handle_written(&mut self, _result: Result<(), WriteError>, _now_ms: u64) {
        if matches!(self.phase, Phase::Settling) {
            self.phase = Phase::Finished;
        }
    }

    /// Nothing more will be asked.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Finished) && self.actions.is_empty()
    }

    /// The deletions acknowledged so far.
    pub fn acknowledged(&self) -> &[OwedDeletion] {
        &self.acknowledged
    }

    fn settle(&mut self) {
        if self.acknowledged.is_empty() {
            self.phase = Phase::Finished;
        } else {
            self.phase = Phase::Settling;
            self.actions
                .push_back(Action::Write(Write::Settle(self.acknowledged.clone())));
        }
    }
}
