//! Contribution intake: clone and replay detection, credit held for a duplicate window,
//! per-peer credit caps, Fortuna pools. What a block is worth is decided before it gets here,
//! from its accounting capped by the source's audit ([`sources`]); FIPS 140-2 is not run on
//! contributions (decision 0039).

mod evidence;
pub mod feedback;
mod held;
pub mod shortfall;
pub mod sources;

pub use evidence::{PairEvidence, Verdict};
pub use held::MAX_HELD;

use held::{HeldBlock, HeldCredit};
use protocols::entropy::{
    Accumulator, AccumulatorConfig, CloneDetector, ConditionedBlock, CreditPolicy, MatchKind,
    PeerCreditLedger, SourceClaim,
};
use protocols::ids::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Why a block was not credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Identical or near-identical to another peer's recent block (the sender is not
    /// necessarily the copier: see [`IntakeEvent::Cloned`]).
    Clone,
    /// The same peer sent this (or nearly this) block before.
    Replay,
}

/// How the intake decides about duplicated entropy (decision 0013).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateRules {
    /// Milliseconds a clean block's credit is held; a cross-peer duplicate arriving within it
    /// cancels the credit of both blocks. 0 credits at once.
    pub hold_ms: u64,
    /// Duplicate events with one partner, later in a clear majority, before a peer is named as
    /// a copier (a pair with twice as many events and no clear order is named together).
    pub min_events: u32,
}

impl Default for DuplicateRules {
    fn default() -> Self {
        Self {
            hold_ms: 5_000,
            min_events: 3,
        }
    }
}

/// What the intake decided that the service acts on (drained with [`Intake::drain_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeEvent {
    /// A held block's window closed clean: its bits now count.
    Credited {
        /// The sender.
        contributor: NodeId,
        /// Bits credited.
        bits: u64,
    },
    /// A held block's credit was cancelled: `partner` sent the same block within the window.
    Cancelled {
        /// The block's sender.
        contributor: NodeId,
        /// Bits that will not count.
        bits: u64,
        /// Who sent the duplicate.
        partner: NodeId,
    },
    /// The evidence names `contributor` as a device that sends another's entropy: quarantine it.
    Cloned {
        /// The peer to quarantine.
        contributor: NodeId,
        /// The peer whose blocks it duplicated.
        partner: NodeId,
        /// Events in which `contributor` was the later sender, and the earlier one.
        later: u32,
        /// Events in which `partner` was the later sender.
        earlier: u32,
    },
}

/// Running totals of the intake.
#[derive(Debug, Default, Clone)]
pub struct IntakeStats {
    /// Blocks taken in (credited or not).
    pub blocks: u64,
    /// Refusals before the intake (audit, source quarantine, malformed accounting) by reason.
    pub refused: BTreeMap<String, u64>,
    /// Blocks that duplicated another peer's (each a duplicate event).
    pub clones: u64,
    /// Blocks flagged as replays.
    pub replays: u64,
    /// Bits credited (after their hold window).
    pub credited: u64,
    /// Held bits cancelled because another peer sent the same block within the window.
    pub cancelled: u64,
    /// Blocks settled before their window closed because the hold queue was full.
    pub settled_early: u64,
    /// Blocks of untrusted senders remembered for duplicate detection only.
    pub witnessed: u64,
}

/// Decisions kept for [`Intake::drain_events`] at most; a caller that never drains loses the
/// oldest (the service drains after every block).
pub const MAX_EVENTS: usize = 16_384;

/// The coordinator's entropy intake and pool.
pub struct Intake {
    accumulator: Accumulator,
    clones: CloneDetector,
    ledger: PeerCreditLedger,
    rules: DuplicateRules,
    held: HeldCredit,
    evidence: PairEvidence,
    events: Vec<IntakeEvent>,
    stats: IntakeStats,
    flagged: BTreeSet<NodeId>,
    blocks_since_key: (u32, u32),
    last_now_ms: u64,
}

impl Intake {
    /// A fresh intake under `rules`. `sketch_key` must come from the OS generator (it hides
    /// the clone sketch positions).
    pub fn with_rules(
        sketch_key: [u8; 32],
        credit: CreditPolicy,
        rules: DuplicateRules,
    ) -> Result<Self, protocols::entropy::CloneError> {
        Ok(Self {
            accumulator: Accumulator::new(AccumulatorConfig::default()),
            clones: CloneDetector::new(
                4096,
                sketch_key,
                protocols::entropy::clones::DEFAULT_DISTANCE_FRACTION,
            )?,
            ledger: PeerCreditLedger::new(credit, 4096),
            rules,
            held: HeldCredit::default(),
            evidence: PairEvidence::new(rules.min_events),
            events: Vec::new(),
            stats: IntakeStats::default(),
            flagged: BTreeSet::new(),
            blocks_since_key: (0, 0),
            last_now_ms: 0,
        })
    }

