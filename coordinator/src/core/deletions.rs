//! Owed deletions delivered: one order per (holder, epoch) owed, then the acknowledged ones
//! settled in one durable write. What is not acknowledged stays owed and is sent again by a
//! later delivery (the daemon's upkeep), so a crash or an unreachable holder loses nothing. A
//! superseded epoch of a session boxed to its holders is deleted only with a proof that the
//! holder still had its share (docs/protocol/holder-audits.md): a proof that fails names it.

use super::holder_audits::{HolderFault, Reply, check_proof};
use super::orders::Signer;
use super::{Action, Write, WriteError, store_acknowledged};
use crate::db::{OwedDeletion, ShareToProve};
use protocols::ids::{Epoch, NodeId, SessionId};
use protocols::sealing::ShareSlot;
use protocols::share_proof;
use protocols::wire::Refusal;
use std::collections::{BTreeMap, VecDeque};

/// The encoded orders of one delivery: a plain delete per (session, epoch), and a `ProveShare`
/// that deletes once proven, with its own fresh challenge, per deletion owed with a proof.
#[derive(Debug, Default, Clone)]
pub struct DeleteOrders {
    plain: BTreeMap<(SessionId, Epoch), Vec<u8>>,
    proving: BTreeMap<OwedDeletion, (Vec<u8>, [u8; 32])>,
}

impl DeleteOrders {
    /// Adds the plain delete order of `epoch` of `session`.
    pub fn add_plain(&mut self, signer: &Signer<'_>, session: SessionId, epoch: Epoch) {
        self.plain
            .entry((session, epoch))
            .or_insert_with(|| signer.delete_order(session, epoch));
    }

    /// Adds the order `d` needs: plain, or a proof with a challenge drawn from `rng`.
    pub fn add<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        signer: &Signer<'_>,
        d: &OwedDeletion,
        rng: &mut R,
    ) {
        if d.prove.is_none() {
            return self.add_plain(signer, d.session, d.epoch);
        }
        let mut challenge = [0u8; 32];
        rng.fill_bytes(&mut challenge);
        let bytes = signer.prove_order(d.session, d.epoch, challenge, true);
        self.proving.insert(*d, (bytes, challenge));
    }
}

/// The orders `owed` needs, challenges drawn from `rng`.
pub fn delete_orders<R: rand_core::CryptoRng + ?Sized>(
    signer: &Signer<'_>,
    owed: &[OwedDeletion],
    rng: &mut R,
) -> DeleteOrders {
    let mut orders = DeleteOrders::default();
    for d in owed {
        orders.add(signer, d, rng);
    }
    orders
}

/// A holder's answer to a deletion owed with a proof: whether the deletion is settled, and the
/// fault it shows. A proof that fails still settles it (the holder deleted after proving); a
/// "not found" settles it without blame (an earlier answer may have been lost after the holder
/// deleted, or its expiry sweep ran).
fn judge_proven_deletion(
    d: &OwedDeletion,
    prove: ShareToProve,
    challenge: &[u8; 32],
    raw: Option<&[u8]>,
) -> (bool, Option<HolderFault>) {
    let slot = ShareSlot {
        session: d.session,
        epoch: d.epoch,
        holder: d.node,
        index: prove.index,
    };
    match Reply::of_proof(raw) {
        Reply::Proven(proven) => match check_proof(&slot, challenge, &proven, |ctx, proof| {
            share_proof::verify_public(ctx, &prove.public_share, proof)
        }) {
            Ok(()) => (true, None),
            Err(why) => (true, Some(HolderFault::BadShare(why.to_string()))),
        },
        Reply::Refused(Refusal::NotFound) => (true, None),
        Reply::Refused(Refusal::BadShare(why)) => (
            true,
            Some(HolderFault::BadShare(format!("the holder says: {why}"))),
        ),
        _ => (false, None),
    }
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
    /// The challenge of each proving order outstanding.
    challenges: BTreeMap<u32, [u8; 32]>,
    faults: Vec<(NodeId, HolderFault)>,
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
            challenges: BTreeMap::new(),
            faults: Vec::new(),
            acknowledged: Vec::new(),
            actions: VecDeque::new(),
            phase: Phase::Sending {
                deadline: now_ms.saturating_add(answer_ms),
            },
        };
        for (id, d) in (first_id..).zip(owed) {
            let bytes = if d.prove.is_some() {
                let Some((bytes, challenge)) = orders.proving.get(d) else {
                    continue;
                };
                delivery.challenges.insert(id, *challenge);
                bytes
            } else {
                let Some(bytes) = orders.plain.get(&(d.session, d.epoch)) else {
                    continue;
                };
                bytes
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

    /// A holder's reply (raw bytes; `None`: no answer) to the order sent as `id`.
    pub fn handle_reply(&mut self, id: u32, raw: Option<&[u8]>, now_ms: u64) {
        let owed = self.outstanding.get(&id);
        let acknowledged = match (
            self.challenges.remove(&id),
            owed,
            owed.and_then(|d| d.prove),
        ) {
            (Some(challenge), Some(d), Some(prove)) => {
                let (settled, fault) = judge_proven_deletion(d, prove, &challenge, raw);
                if let Some(fault) = fault {
                    self.faults.push((d.node, fault));
                }
                settled
            }
            _ => raw.is_some_and(store_acknowledged),
        };
        self.handle_answer(id, acknowledged, now_ms);
    }

    /// Holders whose proof failed before they deleted, to quarantine.
    pub fn faults(&self) -> &[(NodeId, HolderFault)] {
        &self.faults
    }

    /// A holder's answer to the delete order sent as `id`, as acknowledged or not.
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
