//! What peers publish, decided without I/O: a heartbeat updates the peer table; a contribution
//! is checked (enrolled sender, in sequence, fresh, opens, whole outputs, possible accounting)
//! and then credited, held for its source's audit, or only witnessed for duplicate detection;
//! an audit's outcome releases or refuses the blocks it held; the intake's own decisions
//! (credit that now counts, credit cancelled, clones) land in the peer table. Time comes in as
//! `now_ms`; what the driver should count comes back as [`Count`]s for its metrics.

use crate::intake::sources::{AuditResult, Decision, SourceBook, Waiting};
use crate::intake::{Intake, IntakeEvent, Rejection};
use crate::peers::{PeerTable, Quarantine};
use peer::node::{CONTRIBUTIONS_TOPIC, GossipVerdict, STATUS_TOPIC};
use protocols::entropy::{Accounting, ConditionedBlock, credit_for_accounting};
use protocols::ids::NodeId;
use protocols::wire::{Contribution, SignedEnvelope, StatusHeartbeat};

/// Gossip envelopes larger than this are refused before decoding.
pub const MAX_GOSSIP: usize = 16 * 1024;

/// Longest source name a contribution may carry.
const MAX_SOURCE_NAME: usize = 128;

/// A figure the driver adds to its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    /// A gossip message refused before the intake saw it (a metric label).
    GossipRefused(&'static str),
    /// A contribution the intake did not credit (a metric label).
    IntakeRejected(&'static str),
    /// Bits that now count towards the pool, by contributor.
    Credited {
        /// The contributor.
        contributor: NodeId,
        /// Bits credited.
        bits: u64,
    },
    /// A peer newly quarantined (the cause's label).
    Quarantined(&'static str),
    /// An entropy audit's outcome: `assessed`, `failed` or `overclaim`.
    EntropyAudit(&'static str),
}

/// What gossip is judged and opened with: limits from the coordinator's configuration and
/// its Noise static secret.
#[derive(Clone, Copy)]
pub struct GossipRules<'a> {
    /// How long an attestation keeps a peer trusted.
    pub attestation_validity_ms: u64,
    /// How far a contribution's send time may be from now, either way.
    pub contribution_max_age_ms: u64,
    /// The coordinator's Noise static secret, which opens contributions.
    pub noise_static: &'a [u8; 32],
}

/// The books gossip writes to: the peer table, the pool's intake and the sources' audits.
pub struct Books<'a> {
    /// Enrolled peers.
    pub peers: &'a mut PeerTable,
    /// The entropy pool's intake.
    pub intake: &'a mut Intake,
    /// Every contributing source's audits and credit.
    pub sources: &'a mut SourceBook,
}

impl Books<'_> {
    /// Handles one gossip message on `topic` signed by `author` (`None`: unsigned or not an
    /// Ed25519 peer). Returns the verdict for gossipsub.
    pub fn handle_gossip(
        &mut self,
        rules: &GossipRules<'_>,
        topic: &str,
        author: Option<NodeId>,
        data: &[u8],
        now_ms: u64,
        counts: &mut Vec<Count>,
    ) -> GossipVerdict {
        let Some(author) = author else {
            counts.push(Count::GossipRefused("unsigned"));
            return GossipVerdict::Reject;
        };
        let envelope = match SignedEnvelope::from_bytes(data, MAX_GOSSIP) {
            Ok(e) => e,
            Err(e) => {
                tracing::info!(node = %author.short(), error = %e, "malformed gossip refused");
                counts.push(Count::GossipRefused("malformed"));
                return GossipVerdict::Reject;
            }
        };
        match topic {
            STATUS_TOPIC => match envelope.open::<StatusHeartbeat>(&author) {
                Ok(beat) => {
                    self.heartbeat(author, beat, now_ms, counts);
                    GossipVerdict::Accept
                }
                Err(e) => {
                    tracing::info!(node = %author.short(), error = %e, "heartbeat refused");
                    counts.push(Count::GossipRefused("heartbeat"));
                    GossipVerdict::Reject
                }
            },
            CONTRIBUTIONS_TOPIC => match envelope.open::<Contribution>(&author) {
                Ok(c) => {
                    match self.contribution(rules, author, c, now_ms) {
                        Ok(held) => {
                            tracing::debug!(node = %author.short(), held, "contribution held for the duplicate window");
                        }
                        Err(reason) => self.refused(author, None, reason, counts),
                    }
                    self.apply_intake_events(counts);
                    GossipVerdict::Accept
                }
                Err(e) => {
                    tracing::info!(node = %author.short(), error = %e, "contribution envelope refused");
                    counts.push(Count::GossipRefused("contribution_envelope"));
                    GossipVerdict::Reject
                }
            },
            _ => GossipVerdict::Ignore,
        }
    }

    /// Credits held blocks whose duplicate window has closed (at every tick and before
    /// readiness is judged) and applies what the intake decided.
    pub fn settle(&mut self, now_ms: u64, counts: &mut Vec<Count>) {
        self.intake.settle(now_ms);
        self.apply_intake_events(counts);
    }

    /// Credits a block an audit released at `cap` bits per sample at most, or only witnesses
    /// it when there is no cap (the audit failed or quarantined the source).
    pub fn credit_or_witness(
        &mut self,
        node: NodeId,
        source: &str,
        waiting: Waiting,
        cap: Option<f64>,
        now_ms: u64,
        counts: &mut Vec<Count>,
    ) {
        let result = match cap {
            Some(cap) => self.credit(node, source, waiting, cap, now_ms),
            None => {
                self.intake.witness(&node, &waiting.block, now_ms);
                self.intake.count_refused("audit_failed");
                Err("audit_failed")
            }
        };
        if let Err(reason) = result {
            self.refused(node, Some(source), reason, counts);
        }
        self.apply_intake_events(counts);
    }

    /// Settles a source's entropy audit: its cap, the blocks it held (credited under the cap,
    /// or only witnessed when the audit failed) and a quarantine of a source that claims far
    /// more than its audit found. `uniform` in [0, 1] (from the OS generator) places the
    /// source's next audit.
    pub fn settle_audit(
        &mut self,
        node: NodeId,
        source: &str,
        outcome: Result<AuditResult, impl std::fmt::Display>,
        uniform: f64,
        now_ms: u64,
        counts: &mut Vec<Count>,
    ) {
        match &outcome {
            Ok(r) => {
                tracing::info!(node = %node.short(), %source, h = r.h, samples = r.samples, estimator = %r.estimator, "entropy audit");
                counts.push(Count::EntropyAudit("assessed"));
            }
            Err(reason) => {
                tracing::info!(node = %node.short(), %source, %reason, "entropy audit failed: source not credited until one succeeds");
                counts.push(Count::EntropyAudit("failed"));
            }
        }
        let settled = self
            .sources
            .on_audit(node, source, outcome, uniform, now_ms);
        if settled.quarantined {
            let claim = self.sources.get(&node, source).map(|e| e.last_claim);
            tracing::warn!(node = %node.short(), %source, ?claim, "source claims far more entropy than its audit found: source quarantined");
            counts.push(Count::EntropyAudit("overclaim"));
            if let Some(p) = self.peers.get_mut(&node) {
                p.note_refusal("source_quarantined");
            }
        }
        for w in settled.waiting {
            self.credit_or_witness(node, source, w, settled.cap, now_ms, counts);
        }
    }

    /// A heartbeat from an enrolled peer: the newest by sequence is kept. Labels that differ
    /// from the enrolment are refused (placement uses the enrolled ones) and counted, so an
    /// operator sees a misconfigured or lying device; the heartbeat still counts as a sign of
    /// life.
    fn heartbeat(
        &mut self,
        author: NodeId,
        beat: StatusHeartbeat,
        now_ms: u64,
        counts: &mut Vec<Count>,
    ) {
        let Some(p) = self.peers.get_mut(&author) else {
            return;
        };
        if beat.region != p.region || beat.operator != p.operator {
            tracing::info!(node = %author.short(), claimed_region = %beat.region, claimed_operator = %beat.operator, "heartbeat labels differ from enrolment; enrolment wins");
            counts.push(Count::GossipRefused("heartbeat_labels"));
            p.note_refusal("heartbeat_labels");
        }
        if p.heartbeat.as_ref().is_none_or(|h| beat.seq > h.seq) {
            p.heartbeat = Some(beat);
            p.heartbeat_at_ms = Some(now_ms);
        }
    }

    /// Checks sender (enrolled, in sequence, fresh), opens, then hands the block to the intake:
    /// credited (after its hold window) when the sender is attested and not quarantined, only
    /// witnessed otherwise. Returns the bits held, or why none were (a metric label).
    fn contribution(
        &mut self,
        rules: &GossipRules<'_>,
        author: NodeId,
        c: Contribution,
        now: u64,
    ) -> Result<u64, &'static str> {
        let max_age = rules.contribution_max_age_ms;
        let Some(p) = self.peers.get_mut(&author) else {
            tracing::debug!(node = %author.short(), "contribution from an unenrolled node dropped");
            return Err("unenrolled");
        };
        let untrusted =
            (!p.trusted(now, rules.attestation_validity_ms)).then_some(if p.quarantine.is_some() {
                "quarantined"
            } else {
                "unattested"
            });
        if p.last_seq.is_some_and(|last| c.seq <= last) {
            tracing::info!(node = %author.short(), seq = c.seq, "replayed or reordered contribution refused");
            return Err(untrusted.unwrap_or("sequence"));
        }
        if now.saturating_sub(c.sent_at_ms) > max_age || c.sent_at_ms > now.saturating_add(max_age)
        {
            tracing::info!(node = %author.short(), "stale contribution refused");
            return Err(untrusted.unwrap_or("stale"));
        }
        let body = match peer::contribution::open(rules.noise_static, &author, c.seq, &c.sealed) {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(node = %author.short(), error = %e, "contribution does not open");
                return Err(untrusted.unwrap_or("unopenable"));
            }
        };
        p.last_seq = Some(c.seq);
        let accounting = &body.accounting;
        let h_claim = f64::from(accounting.h_millibits) / 1000.0;
        let Some(block) = ConditionedBlock::from_received(body.conditioned, accounting.raw_samples)
        else {
            tracing::info!(node = %author.short(), "contribution that is not whole conditioned outputs refused");
            return Err(untrusted.unwrap_or("wrong_size"));
        };
        if accounting.source.is_empty()
            || accounting.source.len() > MAX_SOURCE_NAME
            || !(1..=8).contains(&accounting.bits_per_sample)
            || h_claim > f64::from(accounting.bits_per_sample)
        {
            tracing::info!(node = %author.short(), source = %accounting.source, "contribution with impossible accounting refused");
            return Err(untrusted.unwrap_or("bad_accounting"));
        }
        if let Some(reason) = untrusted {
            // Never credited; remembered so that a trusted peer sending the same block is caught.
            tracing::debug!(node = %author.short(), "contribution from an unattested or quarantined peer witnessed, not credited");
            self.intake.witness(&author, &block, now);
            return Err(reason);
        }
        let waiting = Waiting {
            source_index: source_index(&accounting.source),
            accounting: Accounting {
                outputs: block.outputs(),
                raw_samples: accounting.raw_samples,
                h_per_sample: h_claim,
            },
            block,
        };
        // The block itself stays with the book while it waits; a copy goes on here.
        let copy = Waiting {
            source_index: waiting.source_index,
            block: waiting.block.clone(),
            accounting: waiting.accounting,
        };
        match self.sources.on_contribution(
            author,
            &accounting.source,
            waiting,
            &accounting.estimator,
            now,
        ) {
            Decision::Credit(cap) => {
                let credited = self.credit(author, &accounting.source, copy, cap, now);
                if let Err(reason) = credited {
                    self.sources.refused(&author, &accounting.source, reason);
                }
                credited
            }
            Decision::Waiting(_) => Ok(0),
            Decision::Refuse(reason) => {
                self.intake.witness(&author, &copy.block, now);
                self.intake.count_refused(reason);
                Err(reason)
            }
        }
    }

    /// Hands a block to the intake at `cap` bits per sample at most.
    fn credit(
        &mut self,
        author: NodeId,
        source: &str,
        waiting: Waiting,
        cap: f64,
        now_ms: u64,
    ) -> Result<u64, &'static str> {
        let bits = credit_for_accounting(&waiting.accounting, cap);
        match self
            .intake
            .take(&author, waiting.source_index, &waiting.block, bits, now_ms)
        {
            Ok(held) => {
                self.sources.credited(&author, source, held);
                Ok(held)
            }
            Err(Rejection::Replay) => {
                tracing::info!(node = %author.short(), "replayed entropy refused");
                Err("replayed_entropy")
            }
            Err(Rejection::Clone) => {
                // Not credited; whether this peer is the copier is for the evidence to say.
                tracing::info!(node = %author.short(), "duplicate of another peer's entropy refused");
                Err("cloned_entropy")
            }
        }
    }

    /// Counts a refusal against the peer (and its source, when an audit's release was refused).
    fn refused(
        &mut self,
        node: NodeId,
        source: Option<&str>,
        reason: &'static str,
        counts: &mut Vec<Count>,
    ) {
        counts.push(Count::IntakeRejected(reason));
        if let Some(source) = source {
            self.sources.refused(&node, source, reason);
        }
        if let Some(p) = self.peers.get_mut(&node) {
            p.note_refusal(reason);
        }
    }

    /// Applies the intake's decisions to the peer table: credit that now counts, credit
    /// cancelled by a duplicate, and peers the duplicate evidence names as clones.
    fn apply_intake_events(&mut self, counts: &mut Vec<Count>) {
        for event in self.intake.drain_events() {
            match event {
                IntakeEvent::Credited { contributor, bits } => {
                    if let Some(p) = self.peers.get_mut(&contributor) {
                        p.credited_bits = p.credited_bits.saturating_add(bits);
                    }
                    counts.push(Count::Credited { contributor, bits });
                }
                IntakeEvent::Cancelled {
                    contributor,
                    bits,
                    partner,
                } => {
                    tracing::info!(node = %contributor.short(), partner = %partner.short(), bits, "held credit cancelled: another peer sent the same block");
                    counts.push(Count::IntakeRejected("duplicate_cancelled"));
                    if let Some(p) = self.peers.get_mut(&contributor) {
                        p.note_refusal("duplicate_cancelled");
                    }
                }
                IntakeEvent::Cloned {
                    contributor,
                    partner,
                    later,
                    earlier,
                } => {
                    tracing::warn!(node = %contributor.short(), partner = %partner.short(), later, earlier, "cloned entropy: peer quarantined");
                    if let Some(p) = self.peers.get_mut(&contributor) {
                        if p.quarantine.is_none() {
                            counts.push(Count::Quarantined("cloned_entropy"));
                        }
                        p.quarantine = Some(Quarantine::ClonedEntropy);
                    }
                }
            }
        }
    }
}

/// A stable small number per source name, so each source of a peer feeds its own pool cursor.
fn source_index(name: &str) -> u32 {
    name.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 64
}

#[cfg(test)]
#[path = "gossip_tests.rs"]
mod tests;
