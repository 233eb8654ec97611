//! Fortuna-style 32-pool accumulator feeding a ChaCha20 generator that always mixes OS randomness.

use super::ContributorId;
use super::debias::DebiasedBlock;
use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Number of pools.
pub const NUM_POOLS: usize = 32;
/// Largest output produced under one generator key; longer requests are chunked
/// and rekeyed between chunks.
pub const MAX_BYTES_PER_KEY: usize = 1 << 20;

const DOMAIN_EVENT: &[u8] = b"entroshard/entropy/pool-event/v1";
const DOMAIN_RESEED: &[u8] = b"entroshard/entropy/reseed/v1";
const DOMAIN_GENERATE: &[u8] = b"entroshard/entropy/generate/v1";

/// Accumulator tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccumulatorConfig {
    /// Credited bits pool 0 must hold before a reseed (default 256).
    pub reseed_threshold_bits: u64,
    /// Minimum milliseconds between reseeds (default 100).
    pub min_reseed_interval_ms: u64,
    /// Sources whose round-robin cursor is remembered; least recently used is
    /// forgotten beyond this (default 4096).
    pub max_sources: usize,
    /// Distinct contributors a single pool may hold pending credit for (default 4096).
    pub max_contributors_per_pool: usize,
}

impl Default for AccumulatorConfig {
    fn default() -> Self {
        AccumulatorConfig {
            reseed_threshold_bits: 256,
            min_reseed_interval_ms: 100,
            max_sources: 4096,
            max_contributors_per_pool: 4096,
        }
    }
}

/// Accumulator errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AccumulatorError {
    /// `generate` was called before the first reseed.
    #[error("generator not seeded yet: no reseed has happened")]
    NotSeeded,
    /// The target pool already tracks `max_contributors_per_pool` contributors.
    #[error("too many distinct contributors pending in pool {0}")]
    TooManyContributors(usize),
}

/// Non-secret statistics of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PoolStats {
    /// Events hashed in since the pool was last drained.
    pub events: u64,
    /// Event payload bytes since the pool was last drained.
    pub bytes: u64,
    /// Credited bits since the pool was last drained.
    pub credited_bits: u64,
}

/// One contributor's credited bits in a [`Receipt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributorCredit {
    /// The opaque contributor id.
    pub contributor: ContributorId,
    /// Bits credited to it that reached the generator key.
    pub credited_bits: u64,
}

/// Who contributed to the generator key since the last accounting reset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Receipt {
    /// Contributors in id order, each with credited bits > 0.
    pub contributors: Vec<ContributorCredit>,
    /// Sum of `contributors[..].credited_bits` (saturating).
    pub total_credited_bits: u64,
    /// Reseed number of the generator when the receipt was taken.
    pub reseed_count: u64,
}

/// A pool: a running SHA-256 hash chain over its events plus counters.
#[derive(Clone, Default)]
struct Pool {
    chain: [u8; 32],
    stats: PoolStats,
    pending: BTreeMap<ContributorId, u64>,
}

impl Zeroize for Pool {
    fn zeroize(&mut self) {
        self.chain.zeroize();
        self.stats = PoolStats::default();
        self.pending.clear();
    }
}

#[derive(Clone, Copy)]
struct SourceCursor {
    next_pool: usize,
    last_used: u64,
}

/// The accumulator and its generator.
///
/// Credit accounting follows the entropy: an event's credit is attributed to
/// its contributor only when the pool holding it is folded into the generator
/// key by a reseed.
pub struct Accumulator {
    config: AccumulatorConfig,
    pools: [Pool; NUM_POOLS],
    key: [u8; 32],
    reseed_count: u64,
    last_reseed_ms: Option<u64>,
    request_counter: u64,
    sources: BTreeMap<(ContributorId, u32), SourceCursor>,
    event_counter: u64,
    credited: BTreeMap<ContributorId, u64>,
}

impl fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Accumulator([redacted])")
    }
}

impl Zeroize for Accumulator {
    fn zeroize(&mut self) {
        self.key.zeroize();
        self.pools.iter_mut().for_each(Zeroize::zeroize);
        self.reseed_count = 0;
        self.last_reseed_ms = None;
        self.request_counter = 0;
        self.sources.clear();
        self.event_counter = 0;
        self.credited.clear();
    }
}

