//! FIPS 140-2 (change notice 1, §4.9.1) statistical battery on one 20,000-bit block.

use super::debias::{BLOCK_BITS, BLOCK_BYTES, block_bit};
use serde::{Deserialize, Serialize};

/// Monobit bounds (exclusive): 9,725 < ones < 10,275.
pub const MONOBIT_BOUNDS: (u32, u32) = (9_725, 10_275);
/// Poker bounds (exclusive): 2.16 < X < 46.17.
pub const POKER_BOUNDS: (f64, f64) = (2.16, 46.17);
/// Inclusive run-count intervals for run lengths 1, 2, 3, 4, 5 and 6+.
pub const RUN_INTERVALS: [(u32, u32); 6] = [
    (2_315, 2_685),
    (1_114, 1_386),
    (527, 723),
    (240, 384),
    (103, 209),
    (103, 209),
];
/// A run this long or longer fails the long-run test.
pub const LONG_RUN: u32 = 26;

/// Number of 4-bit segments in a block.
const POKER_SEGMENTS: u64 = (BLOCK_BITS / 4) as u64;

/// The four tests of the battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FipsTest {
    /// Count of ones.
    Monobit,
    /// Chi-square over 4-bit nibbles.
    Poker,
    /// Run-length distribution.
    Runs,
    /// No run of 26 or more.
    LongRun,
}

/// Monobit result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonobitResult {
    /// Number of one bits.
    pub ones: u32,
    /// `9725 < ones < 10275`.
    pub passed: bool,
}

/// Poker result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PokerResult {
    /// Occurrences of each 4-bit value among the 5,000 nibbles.
    pub counts: [u32; 16],
    /// `X = 16/5000 * sum(f(i)^2) - 5000`.
    pub statistic: f64,
    /// `2.16 < X < 46.17` (decided in exact integer arithmetic).
    pub passed: bool,
}

/// Runs result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunsResult {
    /// Runs of zeros of length 1..=5 and 6+ (index 5).
    pub zeros: [u32; 6],
    /// Runs of ones of length 1..=5 and 6+ (index 5).
    pub ones: [u32; 6],
    /// All twelve counts lie in [`RUN_INTERVALS`].
    pub passed: bool,
}

/// Long-run result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongRunResult {
    /// Longest run of zeros.
    pub longest_zeros: u32,
    /// Longest run of ones.
    pub longest_ones: u32,
    /// No run of length >= 26.
    pub passed: bool,
}

/// Full battery report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FipsReport {
    /// Monobit test.
    pub monobit: MonobitResult,
    /// Poker test.
    pub poker: PokerResult,
    /// Runs test.
    pub runs: RunsResult,
    /// Long-run test.
    pub long_run: LongRunResult,
}

impl FipsReport {
    /// True when all four tests pass.
    pub fn passed(&self) -> bool {
        self.failed_tests().is_empty()
    }

    /// The tests that failed, in battery order.
    pub fn failed_tests(&self) -> Vec<FipsTest> {
        let mut v = Vec::new();
        if !self.monobit.passed {
            v.push(FipsTest::Monobit);
        }
        if !self.poker.passed {
            v.push(FipsTest::Poker);
        }
        if !self.runs.passed {
            v.push(FipsTest::Runs);
        }
        if !self.long_run.passed {
            v.push(FipsTest::LongRun);
        }
        v
    }
}

/// Runs the FIPS 140-2 battery on exactly 20,000 bits (MSB of byte 0 first).
pub fn fips_140_2(block: &[u8; BLOCK_BYTES]) -> FipsReport {
    let (runs, long_run) = runs_and_long_run(block);
    FipsReport {
        monobit: monobit(block),
        poker: poker(block),
        runs,
        long_run,
    }
}

fn monobit(block: &[u8; BLOCK_BYTES]) -> MonobitResult {
    let ones: u32 = block.iter().map(|b| b.count_ones()).sum();
    MonobitResult {
        ones,
        passed: MONOBIT_BOUNDS.0 < ones && ones < MONOBIT_BOUNDS.1,
    }
}

fn poker(block: &[u8; BLOCK_BYTES]) -> PokerResult {
    let mut counts = [0u32; 16];
    for &b in block.iter() {
        counts[usize::from(b >> 4)] += 1;
        counts[usize::from(b & 0x0f)] += 1;
    }
    let sum_sq: u64 = counts.iter().map(|&c| u64::from(c) * u64::from(c)).sum();
    // 5000 * X = 16 * sum_sq - 5000^2; bounds * 5000 = 10,800 and 230,850.
    let scaled = 16 * sum_sq as i128 - (POKER_SEGMENTS * POKER_SEGMENTS) as i128;
    let statistic = scaled as f64 / POKER_SEGMENTS as f64;
    PokerResult {
        counts,
        statistic,
        passed: 10_800 < scaled && scaled < 230_850,
    }
}

fn runs_and_long_run(block: &[u8; BLOCK_BYTES]) -> (RunsResult, LongRunResult) {
    let mut zeros = [0u32; 6];
    let mut ones = [0u32; 6];
    let mut longest = [0u32; 2];
    let mut current = block_bit(block, 0);
    let mut len: u32 = 0;
    let mut close = |bit: bool, len: u32| {
        let bucket = (len.clamp(1, 6) - 1) as usize;
        let (table, best) = if bit {
            (&mut ones, &mut longest[1])
        } else {
            (&mut zeros, &mut longest[0])
        };
        table[bucket] += 1;
        *best = (*best).max(len);
    };
    for i in 0..BLOCK_BITS {
        let bit = block_bit(block, i);
        if bit == current {
            len += 1;
        } else {
            close(current, len);
            current = bit;
            len = 1;
        }
    }
    close(current, len);
    let in_range = |counts: &[u32; 6]| {
        counts
            .iter()
            .zip(RUN_INTERVALS.iter())
            .all(|(&c, &(lo, hi))| lo <= c && c <= hi)
    };
    let runs = RunsResult {
        zeros,
        ones,
        passed: in_range(&zeros) && in_range(&ones),
    };
    let long_run = LongRunResult {
        longest_zeros: longest[0],
        longest_ones: longest[1],
        passed: longest[0] < LONG_RUN && longest[1] < LONG_RUN,
    };
    (runs, long_run)
}

#[cfg(test)]
#[path = "fips_tests.rs"]
mod tests;
