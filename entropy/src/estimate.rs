//! SP 800-90B §6.3.1 most-common-value min-entropy estimate, one-shot and sliding-window.

use std::collections::VecDeque;
use thiserror::Error;

/// The 99% upper-bound z value used by SP 800-90B.
pub const Z_99: f64 = 2.576;
/// Largest sliding window accepted (bounds memory).
pub const MAX_WINDOW: usize = 1 << 22;

/// Most-common-value estimate from a maximum symbol count and a sample count.
///
/// `p_hat = max_count / total`, `p_u = min(1, p_hat + 2.576 sqrt(p_hat (1 - p_hat) / (total - 1)))`,
/// `H = -log2(p_u)` bits per sample. `None` when `total < 2` or `max_count > total`.
pub fn mcv_from_counts(max_count: u64, total: u64) -> Option<f64> {
    if total < 2 || max_count > total {
        return None;
    }
    let l = total as f64;
    let p_hat = max_count as f64 / l;
    let spread = Z_99 * (p_hat * (1.0 - p_hat) / (l - 1.0)).max(0.0).sqrt();
    let p_u = (p_hat + spread).min(1.0);
    if p_u <= 0.0 {
        // Only reachable with max_count == 0, i.e. an inconsistent caller; be conservative.
        return Some(0.0);
    }
    // `0.0 - x` rather than `-x` so a certain outcome yields +0.0, not -0.0.
    Some(0.0 - p_u.log2())
}

