//! Detection of cloned or replayed 20,000-bit streams via keyed sampled-bit sketches.
//!
//! Each block is reduced to an exact keyed digest plus a 2,048-bit sketch: the
//! block's bits at 2,048 distinct positions drawn from a secret key. Two
//! independent random blocks differ in about half the sketch bits (1,024 ± 23);
//! a copy with 5% of its bits flipped differs in about 102. The default match
//! threshold of 25% (512 bits) is over 22 standard deviations from both, so
//! random false matches (probability < 2^-380 per pair by a Chernoff bound) do
//! not happen and near-copies are always caught. The positions being secret,
//! a cloner cannot aim flips at them.
//!
//! Near copies are found by comparing sketches with the last `capacity` blocks;
//! exact copies are also found by digest over a window [`EXACT_WINDOW_FACTOR`]
//! times longer, at a hash lookup each, so a clone whose stream lags its
//! original by minutes is still caught.

use super::ContributorId;
#[allow(unused_imports)]
use super::debias::BLOCK_BYTES;
use super::debias::{BLOCK_BITS, block_bit};
use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Sampled bit positions per sketch.
pub const SKETCH_BITS: usize = 2048;
const SKETCH_WORDS: usize = SKETCH_BITS / 64;
/// Largest history accepted (bounds memory to roughly 330 bytes per entry).
pub const MAX_CAPACITY: usize = 1 << 20;
/// Largest accepted distance fraction: above it random pairs could match.
pub const MAX_DISTANCE_FRACTION: f64 = 0.4;
/// Default distance fraction (of sketch bits) counted as "near-identical".
pub const DEFAULT_DISTANCE_FRACTION: f64 = 0.25;
/// How many times more blocks the exact-digest index remembers than the sketch history.
pub const EXACT_WINDOW_FACTOR: usize = 16;
/// Senders remembered per digest (a block sent by more peers names the first ones).
const SENDERS_PER_DIGEST: usize = 4;

const DOMAIN_DIGEST: &[u8] = b"entroshard/entropy/clone-digest/v1";

/// Why a [`CloneDetector`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum CloneError {
    /// Capacity must be in 1..=MAX_CAPACITY.
    #[error("capacity {0} is not in 1..={MAX_CAPACITY}")]
    Capacity(usize),
    /// Distance fraction must be in [0, MAX_DISTANCE_FRACTION].
    #[error("distance fraction {0} is not in [0, {MAX_DISTANCE_FRACTION}]")]
    DistanceFraction(f64),
}

/// Exact keyed digest plus sampled-bit sketch of one block.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct BlockFingerprint {
    digest: [u8; 32],
    sketch: [u64; SKETCH_WORDS],
}

impl fmt::Debug for BlockFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockFingerprint([redacted])")
    }
}

impl BlockFingerprint {
    /// Number of sketch bits on which two fingerprints differ (0..=2048).
    pub fn distance(&self, other: &BlockFingerprint) -> u32 {
        self.sketch
            .iter()
            .zip(other.sketch.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// True when the blocks were bit-for-bit identical (keyed digest equality).
    pub fn is_exact_copy_of(&self, other: &BlockFingerprint) -> bool {
        self.digest == other.digest
    }
}

/// How a new block relates to a remembered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchKind {
    /// The same peer sent the very same block again.
    ExactReplay,
    /// The same peer sent a near-identical block again.
    NearReplay,
    /// A different peer sent the very same block.
    ExactClone,
    /// A different peer sent a near-identical block.
    NearClone,
}

/// One remembered block the new block matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneMatch {
    /// The kind of match.
    pub kind: MatchKind,
    /// Who sent the remembered block.
    pub other: ContributorId,
    /// Differing sketch bits (out of [`SKETCH_BITS`]).
    pub sketch_distance: u32,
}

/// Result of checking one block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CloneCheck {
    /// Every remembered block matched, oldest first.
    pub matches: Vec<CloneMatch>,
}

impl CloneCheck {
    /// True when nothing matched.
    pub fn is_clean(&self) -> bool {
        self.matches.is_empty()
    }

