//! Credit held back for a short window after a block arrives, so that a cross-peer duplicate
//! arriving within the window cancels it before it counts toward a key.

use protocols::entropy::ConditionedBlock;
use protocols::entropy::clones::BlockFingerprint;
use protocols::ids::NodeId;
use std::collections::VecDeque;

/// Blocks held at most; past this the oldest is settled early (counted in the stats).
pub const MAX_HELD: usize = 4096;

/// One block whose credit waits for its window to close.
pub struct HeldBlock {
    /// Who sent it.
    pub contributor: NodeId,
    /// The sender's source index (its pool cursor).
    pub source: u32,
    /// The block, mixed into the pool when settled.
    pub block: ConditionedBlock,
    /// Its fingerprint, to find it when a duplicate arrives.
    pub fingerprint: BlockFingerprint,
    /// Bits it will be credited with if nothing cancels them.
    pub credit: u64,
    /// When the window closes (coordinator clock, ms).
    pub due_ms: u64,
}

/// Held blocks in arrival order (so in due order: every block gets the same window).
#[derive(Default)]
pub struct HeldCredit {
    queue: VecDeque<HeldBlock>,
}

impl HeldCredit {
    /// Holds a block; returns a block that had to be settled early to make room, if any.
    pub fn hold(&mut self, held: HeldBlock) -> Option<HeldBlock> {
        let early = if self.queue.len() >= MAX_HELD {
            self.queue.pop_front()
        } else {
            None
        };
        self.queue.push_back(held);
        early
    }

    /// Takes every block whose window has closed at `now_ms`.
    pub fn due(&mut self, now_ms: u64) -> Vec<HeldBlock> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|h| h.due_ms <= now_ms) {
            if let Some(h) = self.queue.pop_front() {
                out.push(h);
            }
        }
        out
    }

    /// Takes every held block of `contributor` that `is_duplicate` says matches.
    pub fn take_matching(
        &mut self,
        contributor: &NodeId,
        is_duplicate: impl Fn(&BlockFingerprint) -> bool,
    ) -> Vec<HeldBlock> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for h in self.queue.drain(..) {
            if h.contributor == *contributor && is_duplicate(&h.fingerprint) {
                taken.push(h);
            } else {
                kept.push_back(h);
            }
        }
        self.queue = kept;
        taken
    }

    /// Bits held now.
    pub fn bits(&self) -> u64 {
        self.queue
            .iter()
            .fold(0u64, |a, h| a.saturating_add(h.credit))
    }

    /// Blocks held now.
    pub fn count(&self) -> usize {
        self.queue.len()
    }
}