/// Most-common-value min-entropy estimate (bits per sample) of a sample slice.
/// `None` for fewer than two samples.
pub fn mcv_min_entropy(samples: &[u8]) -> Option<f64> {
    let mut counts = [0u64; 256];
    for &s in samples {
        counts[usize::from(s)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    mcv_from_counts(max, samples.len() as u64)
}

/// Why a [`SlidingMcv`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EstimateError {
    /// Window must be in `2..=MAX_WINDOW`.
    #[error("window {0} is not in 2..={MAX_WINDOW}")]
    Window(usize),
}

/// Most-common-value estimate over the last `N` samples, O(1) per sample.
///
/// Keeps per-symbol counts plus a histogram of counts ("how many symbols have
/// count c"), so the maximum count is maintained without rescanning.
#[derive(Debug, Clone)]
pub struct SlidingMcv {
    window: usize,
    samples: VecDeque<u8>,
    counts: [u32; 256],
    symbols_with_count: Vec<u32>, // index c: number of symbols whose count is c
    max_count: u32,
}

impl SlidingMcv {
    /// An empty estimator over the last `window` samples.
    pub fn new(window: usize) -> Result<Self, EstimateError> {
        if !(2..=MAX_WINDOW).contains(&window) {
            return Err(EstimateError::Window(window));
        }
        let mut symbols_with_count = vec![0u32; window + 1];
        symbols_with_count[0] = 256;
        Ok(SlidingMcv {
            window,
            samples: VecDeque::with_capacity(window),
            counts: [0; 256],
            symbols_with_count,
            max_count: 0,
        })
    }

    /// Window size N.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Samples currently held (≤ N).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// True once N samples are held.
    pub fn is_full(&self) -> bool {
        self.samples.len() >= self.window
    }

    /// Count of the most common symbol in the window.
    pub fn max_count(&self) -> u32 {
        self.max_count
    }

    /// Adds a sample, evicting the oldest one when the window is full.
    pub fn push(&mut self, sample: u8) {
        if self.samples.len() >= self.window
            && let Some(old) = self.samples.pop_front()
        {
            self.decrement(old);
        }
        self.samples.push_back(sample);
        self.increment(sample);
    }

    /// Current estimate in bits per sample (`None` with fewer than two samples).
    pub fn estimate(&self) -> Option<f64> {
        mcv_from_counts(u64::from(self.max_count), self.samples.len() as u64)
    }

    fn bucket(&mut self, c: u32) -> Option<&mut u32> {
        self.symbols_with_count.get_mut(c as usize)
    }

    fn increment(&mut self, s: u8) {
        let c = self.counts[usize::from(s)];
        let n = c.saturating_add(1);
        self.counts[usize::from(s)] = n;
        if let Some(b) = self.bucket(c) {
            *b = b.saturating_sub(1);
        }
        if let Some(b) = self.bucket(n) {
            *b = b.saturating_add(1);
        }
        self.max_count = self.max_count.max(n);
    }

    fn decrement(&mut self, s: u8) {
        let c = self.counts[usize::from(s)];
        if c == 0 {
            return;
        }
        let n = c - 1;
        self.counts[usize::from(s)] = n;
        let now_empty = match self.bucket(c) {
            Some(b) => {
                *b = b.saturating_sub(1);
                *b == 0
            }
            None => true,
        };
        if let Some(b) = self.bucket(n) {
            *b = b.saturating_add(1);
        }
        if c == self.max_count && now_empty {
            self.max_count = n;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mcv_matches_the_sp800_90b_formula_by_hand() {
        // 1000 samples, most common count 600: p_hat 0.6.
        let p_hat: f64 = 0.6;
        let p_u = p_hat + 2.576 * (p_hat * 0.4 / 999.0).sqrt();
        let h = mcv_from_counts(600, 1000).unwrap();
        assert!((h - (-p_u.log2())).abs() < 1e-12);
    }

    #[test]
    fn constant_samples_have_zero_min_entropy() {
        let h = mcv_min_entropy(&[7u8; 500]).unwrap();
        assert_eq!(h, 0.0);
        assert!(h.is_sign_positive());
    }

    #[test]
    fn uniform_bytes_estimate_close_to_but_below_eight_bits() {
        let samples: Vec<u8> = (0..256 * 400).map(|i| (i % 256) as u8).collect();
        let h = mcv_min_entropy(&samples).unwrap();
        assert!(h < 8.0 && h > 7.5, "{h}");
    }

    #[test]
    fn fewer_than_two_samples_give_no_estimate() {
        assert_eq!(mcv_min_entropy(&[]), None);
        assert_eq!(mcv_min_entropy(&[1]), None);
        assert_eq!(mcv_from_counts(3, 2), None);
    }

    #[test]
    fn upper_bound_is_capped_at_one() {
        // p_hat close to 1 with few samples: p_u would exceed 1 without the cap.
        assert_eq!(mcv_from_counts(9, 10).unwrap(), 0.0);
    }

    #[test]
    fn sliding_window_rejects_degenerate_sizes() {
        assert!(SlidingMcv::new(0).is_err());
        assert!(SlidingMcv::new(1).is_err());
        assert!(SlidingMcv::new(MAX_WINDOW + 1).is_err());
        assert!(SlidingMcv::new(2).is_ok());
    }

    #[test]
    fn sliding_window_forgets_samples_older_than_the_window() {
        let mut w = SlidingMcv::new(100).unwrap();
        for _ in 0..100 {
            w.push(0);
        }
        assert_eq!(w.estimate(), Some(0.0));
        for i in 0..100u32 {
            w.push((i % 50) as u8 + 1);
        }
        assert!(w.is_full());
        assert_eq!(w.len(), 100);
        assert_eq!(w.max_count(), 2);
        assert_eq!(w.estimate(), mcv_from_counts(2, 100));
    }

    proptest! {
        #[test]
        fn sliding_estimate_equals_batch_estimate_of_last_n_samples(
            n in 2usize..64,
            samples in proptest::collection::vec(0u8..6, 0..400),
        ) {
            let mut w = SlidingMcv::new(n).unwrap();
            for (i, &s) in samples.iter().enumerate() {
                w.push(s);
                let start = (i + 1).saturating_sub(n);
                let window = &samples[start..=i];
                prop_assert_eq!(w.estimate(), mcv_min_entropy(window));
                prop_assert_eq!(w.len(), window.len());
            }
        }

        #[test]
        fn estimate_lies_between_zero_and_log2_of_alphabet(
            samples in proptest::collection::vec(any::<u8>(), 2..2000)
        ) {
            let h = mcv_min_entropy(&samples).unwrap();
            prop_assert!((0.0..=8.0).contains(&h));
        }
    }
}