    /// True when a different peer sent the same or a near-identical block.
    pub fn has_cross_peer_clone(&self) -> bool {
        self.matches
            .iter()
            .any(|m| matches!(m.kind, MatchKind::ExactClone | MatchKind::NearClone))
    }
}

struct Entry {
    contributor: ContributorId,
    fingerprint: BlockFingerprint,
}

/// Bounded history of recent blocks and the secret sampling positions.
pub struct CloneDetector {
    key: [u8; 32],
    positions: Vec<u16>,
    capacity: usize,
    threshold: u32,
    history: VecDeque<Entry>,
    /// Senders of each remembered digest, over the longer exact window.
    exact: HashMap<[u8; 32], Vec<ContributorId>>,
    /// Digests in `exact`, oldest first.
    exact_order: VecDeque<[u8; 32]>,
}

impl fmt::Debug for CloneDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloneDetector([redacted])")
    }
}

impl Zeroize for CloneDetector {
    fn zeroize(&mut self) {
        self.key.zeroize();
        self.positions.zeroize();
        for e in self.history.iter_mut() {
            e.fingerprint.zeroize();
        }
        self.history.clear();
        for (mut digest, _) in self.exact.drain() {
            digest.zeroize();
        }
        for digest in self.exact_order.iter_mut() {
            digest.zeroize();
        }
        self.exact_order.clear();
    }
}

impl Drop for CloneDetector {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for CloneDetector {}

impl CloneDetector {
    /// A detector remembering the last `capacity` blocks, sampling positions
    /// derived from the secret `sketch_key` (pass fresh OS randomness), and
    /// flagging sketch distances up to `max_distance_fraction * 2048`.
    pub fn new(
        capacity: usize,
        sketch_key: [u8; 32],
        max_distance_fraction: f64,
    ) -> Result<Self, CloneError> {
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(CloneError::Capacity(capacity));
        }
        let f = max_distance_fraction;
        if !f.is_finite() || !(0.0..=MAX_DISTANCE_FRACTION).contains(&f) {
            return Err(CloneError::DistanceFraction(f));
        }
        Ok(CloneDetector {
            key: sketch_key,
            positions: sample_positions(sketch_key),
            capacity,
            threshold: (f * SKETCH_BITS as f64).floor() as u32,
            history: VecDeque::with_capacity(capacity.min(4096)),
            exact: HashMap::new(),
            exact_order: VecDeque::new(),
        })
    }

    /// Blocks the exact-digest index remembers at most.
    pub fn exact_capacity(&self) -> usize {
        self.capacity.saturating_mul(EXACT_WINDOW_FACTOR)
    }

    /// Maximum sketch distance counted as a near match.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Blocks currently remembered (≤ capacity).
    pub fn len(&self) -> usize {
        self.history.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.history.is_empty()
    }

    /// Fingerprint of a block under this detector's key.
    /// A block shorter than [`BLOCK_BYTES`] (conditioned output) is sampled at the positions
    /// taken modulo its length in bits: its sketch then only matters for exact copies, which
    /// is all a conditioned output can be (any change to its input changes every bit).
    pub fn fingerprint(&self, block: &[u8]) -> BlockFingerprint {
        let mut h = Sha256::new();
        h.update(DOMAIN_DIGEST);
        h.update(self.key);
        h.update(block);
        let mut sketch = [0u64; SKETCH_WORDS];
        for (j, &p) in self.positions.iter().enumerate() {
            let bits = (block.len() * 8).max(1);
            if block_bit(block, usize::from(p) % bits)
                && let Some(w) = sketch.get_mut(j / 64)
            {
                *w |= 1u64 << (j % 64);
            }
        }
        BlockFingerprint {
            digest: h.finalize().into(),
            sketch,
        }
    }

    /// Compares a block with the history without remembering it.
    pub fn check(&self, contributor: &ContributorId, block: &[u8]) -> CloneCheck {
        self.check_fingerprint(contributor, &self.fingerprint(block))
    }

