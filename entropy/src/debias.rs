//! Von Neumann debiasing and packing of debiased bits into 20,000-bit blocks.

use std::fmt;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bits in one debiased block (the FIPS 140-2 test length).
pub const BLOCK_BITS: usize = 20_000;
/// Bytes in one debiased block.
pub const BLOCK_BYTES: usize = BLOCK_BITS / 8;

/// Von Neumann corrector over a bit stream: pairs `01 → 0`, `10 → 1`, `00`/`11` dropped.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct VonNeumann {
    pending: Option<bool>,
}

impl fmt::Debug for VonNeumann {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VonNeumann([redacted])")
    }
}

impl VonNeumann {
    /// A corrector with no pending bit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one bit; returns an output bit when it completes an unequal pair.
    pub fn push(&mut self, bit: bool) -> Option<bool> {
        match self.pending.take() {
            None => {
                self.pending = Some(bit);
                None
            }
            Some(first) if first != bit => Some(first),
            Some(_) => None,
        }
    }

    /// True when half a pair is waiting for its second bit.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// Debiases a whole bit stream (a trailing unpaired bit is dropped).
pub fn von_neumann(bits: &[bool]) -> Vec<bool> {
    let mut vn = VonNeumann::new();
    bits.iter().filter_map(|&b| vn.push(b)).collect()
}

/// Bits of `sample` used by the debiaser: the low `bits_per_sample` bits,
/// most significant first. `bits_per_sample` is clamped to 1..=8.
pub fn sample_bits(sample: u8, bits_per_sample: u8) -> impl Iterator<Item = bool> {
    let k = bits_per_sample.clamp(1, 8);
    (0..k).rev().map(move |i| (sample >> i) & 1 == 1)
}

/// Reads bit `i` of a block (bit 0 is the most significant bit of byte 0).
/// Out-of-range indices read as `false`.
pub fn block_bit(bytes: &[u8], i: usize) -> bool {
    bytes
        .get(i / 8)
        .is_some_and(|b| (b >> (7 - (i % 8))) & 1 == 1)
}

/// Exactly 20,000 debiased bits, packed most-significant-bit first.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DebiasedBlock {
    bytes: Box<[u8; BLOCK_BYTES]>,
}

impl fmt::Debug for DebiasedBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DebiasedBlock([redacted])")
    }
}

impl DebiasedBlock {
    /// Wraps 2,500 already-debiased bytes (e.g. a block received from a peer).
    pub fn from_bytes(bytes: [u8; BLOCK_BYTES]) -> Self {
        DebiasedBlock {
            bytes: Box::new(bytes),
        }
    }

    /// The packed bits.
    pub fn as_bytes(&self) -> &[u8; BLOCK_BYTES] {
        &self.bytes
    }
}

/// Why a [`Debiaser`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DebiasError {
    /// `bits_per_sample` must be 1..=8.
    #[error("bits_per_sample must be 1..=8, got {0}")]
    BitsPerSample(u8),
}

/// Raw samples in, complete [`DebiasedBlock`]s out.
///
/// Uses the low `bits_per_sample` bits of each sample (most significant first),
/// runs them through a [`VonNeumann`] corrector and packs the survivors.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Debiaser {
    #[zeroize(skip)]
    bits_per_sample: u8,
    vn: VonNeumann,
    current: Box<[u8; BLOCK_BYTES]>,
    filled_bits: usize,
    raw_bits_in: u64,
    debiased_bits_out: u64,
}

impl fmt::Debug for Debiaser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Debiaser([redacted])")
    }
}

impl Debiaser {
    /// A debiaser for samples carrying `bits_per_sample` (1..=8) bits.
    pub fn new(bits_per_sample: u8) -> Result<Self, DebiasError> {
        if !(1..=8).contains(&bits_per_sample) {
            return Err(DebiasError::BitsPerSample(bits_per_sample));
        }
        Ok(Debiaser {
            bits_per_sample,
            vn: VonNeumann::new(),
            current: Box::new([0u8; BLOCK_BYTES]),
            filled_bits: 0,
            raw_bits_in: 0,
            debiased_bits_out: 0,
        })
    }

    /// Bits used from each sample.
    pub fn bits_per_sample(&self) -> u8 {
        self.bits_per_sample
    }

    /// Debiased bits waiting in the partial block (always < 20,000).
    pub fn pending_bits(&self) -> usize {
        self.filled_bits
    }

    /// Raw bits consumed since construction.
    pub fn raw_bits_in(&self) -> u64 {
        self.raw_bits_in
    }

    /// Debiased bits produced since construction (including pending ones).
    pub fn debiased_bits_out(&self) -> u64 {
        self.debiased_bits_out
    }

    /// Feeds one raw bit; returns a block when it completes one.
    pub fn push_bit(&mut self, bit: bool) -> Option<DebiasedBlock> {
        self.raw_bits_in = self.raw_bits_in.saturating_add(1);
        let out = self.vn.push(bit)?;
        self.debiased_bits_out = self.debiased_bits_out.saturating_add(1);
        if out && let Some(byte) = self.current.get_mut(self.filled_bits / 8) {
            *byte |= 0x80 >> (self.filled_bits % 8);
        }
        self.filled_bits += 1;
        if self.filled_bits < BLOCK_BITS {
            return None;
        }
        self.filled_bits = 0;
        let block = DebiasedBlock {
            bytes: self.current.clone(),
        };
        self.current.zeroize();
        Some(block)
    }

    /// Feeds one raw sample; at most one block can complete per sample.
    pub fn push_sample(&mut self, sample: u8) -> Option<DebiasedBlock> {
        let mut done = None;
        for bit in sample_bits(sample, self.bits_per_sample) {
            if let Some(b) = self.push_bit(bit) {
                done = Some(b);
            }
        }
        done
    }

