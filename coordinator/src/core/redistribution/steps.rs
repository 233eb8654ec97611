//! The steps of a redistribution between its phases: the orders sent to old and new holders
//! and each of their answers taken (dealings checked, reports judged, acknowledgements matched).

use super::judge::{Dealing, ack_fits, dealing_fault, decode, judge_reports, qualified};
use super::{Phase, Redistribution, messages};
use crate::core::PlacementError;
use crate::core::holder_audits::HolderFault;
use protocols::ids::{NodeId, ShareIndex};
use protocols::redistribution::dealing_digest;
use protocols::sharing::Commitments;
use protocols::sharing::redistribute::combined_commitments;
use protocols::wire::{
    CombineAck, DealRef, HolderOrder, NewHolder, Refusal, SignedEnvelope, SubDeal, SubShareReport,
};

impl Redistribution<'_> {
    pub(super) fn send_redeals(&mut self, now_ms: u64) {
        let redeal = messages::redeal(&self.record, self.to, self.new_threshold, &self.new_holders);
        let envelope = SignedEnvelope::seal(self.signer.key, &redeal);
        let old_holders: Vec<NodeId> = self.old_owed.iter().map(|d| d.node).collect();
        for node in old_holders {
            self.send(node, HolderOrder::Redeal(envelope.clone()));
        }
        let deadline = self.deadline(now_ms);
        self.phase = Phase::Redealing { deadline };
    }

    /// An old holder's answer to `Redeal`: its dealing kept if it passes the public check.
    pub(super) fn take_sub_deal(&mut self, node: NodeId, reply: Option<&[u8]>) {
        let Some(reply) = decode::<SignedEnvelope>(reply) else {
            return;
        };
        let envelope = match reply {
            Ok(envelope) => envelope,
            Err(Refusal::NotReady(_)) => {
                self.not_ready += 1;
                return;
            }
            // The holder says its own share of this epoch fails its commitments (its store was
            // changed): it cannot serve the session, and it is named as a share that failed a
            // fetch would name it.
            Err(Refusal::BadShare(why)) => {
                self.faults.push((
                    node,
                    HolderFault::BadShare(format!("its share cannot be dealt: {why}")),
                ));
                return;
            }
            Err(_) => return,
        };
        // Not signed by the holder: it says nothing a third party could check; silence.
        let Ok(deal) = envelope.open::<SubDeal>(&node) else {
            return;
        };
        if !self.record.holders.iter().any(|h| h.node == node) {
            return;
        }
        if let Some(why) = dealing_fault(&self.record, self.to, self.new_threshold, &node, &deal) {
            self.faults.push((node, HolderFault::BadShare(why)));
            return;
        }
        let digest = dealing_digest(&deal.commitments);
        self.dealings.insert(
            deal.dealer,
            Dealing {
                node,
                envelope,
                deal,
                digest,
            },
        );
    }

    pub(super) fn send_sub_shares(&mut self, now_ms: u64) {
        let need = self.record.commitments.threshold();
        if self.dealings.len() < need {
            return self.retire(PlacementError::TooFewDealers {
                have: self.dealings.len(),
                need,
                not_ready: self.not_ready,
            });
        }
        let deals: Vec<SignedEnvelope> =
            self.dealings.values().map(|d| d.envelope.clone()).collect();
        for h in self.new_holders.clone() {
            let order = messages::sub_shares(&self.record, self.to, self.new_threshold, &h, &deals);
            let envelope = SignedEnvelope::seal(self.signer.key, &order);
            self.send(h.node, HolderOrder::SubShares(envelope));
        }
        let deadline = self.deadline(now_ms);
        self.phase = Phase::Relaying { deadline };
    }

    /// A new holder's signed report; an answer that is not one leaves the holder out.
    pub(super) fn take_report(&mut self, node: NodeId, reply: Option<&[u8]>) {
        let Some(Ok(envelope)) = decode::<SignedEnvelope>(reply) else {
            return;
        };
        let Ok(report) = envelope.open::<SubShareReport>(&node) else {
            return;
        };
        let index = self
            .new_holders
            .iter()
            .find(|h| h.node == node)
            .map(|h| h.index);
        if report.session == self.record.session
            && report.to == self.to
            && Some(report.index) == index
        {
            self.reports.insert(node, report);
        }
    }

    /// Judges every complaint, fixes Q and `C'`, and tells the remaining new holders to combine.
    pub(super) fn send_combines(&mut self, now_ms: u64) {
        let (bad_dealers, bad_reporters) = judge_reports(
            &self.record.commitments,
            self.new_threshold,
            &self.new_holders,
            &self.reports,
            &self.dealings,
        );
        self.dropped.extend(bad_reporters);
        for dealer in bad_dealers {
            if let Some(d) = self.dealings.remove(&dealer) {
                let why = format!("sub-dealing of index {dealer} shown faulty by a complaint");
                self.faults.push((d.node, HolderFault::BadShare(why)));
            }
        }
        for node in &self.dropped {
            let why = "a complaint against a sound sub-dealing (bad report)".to_string();
            self.faults.push((*node, HolderFault::BadShare(why)));
        }
        let combiners: Vec<NewHolder> = self
            .new_holders
            .iter()
            .filter(|h| self.reports.contains_key(&h.node) && !self.dropped.contains(&h.node))
            .cloned()
            .collect();
        if combiners.len() < self.min_acks {
            return self.retire(PlacementError::TooFewNewHolders {
                have: combiners.len(),
                need: self.min_acks,
            });
        }
        let need = self.record.commitments.threshold();
        let qualified = qualified(&self.dealings, &combiners, &self.reports, need);
        if qualified.len() < need {
            return self.retire(PlacementError::TooFewDealers {
                have: qualified.len(),
                need,
                not_ready: self.not_ready,
            });
        }
        let pairs: Vec<(ShareIndex, &Commitments)> = qualified
            .iter()
            .map(|d| (d.deal.dealer, &d.deal.commitments))
            .collect();
        let combined = match combined_commitments(&self.record.commitments, &pairs) {
            Ok(c) => c,
            Err(e) => return self.retire(PlacementError::Redistribution(e.to_string())),
        };
        let refs: Vec<DealRef> = qualified.iter().map(|d| d.reference()).collect();
        self.new_commitments = Some(combined);
        for h in combiners {
            let order = messages::combine(&self.record, self.to, &h, &refs);
            let envelope = SignedEnvelope::seal(self.signer.key, &order);
            self.send(h.node, HolderOrder::Combine(envelope));
        }
        let deadline = self.deadline(now_ms);
        self.phase = Phase::Combining { deadline };
    }

    /// A new holder's acknowledgement, counted if its public share is its share under `C'`.
    pub(super) fn take_ack(&mut self, node: NodeId, reply: Option<&[u8]>) {
        let Some(Ok(ack)) = decode::<CombineAck>(reply) else {
            return;
        };
        let (Some(commitments), Some(holder)) = (
            self.new_commitments.as_ref(),
            self.new_holders.iter().find(|h| h.node == node),
        ) else {
            return;
        };
        if ack_fits(&ack, &self.record, self.to, holder, commitments) {
            self.acked.insert(node);
        } else {
            let why = "a combined share acknowledged that is not its share under C'".to_string();
            self.faults.push((node, HolderFault::BadShare(why)));
        }
    }
}
