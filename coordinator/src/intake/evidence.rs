//! Who copies whom: per pair of peers, how often each was the later sender of a duplicated block,
//! and the quarantine verdict that evidence supports.

use protocols::ids::NodeId;
use std::collections::BTreeMap;

/// Pairs of peers remembered at most (only misbehaving devices make pairs; the least recently
/// touched pair is forgotten beyond this).
pub const MAX_PAIRS: usize = 4096;

/// What the evidence on one pair supports after a new duplicate event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough events, or a majority not yet clear.
    Undecided,
    /// This peer was the later sender in a clear majority of at least `min_events` events: it
    /// copies the other.
    Copier(NodeId),
    /// Many events and no consistent order: both devices produce the same stream (a cloned
    /// image), and neither can be told apart as the original.
    Both(NodeId, NodeId),
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Events in which the pair's first (lower) id was the later sender.
    first_later: u32,
    /// Events in which the second id was the later sender.
    second_later: u32,
    touched: u64,
    /// A verdict was returned: the pair is judged once, and later events only count.
    decided: bool,
}

/// Duplicate events by pair of peers.
#[derive(Debug)]
pub struct PairEvidence {
    min_events: u32,
    pairs: BTreeMap<(NodeId, NodeId), Counts>,
    clock: u64,
}

impl PairEvidence {
    /// Evidence that names a copier after `min_events` (≥ 1) events in which it was later.
    pub fn new(min_events: u32) -> Self {
        Self {
            min_events: min_events.max(1),
            pairs: BTreeMap::new(),
            clock: 0,
        }
    }

    /// Records that `later` sent a block `earlier` had sent before, and returns what the pair's
    /// evidence supports now. A clear majority is at least two thirds of the pair's events; a
    /// pair with `2 × min_events` events and no clear majority is a cloned image. A pair gets
    /// one verdict: afterwards its events are counted and nothing more is decided (the copier's
    /// later copies, arriving in any order, cannot turn against the original).
    pub fn record(&mut self, later: NodeId, earlier: NodeId) -> Verdict {
        if later == earlier {
            return Verdict::Undecided;
        }
        let key = if later < earlier {
            (later, earlier)
        } else {
            (earlier, later)
        };
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            let oldest = self
                .pairs
                .iter()
                .min_by_key(|(_, c)| c.touched)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.pairs.remove(&k);
            }
        }
        self.clock = self.clock.saturating_add(1);
        let counts = self.pairs.entry(key).or_default();
        counts.touched = self.clock;
        if later == key.0 {
            counts.first_later = counts.first_later.saturating_add(1);
        } else {
            counts.second_later = counts.second_later.saturating_add(1);
        }
        let (l, e) = if later == key.0 {
            (counts.first_later, counts.second_later)
        } else {
            (counts.second_later, counts.first_later)
        };
        if counts.decided {
            return Verdict::Undecided;
        }
        let clear = |a: u32, b: u32| u64::from(a) >= 2 * u64::from(b);
        let verdict = if l >= self.min_events && clear(l, e) {
            Verdict::Copier(later)
        } else if l.saturating_add(e) >= self.min_events.saturating_mul(2)
            && !clear(l, e)
            && !clear(e, l)
        {
            Verdict::Both(key.0, key.1)
        } else {
            Verdict::Undecided
        };
        counts.decided = verdict != Verdict::Undecided;
        verdict
    }

    /// Events recorded for the pair `(a, b)`: (times `a` was later, times `b` was later).
    pub fn counts(&self, a: NodeId, b: NodeId) -> (u32, u32) {
        if a < b {
            self.pairs
                .get(&(a, b))
                .map_or((0, 0), |c| (c.first_later, c.second_later))
        } else {
            self.pairs
                .get(&(b, a))
                .map_or((0, 0), |c| (c.second_later, c.first_later))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn a_peer_later_in_a_clear_majority_of_enough_events_is_the_copier() {
        let mut e = PairEvidence::new(3);
        assert_eq!(e.record(id(2), id(1)), Verdict::Undecided);
        assert_eq!(e.record(id(1), id(2)), Verdict::Undecided, "one reordering");
        assert_eq!(e.record(id(2), id(1)), Verdict::Undecided);
        assert_eq!(e.record(id(2), id(1)), Verdict::Copier(id(2)), "3 of 4");
        assert_eq!(e.counts(id(2), id(1)), (3, 1));
    }

    #[test]
    fn a_judged_pair_is_not_judged_again_when_later_events_blur_the_order() {
        let mut e = PairEvidence::new(3);
        for _ in 0..3 {
            e.record(id(2), id(1));
        }
        for _ in 0..6 {
            assert_eq!(e.record(id(1), id(2)), Verdict::Undecided);
        }
        assert_eq!(e.counts(id(1), id(2)), (6, 3));
    }

    #[test]
    fn the_peer_that_was_mostly_first_is_never_named() {
        let mut e = PairEvidence::new(3);
        for _ in 0..20 {
            for v in [e.record(id(7), id(9)), e.record(id(7), id(9))] {
                assert_ne!(v, Verdict::Copier(id(9)));
                assert!(!matches!(v, Verdict::Both(..)));
            }
            let v = e.record(id(9), id(7));
            assert_ne!(v, Verdict::Copier(id(9)), "9 was first in two thirds");
            assert!(!matches!(v, Verdict::Both(..)));
        }
    }

    #[test]
    fn a_pair_without_consistent_order_is_named_together_after_twice_the_events() {
        let mut e = PairEvidence::new(3);
        let mut verdicts = Vec::new();
        for i in 0..6 {
            let (later, earlier) = if i % 2 == 0 {
                (id(1), id(2))
            } else {
                (id(2), id(1))
            };
            verdicts.push(e.record(later, earlier));
        }
        assert!(
            verdicts[..5].iter().all(|v| *v == Verdict::Undecided),
            "{verdicts:?}"
        );
        assert_eq!(verdicts[5], Verdict::Both(id(1), id(2)));
    }

    #[test]
    fn pairs_are_bounded() {
        let mut e = PairEvidence::new(3);
        for i in 0..(MAX_PAIRS as u32 + 10) {
            let mut a = [0u8; 32];
            a[..4].copy_from_slice(&i.to_be_bytes());
            e.record(NodeId(a), id(255));
        }
        assert_eq!(e.pairs.len(), MAX_PAIRS);
    }
}
