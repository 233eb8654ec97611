//! SP 800-90B §3.1.5.1.1 vetted conditioning on the device (HMAC-SHA-256 keyed per device) and
//! the SP 800-90C full-entropy accounting the coordinator credits from.
//!
//! A source's raw samples go into HMAC-SHA-256 until they carry at least
//! [`CONDITIONED_BITS`] + [`FULL_ENTROPY_MARGIN_BITS`] of assessed min-entropy (`samples × H`);
//! the 256-bit output then counts as full entropy (SP 800-90C, as the Linux Jitter RNG and Go's
//! FIPS entropy source apply it). A block of [`OUTPUTS_PER_BLOCK`] outputs is one contribution.
//! Von Neumann is not used on this path: it removes bias from independent bits and does nothing
//! for correlated sources (decision 0039).

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes of one conditioned output (HMAC-SHA-256).
pub const CONDITIONED_BYTES: usize = 32;
/// Bits of one conditioned output.
pub const CONDITIONED_BITS: u64 = 256;
/// Assessed entropy an output's input must carry beyond its own size (SP 800-90C).
pub const FULL_ENTROPY_MARGIN_BITS: u64 = 64;
/// Outputs in one contribution block (1,024 bits).
pub const OUTPUTS_PER_BLOCK: usize = 4;
/// Most outputs a contribution may carry (a bound for the decoder).
pub const MAX_OUTPUTS_PER_BLOCK: usize = 16;
/// Domain separation of the per-device conditioning key.
const DOMAIN: &[u8] = b"entroshard/entropy/conditioning/v1";

/// Samples whose assessed entropy (`h` bits each) reaches 256 + 64 bits; `None` when `h` is not
/// a positive finite number.
pub fn samples_per_output(h_per_sample: f64) -> Option<u64> {
    if !h_per_sample.is_finite() || h_per_sample <= 0.0 {
        return None;
    }
    let needed = (CONDITIONED_BITS + FULL_ENTROPY_MARGIN_BITS) as f64 / h_per_sample;
    // `as` saturates; at least one sample.
    Some((needed.ceil() as u64).max(1))
}

/// What a contribution says about how its output was made: the coordinator credits from this,
/// capped by what it measured itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accounting {
    /// Conditioned outputs in the block.
    pub outputs: u32,
    /// Raw samples that went into them (all outputs together).
    pub raw_samples: u64,
    /// Min-entropy per raw sample the device assessed (bits).
    pub h_per_sample: f64,
}

/// Credited bits for a block with `accounting`, each sample worth at most `h_cap` bits (the
/// coordinator's own audit estimate): per output `min(256, samples_per_output × h − 64)`, never
/// below 0. A claim that is not a finite number credits nothing.
pub fn credit_for(accounting: &Accounting, h_cap: f64) -> u64 {
    // `f64::min` ignores a NaN operand: a NaN on either side credits nothing.
    let h = accounting.h_per_sample.min(h_cap);
    if h_cap.is_nan()
        || !accounting.h_per_sample.is_finite()
        || !h.is_finite()
        || h <= 0.0
        || accounting.outputs == 0
    {
        return 0;
    }
    let outputs = u64::from(accounting.outputs);
    let per_output = accounting.raw_samples as f64 / outputs as f64 * h;
    let credit = (per_output - FULL_ENTROPY_MARGIN_BITS as f64).clamp(0.0, CONDITIONED_BITS as f64);
    // `as` saturates; the product is at most 16 × 256.
    (credit.floor() as u64).saturating_mul(outputs)
}

/// The per-device conditioning key (secret: it makes the outputs unpredictable to anyone who
/// saw the raw samples, e.g. in an audit window).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ConditioningKey([u8; 32]);

impl ConditioningKey {
    /// From 32 bytes of OS randomness drawn at the device's start.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for ConditioningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConditioningKey([redacted])")
    }
}

/// One source's conditioner: raw samples in, blocks of full-entropy outputs out.
pub struct Conditioner {
    key: ConditioningKey,
    source: String,
    samples_per_output: u64,
    mac: HmacSha256,
    in_output: u64,
    counter: u64,
    block: Vec<u8>,
    block_samples: u64,
}

