//! §6.3.5 t-Tuple and §6.3.6 Longest Repeated Substring estimates, from one suffix/LCP array.
//!
//! Both need, for every tuple length W, statistics of the W-tuples (overlapping substrings of
//! length W): the count of the most common one (t-Tuple) and the number of equal pairs,
//! `Σ_i C(C_i, 2)` over distinct W-tuples (LRS). In the suffix array, the suffixes starting
//! with one W-tuple are contiguous and their adjacent LCPs are `>= W`; these groups are the
//! LCP intervals. A stack walk over the LCP array lists every interval once with its LCP
//! value `h`, its size, and its parent's LCP value `h_p`; for every `W` in `(h_p, h]` the
//! interval is exactly one W-tuple group. So the most common W-tuple count is the largest
//! interval size with `h >= W`, and the pair count for `W` is the sum of `C(size, 2)` over the
//! intervals whose range `(h_p, h]` contains `W` (a difference array). Total cost: `O(n)` for
//! the sorted LCP array (see `suffix`) and the walk, plus `O(ν)` for the per-length loops, where ν is the longest
//! repeated substring length (`ν < n`); memory `O(n)`.

use super::common::{neg_log2, upper_bound};

/// The "at least 35 occurrences" threshold of §6.3.5 step 1 and §6.3.6 step 1.
const TUPLE_THRESHOLD: u64 = 35;

/// Per-length tuple statistics of a sequence of length `n`.
struct TupleStats {
    n: usize,
    /// `most_common[w]`: occurrences of the most common w-tuple, for `1 <= w <= ν`
    /// (index 0 unused). Every w-tuple with `w > ν` occurs once.
    most_common: Vec<u64>,
    /// `pairs[w]`: `Σ_i C(C_i, 2)` over the distinct w-tuples, for `1 <= w <= ν`.
    pairs: Vec<u128>,
}

impl TupleStats {
    fn new(symbols: &[u8]) -> Option<Self> {
        let n = symbols.len();
        let lcp = super::suffix::sorted_lcp(symbols)?;
        let nu = lcp.iter().copied().max().unwrap_or(0) as usize;
        let mut largest_at = vec![0u64; nu + 2];
        let mut diff = vec![0i128; nu + 2];
        // Stack of open intervals: (lcp value, left boundary in the suffix array).
        let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
        for i in 1..=n {
            let cur = lcp.get(i).map_or(0, |&h| h as usize);
            let mut left = i - 1;
            while let Some(&(h, lb)) = stack.last() {
                if cur >= h {
                    break;
                }
                stack.pop();
                let parent = stack.last().map_or(0, |&(ph, _)| ph).max(cur);
                let size = (i - lb) as u64;
                if let Some(slot) = largest_at.get_mut(h) {
                    *slot = (*slot).max(size);
                }
                let pairs = i128::from(size) * i128::from(size - 1) / 2;
                if let Some(slot) = diff.get_mut(parent + 1) {
                    *slot += pairs;
                }
                if let Some(slot) = diff.get_mut(h + 1) {
                    *slot -= pairs;
                }
                left = lb;
            }
            if stack.last().is_some_and(|&(h, _)| cur > h) {
                stack.push((cur, left));
            }
        }
        let mut most_common = vec![1u64; nu + 1];
        let mut running_max = 1u64;
        for w in (1..=nu).rev() {
            running_max = running_max.max(largest_at.get(w).copied().unwrap_or(0));
            if let Some(slot) = most_common.get_mut(w) {
                *slot = running_max;
            }
        }
        let mut pairs = vec![0u128; nu + 1];
        let mut running = 0i128;
        for w in 1..=nu {
            running += diff.get(w).copied().unwrap_or(0);
            if let Some(slot) = pairs.get_mut(w) {
                *slot = u128::try_from(running).unwrap_or(0);
            }
        }
        Some(TupleStats {
            n,
            most_common,
            pairs,
        })
    }

