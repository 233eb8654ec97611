//! The coordinator's judgements in a redistribution, as pure functions of what came back: is a
//! sub-dealing acceptable (the public check), who is at fault in each complaint, which dealings
//! form the qualified set, and does an acknowledgement carry the holder's share under `C'`.

use crate::db::{Holder, OwedDeletion, SessionRecord, ShareToProve};
use peer::node::Protocol;
use protocols::ids::{Epoch, NodeId, SessionId, ShareIndex};
use protocols::redistribution::{Verdict, judge_complaint};
use protocols::share_proof;
use protocols::sharing::Commitments;
use protocols::sharing::redistribute::{check_dealing, public_share};
use protocols::wire::{
    self, CombineAck, DealRef, NewHolder, Refusal, Reply, SignedEnvelope, SubDeal, SubShareReport,
};
use std::collections::{BTreeMap, BTreeSet};

/// A dealing that passed the public check, as its dealer signed it.
#[derive(Debug)]
pub(super) struct Dealing {
    pub(super) node: NodeId,
    pub(super) envelope: SignedEnvelope,
    pub(super) deal: SubDeal,
    pub(super) digest: [u8; 32],
}

impl Dealing {
    pub(super) fn reference(&self) -> DealRef {
        DealRef {
            dealer: self.deal.dealer,
            digest: self.digest,
        }
    }
}

/// A holder's reply decoded: `None` when there was none or it is not a `Reply<T>`.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    reply: Option<&[u8]>,
) -> Option<Result<T, Refusal>> {
    let reply: Reply<T> = wire::decode(reply?, Protocol::Store.limits().1).ok()?;
    Some(reply.result)
}

/// Why `deal`, signed by `node`, is not an acceptable sub-dealing of `record` (at its epoch e)
/// onto epoch `to` with threshold `new_threshold`; `None` when it is. A reason names its dealer.
pub(super) fn dealing_fault(
    record: &SessionRecord,
    to: Epoch,
    new_threshold: u8,
    node: &NodeId,
    deal: &SubDeal,
) -> Option<String> {
    let index = record.holders.iter().find(|h| &h.node == node)?.index;
    if deal.session != record.session || deal.to != to {
        Some("a sub-dealing for another session or epoch".to_string())
    } else if deal.dealer != index {
        Some(format!(
            "a sub-dealing as index {} from the holder of index {index}",
            deal.dealer
        ))
    } else if deal.commitments.threshold() != usize::from(new_threshold) {
        Some("a sub-dealing of the wrong degree".to_string())
    } else {
        check_dealing(&record.commitments, deal.dealer, &deal.commitments)
            .err()
            .map(|e| format!("a sub-dealing not of its share: {e}"))
    }
}

/// Every complaint of every report judged: the dealers shown at fault, and the complainers
/// shown at fault (a complaint about a dealing that was not relayed is the complainer's).
pub(super) fn judge_reports(
    old: &Commitments,
    new_threshold: u8,
    new_holders: &[NewHolder],
    reports: &BTreeMap<NodeId, SubShareReport>,
    dealings: &BTreeMap<ShareIndex, Dealing>,
) -> (BTreeSet<ShareIndex>, BTreeSet<NodeId>) {
    let mut bad_dealers = BTreeSet::new();
    let mut bad_reporters = BTreeSet::new();
    for (node, report) in reports {
        let Some(holder) = new_holders.iter().find(|h| &h.node == node) else {
            continue;
        };
        for complaint in &report.complaints {
            let verdict = match dealings.get(&complaint.deal.dealer) {
                Some(d) => judge_complaint(
                    old,
                    new_threshold,
                    &d.deal,
                    holder.index,
                    &holder.share_key,
                    complaint,
                ),
                None => Verdict::ComplainerAtFault,
            };
            match verdict {
                Verdict::DealerAtFault => bad_dealers.insert(complaint.deal.dealer),
                Verdict::ComplainerAtFault => bad_reporters.insert(*node),
            };
        }
    }
    (bad_dealers, bad_reporters)
}

/// The qualified set: the `need` lowest-index dealings that every one of `combiners` kept.
pub(super) fn qualified<'a>(
    dealings: &'a BTreeMap<ShareIndex, Dealing>,
    combiners: &[NewHolder],
    reports: &BTreeMap<NodeId, SubShareReport>,
    need: usize,
) -> Vec<&'a Dealing> {
    dealings
        .values()
        .filter(|d| {
            let r = d.reference();
            combiners.iter().all(|h| {
                reports
                    .get(&h.node)
                    .is_some_and(|rep| rep.valid.contains(&r))
            })
        })
        .take(need)
        .collect()
}

/// Whether `ack` is `holder`'s share of `record.session` at epoch `to` under `commitments`.
pub(super) fn ack_fits(
    ack: &CombineAck,
    record: &SessionRecord,
    to: Epoch,
    holder: &NewHolder,
    commitments: &Commitments,
) -> bool {
    let expected = public_share(commitments, holder.index)
        .map(|p| p.compress().to_bytes())
        .ok();
    ack.session == record.session
        && ack.epoch == to
        && ack.index == holder.index
        && &ack.commitments == commitments
        && Some(ack.public_share) == expected
}

/// `record` as committed at epoch `to` on the new holders that acknowledged, with `C'`.
pub(super) fn committed(
    record: &SessionRecord,
    to: Epoch,
    acked: &[&NewHolder],
    commitments: Commitments,
    now_ms: u64,
) -> SessionRecord {
    SessionRecord {
        epoch: to,
        holders: acked
            .iter()
            .map(|h| Holder {
                node: h.node,
                index: h.index,
            })
            .collect(),
        commitments,
        // Boxed to its holders: no master key opens this epoch.
        sealed_under: None,
        boxed: true,
        rotations: record.rotations.saturating_add(1),
        rotated_at_ms: now_ms,
        ..record.clone()
    }
}

/// The deletions of `epoch` of `session` owed by `nodes`.
pub(super) fn owed(
    session: SessionId,
    epoch: Epoch,
    nodes: impl Iterator<Item = NodeId>,
) -> Vec<OwedDeletion> {
    nodes
        .map(|node| OwedDeletion {
            session,
            epoch,
            node,
            prove: None,
        })
        .collect()
}

/// Epoch e's deletions owed by every holder of `record` (at epoch e) once e+1 commits: for a
/// session boxed to its holders, each with the public share the holder proves before deleting
/// (a holder whose public share the commitments do not give owes a plain deletion).
pub(super) fn owed_with_proofs(record: &SessionRecord) -> Vec<OwedDeletion> {
    record
        .holders
        .iter()
        .map(|h| OwedDeletion {
            session: record.session,
            epoch: record.epoch,
            node: h.node,
            prove: record
                .boxed
                .then(|| share_proof::public_share_bytes(&record.commitments, h.index).ok())
                .flatten()
                .map(|public_share| ShareToProve {
                    index: h.index,
                    public_share,
                }),
        })
        .collect()
}