    /// Counts a block refused before the intake (its reason as a metric label).
    pub fn count_refused(&mut self, reason: &str) {
        self.blocks_since_key.1 += 1;
        *self.stats.refused.entry(reason.to_string()).or_default() += 1;
    }

    /// Checks one block from a trusted `contributor` worth `bits` (its accounting, capped by its
    /// source's audit): clone/replay check, per-peer credit cap; a clean block's credit is then
    /// held for the duplicate window (credited by [`Self::settle`], or at once when the window
    /// is 0). Returns the bits held.
    pub fn take(
        &mut self,
        contributor: &NodeId,
        source: u32,
        block: &ConditionedBlock,
        bits: u64,
        now_ms: u64,
    ) -> Result<u64, Rejection> {
        self.settle(now_ms);
        self.stats.blocks += 1;
        let fingerprint = self.clones.fingerprint(block.as_bytes());
        if self.duplicates(contributor, &fingerprint) {
            self.blocks_since_key.1 += 1;
            self.stats.clones += 1;
            return Err(Rejection::Clone);
        }
        let check = self
            .clones
            .observe_fingerprint(&contributor.0, fingerprint.clone());
        if !check.is_clean() {
            // Its own earlier stream (e.g. a restarted device with a deterministic source):
            // not credited, counted, but not a reason to distrust it as a holder.
            self.blocks_since_key.1 += 1;
            self.stats.replays += 1;
            return Err(Rejection::Replay);
        }
        let claim = SourceClaim {
            debiased_bits: bits,
            claimed_min_entropy_per_bit: 1.0,
            measured_min_entropy_per_bit: None,
        };
        let credit = self
            .ledger
            .credit(&contributor.0, std::slice::from_ref(&claim));
        let held = HeldBlock {
            contributor: *contributor,
            source,
            block: block.clone(),
            fingerprint,
            credit,
            due_ms: now_ms.saturating_add(self.rules.hold_ms),
        };
        if self.rules.hold_ms == 0 {
            self.pool(held, true, now_ms);
        } else if let Some(early) = self.held.hold(held) {
            self.stats.settled_early += 1;
            self.pool(early, true, now_ms);
        }
        Ok(credit)
    }

    /// Remembers a block of an enrolled peer that is not trusted now (unattested or
    /// quarantined), for duplicate detection only: it is never credited, but a held block it
    /// duplicates loses its credit, and the order counts as evidence. Returns whether it
    /// duplicated another peer's block.
    pub fn witness(&mut self, contributor: &NodeId, block: &ConditionedBlock, now_ms: u64) -> bool {
        self.settle(now_ms);
        self.stats.witnessed += 1;
        let fingerprint = self.clones.fingerprint(block.as_bytes());
        if self.duplicates(contributor, &fingerprint) {
            return true;
        }
        self.clones.observe_fingerprint(&contributor.0, fingerprint);
        false
    }

    /// When the block `fingerprint` of `contributor` duplicates other peers' recent blocks:
    /// remembers it, cancels the held credit of the blocks it duplicates, records the order as
    /// evidence per partner, and returns true.
    fn duplicates(
        &mut self,
        contributor: &NodeId,
        fingerprint: &protocols::entropy::clones::BlockFingerprint,
    ) -> bool {
        let check = self.clones.check_fingerprint(&contributor.0, fingerprint);
        let partners: BTreeSet<NodeId> = check
            .matches
            .iter()
            .filter(|m| matches!(m.kind, MatchKind::ExactClone | MatchKind::NearClone))
            .map(|m| NodeId(m.other))
            .collect();
        if partners.is_empty() {
            return false;
        }
        self.clones
            .observe_fingerprint(&contributor.0, fingerprint.clone());
        for partner in partners {
            let clones = &self.clones;
            let cancelled = self
                .held
                .take_matching(&partner, |held| clones.same_or_near(held, fingerprint));
            for held in cancelled {
                self.stats.cancelled = self.stats.cancelled.saturating_add(held.credit);
                self.blocks_since_key.1 += 1;
                self.push_event(IntakeEvent::Cancelled {
                    contributor: partner,
                    bits: held.credit,
                    partner: *contributor,
                });
                // Mixing cannot lower the pool's entropy; only its credit is refused.
                let now = self.last_now_ms;
                self.pool(held, false, now);
            }
            match self.evidence.record(*contributor, partner) {
                Verdict::Undecided => {}
                Verdict::Copier(copier) => {
                    let (later, earlier) = self.evidence.counts(copier, partner);
                    self.flag(copier, partner, later, earlier);
                }
                Verdict::Both(a, b) => {
                    let (a_later, b_later) = self.evidence.counts(a, b);
                    self.flag(a, b, a_later, b_later);
                    self.flag(b, a, b_later, a_later);
                }
            }
        }
        true
    }

