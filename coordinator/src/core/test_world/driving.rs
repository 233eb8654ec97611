//! Driving a machine in the test world: each action carried out (writes on the real database,
//! orders to the holders' real handlers, timers on virtual time), crashes and restarts.

use super::{ANSWER_MS, World};
use crate::core::deletions::{Delivery, delete_orders};
use crate::core::{Action, Machine, Outcome, Write, WriteError};
use crate::db::SessionRecord;
use peer::node::{Protocol, RequestFrame};
use protocols::ids::NodeId;
use rand::RngExt;

/// How a driven run ended.
#[derive(Debug)]
pub(in crate::core) struct Run {
    /// The session as reported committed, if the run got that far.
    pub(in crate::core) committed: Option<SessionRecord>,
    /// The machine's outcome, if it finished.
    pub(in crate::core) outcome: Option<Outcome>,
    /// Actions carried out.
    pub(in crate::core) steps: usize,
}

impl World {
    /// Carries out one action; `None` when the machine has nothing to do right now.
    async fn step(
        &mut self,
        m: &mut impl Machine,
        answers: &mut Vec<(u32, Vec<u8>)>,
        run: &mut Run,
        wake: &mut Option<u64>,
    ) -> bool {
        let Some(action) = m.poll_action() else {
            return false;
        };
        run.steps += 1;
        match action {
            Action::Write(w) => {
                let result = self.write(w);
                m.handle_written(result, self.now);
            }
            Action::Send { id, node, bytes } => {
                for plain in &self.dealt_plain {
                    assert!(
                        !bytes.windows(32).any(|w| w == plain),
                        "an order carries a share's bytes"
                    );
                }
                self.sent.push(bytes.clone());
                if let Some((victim, after)) = self.kill_at
                    && self.sent.len() >= after
                {
                    self.kill(victim);
                    self.kill_at = None;
                }
                if let Some(reply) = self.deliver(node, bytes).await {
                    self.answered_bytes += reply.len();
                    let reply = match self.tamper.as_mut() {
                        Some(t) => t(node, reply),
                        None => reply,
                    };
                    answers.push((id, reply));
                }
            }
            Action::WakeAt(at) => *wake = Some(at),
            Action::Committed(record) => run.committed = Some(*record),
            Action::Done(outcome) => run.outcome = Some(outcome),
        }
        true
    }

    /// Drives `m` until it finishes, or crashes it after `crash_after` actions.
    pub(in crate::core) async fn drive(
        &mut self,
        m: &mut impl Machine,
        crash_after: Option<usize>,
    ) -> Run {
        let mut run = Run {
            committed: None,
            outcome: None,
            steps: 0,
        };
        let mut answers: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut wake = None;
        loop {
            if crash_after.is_some_and(|c| run.steps >= c) {
                return run;
            }
            if self.step(m, &mut answers, &mut run, &mut wake).await {
                continue;
            }
            if m.finished() {
                return run;
            }
            if !answers.is_empty() {
                // Answers arrive in an order drawn from the seed.
                let i = self.rng.random_range(..answers.len());
                let (id, reply) = answers.swap_remove(i);
                self.now += self.rng.random_range(1..50);
                m.handle_reply(id, Some(&reply), self.now);
            } else if let Some(at) = wake.take() {
                self.now = self.now.max(at);
                m.handle_timeout(self.now);
            } else {
                panic!("machine stalled: nothing to do, no answer pending, no timer");
            }
        }
    }

    pub(in crate::core) fn write(&self, w: Write) -> Result<(), WriteError> {
        let r = match w {
            Write::Pending(p) => self.db.put_pending_epoch(&p),
            Write::Commit { record, owed } => self.db.commit_epoch_owing(&record, &owed),
            Write::Retire(session) => self.db.retire_pending_epoch(&session).map(|_| ()),
            Write::Settle(owed) => self.db.settle_deletions(&owed),
        };
        r.map_err(WriteError::from)
    }

    /// A holder answers an order through its real handlers; `None` when it is down.
    pub(in crate::core) async fn deliver(&self, node: NodeId, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if self.down.contains(&node) {
            return None;
        }
        let holder = self.holders.get(&node)?;
        let remote = peer::identity::peer_id(&self.key.node_id()).unwrap();
        Some(
            holder
                .handlers
                .answer(Protocol::Store, remote, RequestFrame::Bytes(bytes))
                .await,
        )
    }

    /// What the daemon does at start-up and in its upkeep: retire pending epochs, then deliver
    /// every owed deletion (all holders reachable).
    pub(in crate::core) async fn restart(&mut self) {
        self.db.retire_all_pending_epochs().unwrap();
        let owed = self.db.owed_deletions().unwrap();
        let orders = delete_orders(&self.signer(), &owed, &mut rand::rng());
        let mut delivery = Delivery::new(&owed, &orders, self.now, ANSWER_MS, 0);
        let run = self.drive(&mut delivery, None).await;
        assert!(delivery.finished(), "{run:?}");
        assert!(
            self.db.owed_deletions().unwrap().is_empty(),
            "deletions left owed after recovery"
        );
        assert!(self.db.pending_epochs().unwrap().is_empty());
    }
}