    /// Compares a fingerprint with the history without remembering it.
    pub fn check_fingerprint(
        &self,
        contributor: &ContributorId,
        fp: &BlockFingerprint,
    ) -> CloneCheck {
        let mut matches = Vec::new();
        // Exact copies from the whole exact window, by digest.
        for other in self.exact.get(&fp.digest).into_iter().flatten() {
            let kind = if other == contributor {
                MatchKind::ExactReplay
            } else {
                MatchKind::ExactClone
            };
            matches.push(CloneMatch {
                kind,
                other: *other,
                sketch_distance: 0,
            });
        }
        // Near copies from the recent history (exact ones were found above).
        for e in &self.history {
            let exact = fp.is_exact_copy_of(&e.fingerprint);
            let distance = fp.distance(&e.fingerprint);
            if exact || distance > self.threshold {
                continue;
            }
            let kind = if e.contributor == *contributor {
                MatchKind::NearReplay
            } else {
                MatchKind::NearClone
            };
            matches.push(CloneMatch {
                kind,
                other: e.contributor,
                sketch_distance: distance,
            });
        }
        CloneCheck { matches }
    }

    /// True when two fingerprints are the same block or near-identical blocks under this
    /// detector's threshold (the test [`Self::check_fingerprint`] applies to each remembered one).
    pub fn same_or_near(&self, a: &BlockFingerprint, b: &BlockFingerprint) -> bool {
        a.is_exact_copy_of(b) || a.distance(b) <= self.threshold
    }

    /// Checks a block, then remembers it (evicting the oldest beyond capacity).
    pub fn observe(&mut self, contributor: &ContributorId, block: &[u8]) -> CloneCheck {
        let fp = self.fingerprint(block);
        self.observe_fingerprint(contributor, fp)
    }

    /// Like [`Self::observe`] for a fingerprint already computed (the caller keeps a copy to
    /// find this block again).
    pub fn observe_fingerprint(
        &mut self,
        contributor: &ContributorId,
        fp: BlockFingerprint,
    ) -> CloneCheck {
        let result = self.check_fingerprint(contributor, &fp);
        self.remember_digest(contributor, fp.digest);
        while self.history.len() >= self.capacity {
            if let Some(mut old) = self.history.pop_front() {
                old.fingerprint.zeroize();
            }
        }
        self.history.push_back(Entry {
            contributor: *contributor,
            fingerprint: fp,
        });
        result
    }
}

impl CloneDetector {
    /// Adds `contributor` to the senders of `digest` (a new digest evicts the oldest beyond the
    /// exact window).
    fn remember_digest(&mut self, contributor: &ContributorId, digest: [u8; 32]) {
        if let Some(senders) = self.exact.get_mut(&digest) {
            if senders.len() < SENDERS_PER_DIGEST && !senders.contains(contributor) {
                senders.push(*contributor);
            }
            return;
        }
        while self.exact_order.len() >= self.exact_capacity() {
            match self.exact_order.pop_front() {
                Some(mut old) => {
                    self.exact.remove(&old);
                    old.zeroize();
                }
                None => break,
            }
        }
        self.exact.insert(digest, vec![*contributor]);
        self.exact_order.push_back(digest);
    }
}

/// 2,048 distinct positions in 0..20,000 from a key-seeded partial Fisher–Yates shuffle.
fn sample_positions(key: [u8; 32]) -> Vec<u16> {
    let mut rng = ChaCha20Rng::from_seed(key);
    let mut all: Vec<u16> = (0..BLOCK_BITS as u16).collect();
    for i in 0..SKETCH_BITS {
        let remaining = (BLOCK_BITS - i) as u32;
        let j = i + uniform_below(&mut rng, remaining) as usize;
        all.swap(i, j);
    }
    all.truncate(SKETCH_BITS);
    all
}

/// Unbiased integer in `0..n` (n > 0) by rejection sampling.
fn uniform_below(rng: &mut ChaCha20Rng, n: u32) -> u32 {
    let n = n.max(1);
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let x = rng.next_u32();
        if x < zone {
            return x % n;
        }
    }
}

#[cfg(test)]
#[path = "clones_tests.rs"]
mod tests;