/// A finished block of conditioned outputs with its accounting.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ConditionedBlock {
    bytes: Vec<u8>,
    raw_samples: u64,
}

impl std::fmt::Debug for ConditionedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConditionedBlock({} bytes from {} samples)",
            self.bytes.len(),
            self.raw_samples
        )
    }
}

impl ConditionedBlock {
    /// The outputs, concatenated.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Raw samples conditioned into it.
    pub fn raw_samples(&self) -> u64 {
        self.raw_samples
    }

    /// Number of 32-byte outputs.
    pub fn outputs(&self) -> u32 {
        u32::try_from(self.bytes.len() / CONDITIONED_BYTES).unwrap_or(u32::MAX)
    }

    /// Wraps received bytes: a whole number of outputs, 1 to [`MAX_OUTPUTS_PER_BLOCK`].
    pub fn from_received(bytes: Vec<u8>, raw_samples: u64) -> Option<Self> {
        let n = bytes.len() / CONDITIONED_BYTES;
        (bytes.len().is_multiple_of(CONDITIONED_BYTES) && (1..=MAX_OUTPUTS_PER_BLOCK).contains(&n))
            .then_some(Self { bytes, raw_samples })
    }
}

impl Conditioner {
    /// A conditioner for `source` whose samples carry `h_per_sample` assessed bits each;
    /// `None` when that is not a positive finite number.
    pub fn new(key: ConditioningKey, source: &str, h_per_sample: f64) -> Option<Self> {
        let samples_per_output = samples_per_output(h_per_sample)?;
        let mut c = Self {
            key,
            source: source.to_string(),
            samples_per_output,
            mac: HmacSha256::new_from_slice(&[0u8; 32]).ok()?,
            in_output: 0,
            counter: 0,
            block: Vec::with_capacity(OUTPUTS_PER_BLOCK * CONDITIONED_BYTES),
            block_samples: 0,
        };
        c.mac = c.fresh_mac()?;
        Some(c)
    }

    /// Samples that make one output.
    pub fn samples_per_output(&self) -> u64 {
        self.samples_per_output
    }

    fn fresh_mac(&self) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key.0).ok()?;
        mac.update(DOMAIN);
        mac.update(&(self.source.len() as u64).to_be_bytes());
        mac.update(self.source.as_bytes());
        mac.update(&self.counter.to_be_bytes());
        Some(mac)
    }

    /// Feeds one raw sample; returns a block once [`OUTPUTS_PER_BLOCK`] outputs are complete.
    pub fn push(&mut self, sample: u8) -> Option<ConditionedBlock> {
        self.mac.update(&[sample]);
        self.in_output += 1;
        if self.in_output < self.samples_per_output {
            return None;
        }
        self.counter = self.counter.wrapping_add(1);
        let next = self.fresh_mac()?;
        let done = std::mem::replace(&mut self.mac, next);
        self.block.extend_from_slice(&done.finalize().into_bytes());
        self.block_samples += self.in_output;
        self.in_output = 0;
        if self.block.len() < OUTPUTS_PER_BLOCK * CONDITIONED_BYTES {
            return None;
        }
        let bytes = std::mem::replace(
            &mut self.block,
            Vec::with_capacity(OUTPUTS_PER_BLOCK * CONDITIONED_BYTES),
        );
        let raw_samples = std::mem::take(&mut self.block_samples);
        Some(ConditionedBlock { bytes, raw_samples })
    }

    /// Drops the samples of the output being built and the block being filled (after a health
    /// alarm: the window that alarmed is never used).
    pub fn discard_window(&mut self) {
        self.counter = self.counter.wrapping_add(1);
        if let Some(mac) = self.fresh_mac() {
            self.mac = mac;
        }
        self.in_output = 0;
        self.block.zeroize();
        self.block.clear();
        self.block_samples = 0;
    }
}