impl Drop for Accumulator {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Accumulator {}

/// True when reseed number `r` (1-based) drains pool `i`: 2^i divides r.
pub fn reseed_uses_pool(r: u64, i: usize) -> bool {
    i < NUM_POOLS && r != 0 && (r.trailing_zeros() as usize) >= i
}

impl Accumulator {
    /// An empty, unseeded accumulator.
    pub fn new(config: AccumulatorConfig) -> Self {
        Accumulator {
            config,
            pools: std::array::from_fn(|_| Pool::default()),
            key: [0u8; 32],
            reseed_count: 0,
            last_reseed_ms: None,
            request_counter: 0,
            sources: BTreeMap::new(),
            event_counter: 0,
            credited: BTreeMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &AccumulatorConfig {
        &self.config
    }

    /// Number of reseeds so far (0 = unseeded).
    pub fn reseed_count(&self) -> u64 {
        self.reseed_count
    }

    /// True after the first reseed.
    pub fn is_seeded(&self) -> bool {
        self.reseed_count > 0
    }

    /// Statistics of pool `i` (`None` when `i >= 32`).
    pub fn pool_stats(&self, i: usize) -> Option<PoolStats> {
        self.pools.get(i).map(|p| p.stats)
    }

    /// Credited bits sitting in pools, not yet folded into the key.
    pub fn pending_credited_bits(&self) -> u64 {
        self.pools
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.stats.credited_bits))
    }

    /// Adds an event from `(contributor, source)` to that source's next pool
    /// (round robin over the 32 pools). `credited_bits` is clamped to
    /// `8 * data.len()`. Returns the pool index used.
    pub fn add_event(
        &mut self,
        contributor: &ContributorId,
        source: u32,
        data: &[u8],
        credited_bits: u64,
    ) -> Result<usize, AccumulatorError> {
        let key = (*contributor, source);
        let pool_index = self.sources.get(&key).map_or(0, |c| c.next_pool);
        let credit = credited_bits.min((data.len() as u64).saturating_mul(8));
        let pool_index = pool_index % NUM_POOLS;
        let pool = &mut self.pools[pool_index];
        if credit > 0
            && !pool.pending.contains_key(contributor)
            && pool.pending.len() >= self.config.max_contributors_per_pool
        {
            return Err(AccumulatorError::TooManyContributors(pool_index));
        }
        let mut h = Sha256::new();
        h.update(DOMAIN_EVENT);
        h.update([pool_index as u8]);
        h.update(pool.chain);
        h.update(contributor);
        h.update(source.to_be_bytes());
        h.update((data.len() as u64).to_be_bytes());
        h.update(data);
        pool.chain = h.finalize().into();
        pool.stats.events = pool.stats.events.saturating_add(1);
        pool.stats.bytes = pool.stats.bytes.saturating_add(data.len() as u64);
        pool.stats.credited_bits = pool.stats.credited_bits.saturating_add(credit);
        if credit > 0 {
            let e = pool.pending.entry(*contributor).or_insert(0);
            *e = e.saturating_add(credit);
        }
        self.event_counter = self.event_counter.saturating_add(1);
        self.remember_source(key, (pool_index + 1) % NUM_POOLS);
        Ok(pool_index)
    }

    /// Adds a debiased 20,000-bit block as one event.
    pub fn add_block(
        &mut self,
        contributor: &ContributorId,
        source: u32,
        block: &DebiasedBlock,
        credited_bits: u64,
    ) -> Result<usize, AccumulatorError> {
        self.add_event(contributor, source, block.as_bytes(), credited_bits)
    }

    fn remember_source(&mut self, key: (ContributorId, u32), next_pool: usize) {
        let cursor = SourceCursor {
            next_pool,
            last_used: self.event_counter,
        };
        if !self.sources.contains_key(&key) && self.sources.len() >= self.config.max_sources {
            let oldest = self
                .sources
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.sources.remove(&k);
            }
        }
        if self.config.max_sources > 0 {
            self.sources.insert(key, cursor);
        }
    }

    /// Reseeds when pool 0 holds at least `reseed_threshold_bits` credited bits
    /// and `min_reseed_interval_ms` have passed since the last reseed (a clock
    /// going backwards counts as no time passing). Returns the reseed number.
    pub fn maybe_reseed(&mut self, now_ms: u64) -> Option<u64> {
        let pool0 = self.pools.first()?;
        if pool0.stats.credited_bits < self.config.reseed_threshold_bits {
            return None;
        }
        if let Some(last) = self.last_reseed_ms
            && now_ms.saturating_sub(last) < self.config.min_reseed_interval_ms
        {
            return None;
        }
        self.fold(now_ms, reseed_uses_pool)
    }

    /// Folds every pool into the key now, whatever the schedule: used right before a key is
    /// derived so that every credited contribution in the receipt is in the key. The output is
    /// still mixed with fresh OS randomness, so the schedule's protection is not what keys rely on.
    pub fn reseed_all(&mut self, now_ms: u64) -> Option<u64> {
        self.fold(now_ms, |_, _| true)
    }