    /// Feeds many raw samples; returns every block completed, in order.
    pub fn push_samples(&mut self, samples: &[u8]) -> Vec<DebiasedBlock> {
        samples
            .iter()
            .filter_map(|&s| self.push_sample(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chacha20::ChaCha20Rng;
    use proptest::prelude::*;
    use rand_core::{Rng, SeedableRng};

    #[test]
    fn pairs_map_01_to_0_and_10_to_1_and_drop_equal_pairs() {
        let out = von_neumann(&[false, true, true, false, false, false, true, true]);
        assert_eq!(out, vec![false, true]);
    }

    #[test]
    fn trailing_unpaired_bit_is_held_not_emitted() {
        let mut vn = VonNeumann::new();
        assert_eq!(vn.push(true), None);
        assert!(vn.has_pending());
        assert_eq!(vn.push(false), Some(true));
        assert!(!vn.has_pending());
        assert_eq!(von_neumann(&[true, false, true]), vec![true]);
    }

    #[test]
    fn sample_bits_take_low_bits_most_significant_first() {
        let bits: Vec<bool> = sample_bits(0b1111_0110, 3).collect();
        assert_eq!(bits, vec![true, true, false]);
        assert_eq!(sample_bits(0xff, 0).count(), 1);
        assert_eq!(sample_bits(0xff, 200).count(), 8);
    }

    #[test]
    fn debiaser_rejects_invalid_sample_width() {
        assert!(Debiaser::new(0).is_err());
        assert!(Debiaser::new(9).is_err());
    }

    #[test]
    fn block_holds_exactly_20000_bits_packed_msb_first() {
        let mut d = Debiaser::new(2).unwrap();
        // Sample 0b10 → pair "10" → 1; sample 0b01 → pair "01" → 0.
        let mut blocks = Vec::new();
        for i in 0..BLOCK_BITS {
            let s = if i % 3 == 0 { 0b10 } else { 0b01 };
            if let Some(b) = d.push_sample(s) {
                blocks.push((i, b));
            }
        }
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].0, BLOCK_BITS - 1, "completes on the 20,000th bit");
        let bytes = blocks[0].1.as_bytes();
        for i in 0..BLOCK_BITS {
            assert_eq!(block_bit(bytes, i), i % 3 == 0, "bit {i}");
        }
        assert_eq!(d.pending_bits(), 0);
        assert_eq!(d.debiased_bits_out(), BLOCK_BITS as u64);
        assert_eq!(d.raw_bits_in(), 2 * BLOCK_BITS as u64);
    }

    #[test]
    fn a_new_block_starts_clean_after_one_completes() {
        let mut d = Debiaser::new(2).unwrap();
        let ones = d.push_samples(&vec![0b10; BLOCK_BITS]);
        assert_eq!(ones.len(), 1);
        assert!(ones[0].as_bytes().iter().all(|&b| b == 0xff));
        let zeros = d.push_samples(&vec![0b01; BLOCK_BITS]);
        assert_eq!(zeros.len(), 1);
        assert!(zeros[0].as_bytes().iter().all(|&b| b == 0));
    }

    #[test]
    fn constant_input_never_produces_output() {
        let mut d = Debiaser::new(8).unwrap();
        assert!(d.push_samples(&vec![0xff; 50_000]).is_empty());
        assert!(d.push_samples(&vec![0x00; 50_000]).is_empty());
        assert_eq!(d.pending_bits(), 0);
    }

    #[test]
    fn debiasing_removes_bias_from_an_independent_biased_source() {
        // Bits with P(1) = 0.8, independent: VN output is unbiased.
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let bits: Vec<bool> = (0..400_000).map(|_| rng.next_u32() % 10 < 8).collect();
        let out = von_neumann(&bits);
        let ones = out.iter().filter(|&&b| b).count() as f64;
        let frac = ones / out.len() as f64;
        assert!((frac - 0.5).abs() < 0.01, "{frac}");
    }

    #[test]
    fn debug_output_is_redacted() {
        let d = Debiaser::new(1).unwrap();
        assert_eq!(format!("{d:?}"), "Debiaser([redacted])");
        let b = DebiasedBlock::from_bytes([0xAB; BLOCK_BYTES]);
        assert!(!format!("{b:?}").contains("171"));
        assert!(format!("{b:?}").contains("[redacted]"));
    }

    proptest! {
        #[test]
        fn von_neumann_output_is_never_longer_than_half_the_input(
            bits in proptest::collection::vec(any::<bool>(), 0..2000)
        ) {
            let out = von_neumann(&bits);
            prop_assert!(out.len() <= bits.len() / 2);
            // Every output bit is the first bit of an unequal pair at an even offset.
            let expected: Vec<bool> = bits
                .chunks_exact(2)
                .filter(|p| p[0] != p[1])
                .map(|p| p[0])
                .collect();
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn debiaser_output_count_matches_batch_von_neumann(
            bits_per_sample in 1u8..=8,
            samples in proptest::collection::vec(any::<u8>(), 0..12_000),
        ) {
            let mut d = Debiaser::new(bits_per_sample).unwrap();
            let blocks = d.push_samples(&samples);
            let all: Vec<bool> = samples
                .iter()
                .flat_map(|&s| sample_bits(s, bits_per_sample))
                .collect();
            let expected = von_neumann(&all).len();
            prop_assert_eq!(blocks.len() * BLOCK_BITS + d.pending_bits(), expected);
            prop_assert_eq!(d.raw_bits_in(), all.len() as u64);
        }
    }
}