/// A source's entropy model, kept by the device (SP 800-90B §3.1): the assessed min-entropy
/// per sample and where it came from. Re-assessed when the binary or the source changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceModel {
    /// Source name.
    pub source: String,
    /// What identifies the source's hardware or kind (e.g. its sysfs path and driver).
    pub identity: String,
    /// SHA-256 of the binary that assessed it, hex.
    pub binary_sha256: String,
    /// Declared sample width.
    pub bits_per_sample: u8,
    /// Min-entropy per sample used from now on: min(assessed, declared).
    pub h_per_sample: f64,
    /// What set it: the §6.3 estimator with the lowest result, or `declared`.
    pub estimator: String,
    /// Samples assessed.
    pub samples: u64,
    /// Samples per second the source gave while it was assessed.
    pub samples_per_s: f64,
    /// When it was assessed (unix ms).
    pub assessed_at_ms: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> ConditioningKey {
        ConditioningKey::from_random([7; 32])
    }

    #[test]
    fn an_output_needs_320_assessed_bits_of_input() {
        assert_eq!(samples_per_output(1.0), Some(320));
        assert_eq!(samples_per_output(2.5), Some(128));
        assert_eq!(samples_per_output(0.3), Some(1067));
        assert_eq!(samples_per_output(0.0), None);
        assert_eq!(samples_per_output(f64::NAN), None);
    }

    #[test]
    fn a_block_comes_after_four_outputs_and_accounts_its_samples() {
        let mut c = Conditioner::new(key(), "jitter", 2.0).unwrap();
        let mut blocks = Vec::new();
        for i in 0..(4 * 160 + 10) {
            if let Some(b) = c.push(i as u8) {
                blocks.push(b);
            }
        }
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].as_bytes().len(), 128);
        assert_eq!(blocks[0].raw_samples(), 640);
        assert_eq!(blocks[0].outputs(), 4);
        let acc = Accounting {
            outputs: 4,
            raw_samples: 640,
            h_per_sample: 2.0,
        };
        assert_eq!(credit_for(&acc, 8.0), 1024);
    }

    #[test]
    fn outputs_differ_between_devices_sources_and_positions() {
        let run = |k: [u8; 32], name: &str| {
            let mut c = Conditioner::new(ConditioningKey::from_random(k), name, 8.0).unwrap();
            (0..200u32).find_map(|_| c.push(0)).unwrap()
        };
        let a = run([1; 32], "s");
        assert_ne!(a, run([2; 32], "s"));
        assert_ne!(a, run([1; 32], "t"));
        let outs: Vec<&[u8]> = a.as_bytes().chunks(32).collect();
        assert!(
            outs.windows(2).all(|w| w[0] != w[1]),
            "same input, other counter"
        );
    }

    #[test]
    fn credit_is_capped_by_the_audit_and_loses_the_margin() {
        let acc = Accounting {
            outputs: 4,
            raw_samples: 640,
            h_per_sample: 2.0,
        };
        // The audit found 1 bit per sample: 160 bits per output, 96 after the margin.
        assert_eq!(credit_for(&acc, 1.0), 4 * 96);
        // Found 0.4: below the margin, nothing.
        assert_eq!(credit_for(&acc, 0.4), 0);
        assert_eq!(credit_for(&acc, f64::NAN), 0);
        let lying = Accounting {
            h_per_sample: f64::INFINITY,
            ..acc
        };
        assert_eq!(credit_for(&lying, 8.0), 0);
    }

    #[test]
    fn an_alarm_discards_the_window_being_conditioned() {
        let mut c = Conditioner::new(key(), "s", 8.0).unwrap();
        for _ in 0..100 {
            assert!(c.push(1).is_none());
        }
        c.discard_window();
        let block = (0..1000).find_map(|_| c.push(1)).unwrap();
        assert_eq!(block.raw_samples(), 4 * 40);
    }

    #[test]
    fn received_blocks_must_be_whole_outputs_within_the_bound() {
        assert!(ConditionedBlock::from_received(vec![0; 128], 1).is_some());
        assert!(ConditionedBlock::from_received(vec![0; 0], 1).is_none());
        assert!(ConditionedBlock::from_received(vec![0; 100], 1).is_none());
        assert!(ConditionedBlock::from_received(vec![0; 32 * 17], 1).is_none());
    }
}