    /// Credit per contributor counting both what is in the key and what waits in pools.
    pub fn potential_credit(&self) -> BTreeMap<ContributorId, u64> {
        let mut all = self.credited.clone();
        for pool in &self.pools {
            for (c, bits) in &pool.pending {
                let e = all.entry(*c).or_insert(0);
                *e = e.saturating_add(*bits);
            }
        }
        all
    }

    /// Whether folding every pool now would make [`Self::ready`] true.
    pub fn ready_after_full_reseed(&self, min_credited_bits: u64, min_distinct: usize) -> bool {
        let all = self.potential_credit();
        let total = all.values().fold(0u64, |a, b| a.saturating_add(*b));
        total >= min_credited_bits && all.values().filter(|b| **b > 0).count() >= min_distinct
    }

    fn fold(&mut self, now_ms: u64, use_pool: impl Fn(u64, usize) -> bool) -> Option<u64> {
        let r = self.reseed_count.checked_add(1)?;
        let mut h = Sha256::new();
        h.update(DOMAIN_RESEED);
        h.update(self.key);
        h.update(r.to_be_bytes());
        for (i, pool) in self.pools.iter_mut().enumerate() {
            if !use_pool(r, i) {
                break;
            }
            h.update([i as u8]);
            h.update(pool.chain);
            for (c, bits) in std::mem::take(&mut pool.pending) {
                let e = self.credited.entry(c).or_insert(0);
                *e = e.saturating_add(bits);
            }
            pool.zeroize();
        }
        self.key = h.finalize().into();
        self.reseed_count = r;
        self.last_reseed_ms = Some(now_ms);
        Some(r)
    }

    /// Fills `out` from the generator, always mixing `os_random`:
    /// each chunk of at most [`MAX_BYTES_PER_KEY`] bytes is the ChaCha20 stream
    /// under `SHA-256(domain ‖ key ‖ os_random ‖ counter)`, whose first 32 bytes
    /// replace the key (forward secrecy). Refused before the first reseed.
    pub fn generate(
        &mut self,
        os_random: &[u8; 32],
        out: &mut [u8],
    ) -> Result<(), AccumulatorError> {
        if !self.is_seeded() {
            return Err(AccumulatorError::NotSeeded);
        }
        if out.is_empty() {
            self.generate_chunk(os_random, out);
        }
        for chunk in out.chunks_mut(MAX_BYTES_PER_KEY) {
            self.generate_chunk(os_random, chunk);
        }
        Ok(())
    }

    fn generate_chunk(&mut self, os_random: &[u8; 32], chunk: &mut [u8]) {
        self.request_counter = self.request_counter.wrapping_add(1);
        let mut h = Sha256::new();
        h.update(DOMAIN_GENERATE);
        h.update(self.key);
        h.update(os_random);
        h.update(self.request_counter.to_be_bytes());
        let mut seed: [u8; 32] = h.finalize().into();
        let mut rng = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        let mut next_key = [0u8; 32];
        rng.fill_bytes(&mut next_key);
        rng.fill_bytes(chunk);
        self.key = next_key;
        next_key.zeroize();
    }

    /// True when seeded, at least `min_credited_bits` have reached the key since
    /// the last accounting reset, from at least `min_distinct` contributors.
    pub fn ready(&self, min_credited_bits: u64, min_distinct: usize) -> bool {
        self.is_seeded()
            && self.credited_total() >= min_credited_bits
            && self.credited.len() >= min_distinct
    }

    /// Distinct contributors with credited bits since the last accounting reset.
    pub fn distinct_contributors(&self) -> usize {
        self.credited.len()
    }

    fn credited_total(&self) -> u64 {
        self.credited
            .values()
            .fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Contributors (with credited bits) since the last accounting reset.
    pub fn receipt(&self) -> Receipt {
        Receipt {
            contributors: self
                .credited
                .iter()
                .map(|(c, &b)| ContributorCredit {
                    contributor: *c,
                    credited_bits: b,
                })
                .collect(),
            total_credited_bits: self.credited_total(),
            reseed_count: self.reseed_count,
        }
    }

    /// Call after a key has been derived: returns the receipt and clears the
    /// per-contributor accounting (pending pool credit is kept).
    pub fn reset_accounting(&mut self) -> Receipt {
        let r = self.receipt();
        self.credited.clear();
        r
    }
}

#[cfg(test)]
#[path = "accumulator_tests.rs"]
mod tests;