    fn flag(&mut self, contributor: NodeId, partner: NodeId, later: u32, earlier: u32) {
        if self.flagged.insert(contributor) {
            // Whatever it still has held is another device's entropy too.
            let held = self.held.take_matching(&contributor, |_| true);
            for h in held {
                self.stats.cancelled = self.stats.cancelled.saturating_add(h.credit);
                self.push_event(IntakeEvent::Cancelled {
                    contributor,
                    bits: h.credit,
                    partner,
                });
                let now = self.last_now_ms;
                self.pool(h, false, now);
            }
            self.push_event(IntakeEvent::Cloned {
                contributor,
                partner,
                later,
                earlier,
            });
        }
    }

    /// Credits every held block whose window has closed at `now_ms`.
    pub fn settle(&mut self, now_ms: u64) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        for held in self.held.due(now_ms) {
            self.pool(held, true, now_ms);
        }
    }

    /// Mixes a block into the pool, with its credit or none.
    fn pool(&mut self, held: HeldBlock, credited: bool, now_ms: u64) {
        let credit = if credited { held.credit } else { 0 };
        if credited {
            self.stats.credited = self.stats.credited.saturating_add(credit);
            self.blocks_since_key.0 += 1;
            self.push_event(IntakeEvent::Credited {
                contributor: held.contributor,
                bits: credit,
            });
        }
        // The pool refuses only past its contributor bound; the block is then simply not pooled.
        if let Err(e) = self.accumulator.add_event(
            &held.contributor.0,
            held.source,
            held.block.as_bytes(),
            credit,
        ) {
            tracing::warn!(error = %e, "pool refused a block");
        }
        self.last_now_ms = self.last_now_ms.max(now_ms);
        self.accumulator.maybe_reseed(self.last_now_ms);
    }

    fn push_event(&mut self, event: IntakeEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    /// What the intake decided since the last call (credits, cancellations, peers to quarantine).
    pub fn drain_events(&mut self) -> Vec<IntakeEvent> {
        std::mem::take(&mut self.events)
    }

    /// Starts a new crediting round (per-peer caps reset).
    pub fn new_round(&mut self) {
        self.ledger.new_round();
    }

    /// Whether the pools hold enough credited entropy from enough distinct peers. Pools are all
    /// folded into the generator by [`Self::draw`], so everything counted here is in the key;
    /// credit still held for its duplicate window does not count.
    pub fn ready(&self, min_credited_bits: u64, min_contributors: usize) -> bool {
        self.accumulator
            .ready_after_full_reseed(min_credited_bits, min_contributors)
    }
    /// Draws 32 bytes for a key (always mixed with `os_random`) and returns the receipt of the
    /// entropy behind it, then starts accounting afresh.
    pub fn draw(
        &mut self,
        os_random: &[u8; 32],
    ) -> Result<([u8; 32], protocols::wire::EntropyReceipt), protocols::entropy::AccumulatorError>
    {
        // Everything `ready` counted goes into the key, so the receipt is true (decision 0005).
        self.accumulator.reseed_all(self.last_now_ms);
        let receipt = self.accumulator.reset_accounting();
        let mut out = [0u8; 32];
        self.accumulator.generate(os_random, &mut out)?;
        let (passed, rejected) = std::mem::take(&mut self.blocks_since_key);
        let receipt = protocols::wire::EntropyReceipt {
            contributors: receipt
                .contributors
                .iter()
                .map(|c| protocols::wire::ReceiptLine {
                    node: NodeId(c.contributor),
                    credited_bits: c.credited_bits,
                    blocks: 0,
                })
                .collect(),
            credited_bits: receipt.total_credited_bits,
            blocks_passed: passed,
            blocks_rejected: rejected,
        };
        Ok((out, receipt))
    }

    /// Peers caught sending another peer's entropy (cloned streams).
    pub fn flagged(&self) -> &BTreeSet<NodeId> {
        &self.flagged
    }

    /// Clears a peer's clone flag (an operator lifted its quarantine); `true` if it had one.
    pub fn unflag(&mut self, node: &NodeId) -> bool {
        self.flagged.remove(node)
    }

    /// Running totals.
    pub fn stats(&self) -> &IntakeStats {
        &self.stats
    }

    /// What the pools hold now (credited bits per contributor, in the key or waiting in a pool).
    pub fn pool_credit(&self) -> (u64, usize) {
        let all = self.accumulator.potential_credit();
        (
            all.values().fold(0u64, |a, b| a.saturating_add(*b)),
            all.values().filter(|b| **b > 0).count(),
        )
    }

    /// Credit waiting in pools not yet folded into the key.
    pub fn pending_bits(&self) -> u64 {
        self.accumulator.pending_credited_bits()
    }

    /// Credit held for its duplicate window (not counted yet), and the blocks holding it.
    pub fn held(&self) -> (u64, usize) {
        (self.held.bits(), self.held.count())
    }
}

#[cfg(test)]
mod tests;
