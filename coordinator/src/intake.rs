//! Contribution intake: FIPS 140-2 battery, clone and replay detection, per-peer credit caps, Fortuna pools.

use protocols::entropy::{
    Accumulator, AccumulatorConfig, CloneDetector, CreditPolicy, DebiasedBlock, PeerCreditLedger,
    SourceClaim, fips_140_2,
};
use protocols::ids::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Why a block was not credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Failed one or more FIPS 140-2 tests (named).
    Fips(Vec<String>),
    /// Identical or near-identical to another peer's recent block.
    Clone,
    /// The same peer sent this (or nearly this) block before.
    Replay,
}

/// Running totals of the intake.
#[derive(Debug, Default, Clone)]
pub struct IntakeStats {
    /// Blocks that passed the battery.
    pub fips_passed: u64,
    /// Blocks that failed it.
    pub fips_failed: u64,
    /// Failures by test name.
    pub fips_failures: BTreeMap<String, u64>,
    /// Blocks flagged as clones of another peer's.
    pub clones: u64,
    /// Blocks flagged as replays.
    pub replays: u64,
    /// Bits credited.
    pub credited: u64,
}

/// The coordinator's entropy intake and pool.
pub struct Intake {
    accumulator: Accumulator,
    clones: CloneDetector,
    ledger: PeerCreditLedger,
    stats: IntakeStats,
    flagged: BTreeSet<NodeId>,
    blocks_since_key: (u32, u32),
    last_now_ms: u64,
}

impl Intake {
    /// A fresh intake; `sketch_key` must come from the OS generator (it hides the clone sketch positions).
    pub fn new(sketch_key: [u8; 32], credit: CreditPolicy) -> Result<Self, String> {
        Ok(Self {
            accumulator: Accumulator::new(AccumulatorConfig::default()),
            clones: CloneDetector::new(
                4096,
                sketch_key,
                protocols::entropy::clones::DEFAULT_DISTANCE_FRACTION,
            )
            .map_err(|e| e.to_string())?,
            ledger: PeerCreditLedger::new(credit, 4096),
            stats: IntakeStats::default(),
            flagged: BTreeSet::new(),
            blocks_since_key: (0, 0),
            last_now_ms: 0,
        })
    }

    /// Checks one block from `contributor` in order: FIPS battery, clone/replay check, credit cap, pool.
    /// Returns the bits credited.
    pub fn take(
        &mut self,
        contributor: &NodeId,
        source: u32,
        block: &DebiasedBlock,
        claim: &SourceClaim,
        now_ms: u64,
    ) -> Result<u64, Rejection> {
        let report = fips_140_2(block.as_bytes());
        if !report.passed() {
            self.stats.fips_failed += 1;
            self.blocks_since_key.1 += 1;
            let names: Vec<String> = report
                .failed_tests()
                .iter()
                .map(|t| format!("{t:?}"))
                .collect();
            for n in &names {
                *self.stats.fips_failures.entry(n.clone()).or_default() += 1;
            }
            return Err(Rejection::Fips(names));
        }
        self.stats.fips_passed += 1;
        let check = self.clones.observe(&contributor.0, block.as_bytes());
        if !check.is_clean() {
            self.blocks_since_key.1 += 1;
            if check.has_cross_peer_clone() {
                // Another device's stream: a cloned image or a lie. Never a holder again.
                self.flagged.insert(*contributor);
                self.stats.clones += 1;
                return Err(Rejection::Clone);
            }
            // Its own earlier stream (e.g. a restarted device with a deterministic source):
            // not credited, counted, but not a reason to distrust it as a holder.
            self.stats.replays += 1;
            return Err(Rejection::Replay);
        }
        let credit = self
            .ledger
            .credit(&contributor.0, std::slice::from_ref(claim));
        self.stats.credited += credit;
        self.blocks_since_key.0 += 1;
        // The pool refuses only past its contributor bound; the block is then simply not pooled.
        if let Err(e) = self
            .accumulator
            .add_block(&contributor.0, source, block, credit)
        {
            tracing::warn!(error = %e, "pool refused a block");
        }
        self.last_now_ms = self.last_now_ms.max(now_ms);
        self.accumulator.maybe_reseed(now_ms);
        Ok(credit)
    }

    /// Starts a new crediting round (per-peer caps reset).
    pub fn new_round(&mut self) {
        self.ledger.new_round();
    }

    /// Whether the pools hold enough credited entropy from enough distinct peers. Pools are all
    /// folded into the generator by [`Self::draw`], so everything counted here is in the key.
    pub fn ready(&self, min_credited_bits: u64, min_contributors: usize) -> bool {
        self.accumulator
            .ready_after_full_reseed(min_credited_bits, min_contributors)
    }

    /// Draws 32 bytes for a key (always mixed with `os_random`) and returns the receipt of the
    /// entropy behind it, then starts accounting afresh.
    pub fn draw(
        &mut self,
        os_random: &[u8; 32],
    ) -> Result<([u8; 32], protocols::wire::EntropyReceipt), String> {
        // Everything `ready` counted goes into the key, so the receipt is true (decision 0005).
        self.accumulator.reseed_all(self.last_now_ms);
        let receipt = self.accumulator.reset_accounting();
        let mut out = [0u8; 32];
        self.accumulator
            .generate(os_random, &mut out)
            .map_err(|e| e.to_string())?;
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    fn block(rng: &mut ChaCha20Rng) -> DebiasedBlock {
        let mut bytes = [0u8; protocols::entropy::BLOCK_BYTES];
        rng.fill_bytes(&mut bytes);
        DebiasedBlock::from_bytes(bytes)
    }

    #[test]
    fn a_drawn_key_uses_up_the_credit_that_made_the_pool_ready() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let mut intake = Intake::new([1; 32], CreditPolicy::new(0.5, 1024).unwrap()).unwrap();
        let claim = SourceClaim {
            debiased_bits: 20_000,
            claimed_min_entropy_per_bit: 1.0,
            measured_min_entropy_per_bit: None,
        };
        // Three rounds from one source per peer: the credit lands in pools 0, 1 and 2, which
        // Fortuna's schedule would fold only at later reseeds.
        let mut now = 0;
        for _round in 0..3 {
            for peer in [1u8, 2, 3] {
                now += 1000;
                intake
                    .take(&NodeId([peer; 32]), 0, &block(&mut rng), &claim, now)
                    .unwrap();
            }
            intake.new_round();
        }
        assert!(intake.ready(2048, 3));
        let (_, receipt) = intake.draw(&[9; 32]).unwrap();
        assert_eq!(
            receipt.credited_bits,
            9 * 1024,
            "the receipt credits what made the pool ready: {receipt:?}"
        );
        assert_eq!(receipt.contributors.len(), 3);
        assert!(
            !intake.ready(1, 1),
            "the same credit cannot make a second key ready"
        );
    }
}