    /// ν, the length of the longest repeated substring (0 when nothing repeats).
    fn nu(&self) -> usize {
        self.most_common.len().saturating_sub(1)
    }

    /// Largest t with a t-tuple occurring at least 35 times (0 if none). `most_common` is
    /// non-increasing in w, so this is the number of lengths meeting the threshold.
    fn t(&self) -> usize {
        self.most_common
            .iter()
            .skip(1)
            .take_while(|&&c| c >= TUPLE_THRESHOLD)
            .count()
    }
}

/// §6.3.5 t-Tuple estimate, bits per symbol. `None` when no symbol occurs 35 times.
pub fn t_tuple(symbols: &[u8]) -> Option<f64> {
    t_tuple_and_lrs(symbols).0
}

/// §6.3.6 LRS estimate, bits per symbol. `None` when no tuple long enough repeats (ν < u).
pub fn longest_repeated_substring(symbols: &[u8]) -> Option<f64> {
    t_tuple_and_lrs(symbols).1
}

/// Both estimates from one suffix array: `(t-Tuple, LRS)`.
pub(super) fn t_tuple_and_lrs(symbols: &[u8]) -> (Option<f64>, Option<f64>) {
    if symbols.len() < 2 {
        return (None, None);
    }
    let Some(stats) = TupleStats::new(symbols) else {
        return (None, None);
    };
    (t_tuple_from(&stats), lrs_from(&stats))
}

fn t_tuple_from(stats: &TupleStats) -> Option<f64> {
    // Step 1: t = largest length whose most common tuple occurs at least 35 times.
    let t = stats.t();
    if t == 0 {
        return None;
    }
    let n = stats.n as f64;
    // Steps 2–3: Q[i] = count of the most common i-tuple, P[i] = Q[i] / (L - i + 1),
    // P_max = max_i P[i]^(1/i) for 1 <= i <= t.
    let p_max = (1..=t)
        .map(|i| {
            let q = stats.most_common.get(i).copied().unwrap_or(1) as f64;
            (q / (n - i as f64 + 1.0)).powf(1.0 / i as f64)
        })
        .fold(0.0f64, f64::max);
    // Steps 4–5: p_u = min(1, P_max + 2.576 sqrt(P_max (1 - P_max) / (L - 1))), -log2(p_u).
    Some(neg_log2(upper_bound(p_max, n)))
}

fn lrs_from(stats: &TupleStats) -> Option<f64> {
    // Step 1: u = smallest length whose most common tuple occurs fewer than 35 times.
    let u = stats.t() + 1;
    // Step 2: ν = length of the longest repeated substring.
    let nu = stats.nu();
    if nu < u {
        return None;
    }
    let n = stats.n as f64;
    // Step 3: for W = u … ν, P_W = Σ_i C(C_i, 2) / C(L - W + 1, 2).
    // Step 4: P_max = max_W P_W^(1/W).
    let p_max = (u..=nu)
        .map(|w| {
            let windows = n - w as f64 + 1.0;
            let total_pairs = windows * (windows - 1.0) / 2.0;
            let equal_pairs = stats.pairs.get(w).copied().unwrap_or(0) as f64;
            (equal_pairs / total_pairs).min(1.0).powf(1.0 / w as f64)
        })
        .fold(0.0f64, f64::max);
    // Steps 5–6: p_u = min(1, P_max + 2.576 sqrt(P_max (1 - P_max) / (L - 1))), -log2(p_u).
    Some(neg_log2(upper_bound(p_max, n)))
}

/// Per-length statistics for tests: `(most_common[1..=ν], pairs[1..=ν])`.
#[cfg(test)]
pub(super) fn tuple_stats_for_test(symbols: &[u8]) -> Option<(Vec<u64>, Vec<u128>)> {
    let s = TupleStats::new(symbols)?;
    Some((
        s.most_common.get(1..).unwrap_or(&[]).to_vec(),
        s.pairs.get(1..).unwrap_or(&[]).to_vec(),
    ))
}
