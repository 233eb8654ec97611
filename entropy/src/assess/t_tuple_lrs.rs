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
//! intervals whose range `(h_p, h]` contains `W` (a difference array).
//!
//! t-Tuple reads the most common counts only for `W <= t` and LRS the pair counts only for
//! `W > t`, so a first walk finds ν (the longest repeated substring length, the largest LCP)
//! and t (the largest LCP of an interval of 35 or more suffixes), and a second walk tallies
//! `4 t` bytes of largest sizes and `8 (ν - t)` bytes of pair differences. The interval stack
//! is kept as runs of arithmetic progressions, so the deep nesting of a stuck or periodic
//! source (ν and t close to n) costs a few entries. Total cost: the sorted LCP array (see
//! `suffix`: `4 n` bytes, `O(n)` time, `O(n log n)` at worst for bit strings), `O(n)` for the
//! walks and `O(ν)` for the per-length loops. For 8 million bits the walks add a few KiB on
//! random data and 31 MiB on an all-zero string.

use super::common::{neg_log2, upper_bound};

/// The "at least 35 occurrences" threshold of §6.3.5 step 1 and §6.3.6 step 1.
const TUPLE_THRESHOLD: u64 = 35;

/// Per-length tuple statistics of a sequence of length `n`, over the lengths the estimates
/// read: the most common tuple counts up to `most_common_upto` and the pair counts from
/// `pairs_from` to ν (the estimators use `t` and `t + 1`; tests ask for every length).
struct TupleStats {
    n: usize,
    /// ν, the length of the longest repeated substring (0 when nothing repeats).
    nu: usize,
    /// Largest t with a t-tuple occurring at least 35 times (0 if none): the largest LCP
    /// value of an interval of 35 or more suffixes.
    t: usize,
    /// `largest_at[h]`: size of the largest LCP interval with LCP value `h`, for
    /// `h < largest_at.len() - 1`; the last entry takes every interval with a larger value
    /// too. The most common w-tuple occurs `max_{h >= w} largest_at[h]` times.
    largest_at: Vec<u32>,
    /// First tuple length `diff` covers.
    pairs_from: usize,
    /// Difference array of `Σ_i C(C_i, 2)`: its prefix sum at `k` is the pair count of the
    /// `(pairs_from + k)`-tuples, for `pairs_from + k <= ν`. Every entry and prefix sum lies
    /// within `±C(n, 2)` (the intervals adding to one entry are disjoint, as are those
    /// subtracting), which fits an `i64` for `n < 2^32`.
    diff: Vec<i64>,
}

impl TupleStats {
    /// Statistics for the estimators: most common counts up to `t`, pair counts from `t + 1`.
    fn new(symbols: &[u8]) -> Option<Self> {
        let lcp = super::suffix::sorted_lcp(symbols)?;
        let (nu, t) = extent(&lcp);
        Some(Self::tally(&lcp, nu, t, t, t + 1))
    }

    /// Walks the LCP intervals of `lcp` (ν and t already known) and tallies the most common
    /// counts for lengths `1..=most_common_upto` and the pair counts for `pairs_from..=ν`.
    fn tally(lcp: &[u32], nu: usize, t: usize, most_common_upto: usize, pairs_from: usize) -> Self {
        let upto = most_common_upto.min(nu);
        let pairs_from = pairs_from.max(1);
        let mut largest_at = vec![0u32; upto + 1];
        let mut diff = vec![0i64; (nu + 2).saturating_sub(pairs_from)];
        for_each_interval(lcp, |h, parent, size| {
            if let Some(slot) = largest_at.get_mut(h.min(upto)) {
                *slot = (*slot).max(u32::try_from(size).unwrap_or(u32::MAX));
            }
            // The interval adds to the pair counts of lengths `parent + 1..=h`.
            if h >= pairs_from {
                // `size < 2^32`, so the product fits a `u64` and the half an `i64`.
                let pairs = i64::try_from(size * (size - 1) / 2).unwrap_or(i64::MAX);
                if let Some(slot) = diff.get_mut((parent + 1).max(pairs_from) - pairs_from) {
                    *slot += pairs;
                }
                if let Some(slot) = diff.get_mut(h + 1 - pairs_from) {
                    *slot -= pairs;
                }
            }
        });
        TupleStats {
            n: lcp.len(),
            nu,
            t,
            largest_at,
            pairs_from,
            diff,
        }
    }

    /// `(w, count of the most common w-tuple)` for `w = most_common_upto, …, 1`.
    fn most_common_descending(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.largest_at
            .iter()
            .enumerate()
            .skip(1)
            .rev()
            .scan(1u64, |running_max, (w, &size)| {
                *running_max = (*running_max).max(u64::from(size));
                Some((w, *running_max))
            })
    }

    /// `(w, Σ_i C(C_i, 2) over the distinct w-tuples)` for `w = pairs_from, …, ν`.
    fn pairs_ascending(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let lengths = (self.nu + 1).saturating_sub(self.pairs_from);
        self.diff
            .iter()
            .take(lengths)
            .enumerate()
            .scan(0i64, |running, (k, &d)| {
                *running += d;
                Some((self.pairs_from + k, u64::try_from(*running).unwrap_or(0)))
            })
    }
}

/// `(ν, t)` of the sequence whose sorted LCP array is `lcp`: the largest LCP value, and the
/// largest LCP value of an interval of at least 35 suffixes (0 if none).
fn extent(lcp: &[u32]) -> (usize, usize) {
    let (mut nu, mut t) = (0, 0);
    for_each_interval(lcp, |h, _, size| {
        nu = nu.max(h);
        if size >= TUPLE_THRESHOLD {
            t = t.max(h);
        }
    });
    (nu, t)
}

/// Calls `visit(h, h_p, size)` for every LCP interval of the sorted LCP array `lcp` except
/// the root: its LCP value `h > 0`, its parent's LCP value `h_p < h`, and its number of
/// suffixes. Each interval is reported once, children before their parent.
fn for_each_interval(lcp: &[u32], mut visit: impl FnMut(usize, usize, u64)) {
    let n = lcp.len();
    let mut open = OpenIntervals::default();
    open.push(0, 0);
    for i in 1..=n {
        let cur = lcp.get(i).copied().unwrap_or(0);
        let mut left = (i - 1) as u32;
        while let Some((h, lb)) = open.top() {
            if cur >= h {
                break;
            }
            open.pop();
            let parent = open.top().map_or(0, |(ph, _)| ph).max(cur);
            visit(h as usize, parent as usize, i as u64 - u64::from(lb));
            left = lb;
        }
        if open.top().is_some_and(|(h, _)| cur > h) {
            open.push(cur, left);
        }
    }
}

/// The stack of open LCP intervals, `(LCP value, left boundary)` with the innermost on top,
/// stored as runs of arithmetic progressions. A stuck or periodic source opens one
/// interval per suffix along a progression (all zeros: values 1, 2, 3, … at boundaries 0,
/// 1, 2, …), which a plain stack would hold entry by entry (`8 n` bytes); as runs it takes a
/// few entries. Differences are taken modulo 2^32, which recovers every entry exactly.
#[derive(Default)]
struct OpenIntervals {
    runs: Vec<Run>,
}

/// Entries `(h + k·dh, lb + k·dlb)` for `k < count` (`count >= 1`).
#[derive(Clone, Copy)]
struct Run {
    h: u32,
    lb: u32,
    dh: u32,
    dlb: u32,
    count: u32,
}

impl Run {
    fn last(&self) -> (u32, u32) {
        let k = self.count.wrapping_sub(1);
        (
            self.h.wrapping_add(self.dh.wrapping_mul(k)),
            self.lb.wrapping_add(self.dlb.wrapping_mul(k)),
        )
    }
}

impl OpenIntervals {
    fn top(&self) -> Option<(u32, u32)> {
        self.runs.last().map(Run::last)
    }

    fn pop(&mut self) {
        if let Some(run) = self.runs.last_mut() {
            run.count -= 1;
            if run.count == 0 {
                self.runs.pop();
            }
        }
    }

    fn push(&mut self, h: u32, lb: u32) {
        if let Some(run) = self.runs.last_mut() {
            let (top_h, top_lb) = run.last();
            let (dh, dlb) = (h.wrapping_sub(top_h), lb.wrapping_sub(top_lb));
            if run.count == 1 {
                (run.dh, run.dlb, run.count) = (dh, dlb, 2);
                return;
            }
            if (dh, dlb) == (run.dh, run.dlb) {
                run.count += 1;
                return;
            }
        }
        self.runs.push(Run {
            h,
            lb,
            dh: 0,
            dlb: 0,
            count: 1,
        });
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
    let t = stats.t;
    if t == 0 {
        return None;
    }
    let n = stats.n as f64;
    // Steps 2–3: Q[i] = count of the most common i-tuple, P[i] = Q[i] / (L - i + 1),
    // P_max = max_i P[i]^(1/i) for 1 <= i <= t.
    let p_max = stats
        .most_common_descending()
        .filter(|&(i, _)| i <= t)
        .map(|(i, q)| (q as f64 / (n - i as f64 + 1.0)).powf(1.0 / i as f64))
        .fold(0.0f64, f64::max);
    // Steps 4–5: p_u = min(1, P_max + 2.576 sqrt(P_max (1 - P_max) / (L - 1))), -log2(p_u).
    Some(neg_log2(upper_bound(p_max, n)))
}

fn lrs_from(stats: &TupleStats) -> Option<f64> {
    // Step 1: u = smallest length whose most common tuple occurs fewer than 35 times.
    let u = stats.t + 1;
    // Step 2: ν = length of the longest repeated substring.
    let nu = stats.nu;
    if nu < u {
        return None;
    }
    let n = stats.n as f64;
    // Step 3: for W = u … ν, P_W = Σ_i C(C_i, 2) / C(L - W + 1, 2).
    // Step 4: P_max = max_W P_W^(1/W).
    let p_max = stats
        .pairs_ascending()
        .filter(|&(w, _)| w >= u)
        .map(|(w, equal_pairs)| {
            let windows = n - w as f64 + 1.0;
            let total_pairs = windows * (windows - 1.0) / 2.0;
            (equal_pairs as f64 / total_pairs)
                .min(1.0)
                .powf(1.0 / w as f64)
        })
        .fold(0.0f64, f64::max);
    // Steps 5–6: p_u = min(1, P_max + 2.576 sqrt(P_max (1 - P_max) / (L - 1))), -log2(p_u).
    Some(neg_log2(upper_bound(p_max, n)))
}

/// Most common tuple counts and pair counts over a range of consecutive lengths.
#[cfg(test)]
pub(super) type TupleLists = (Vec<u64>, Vec<u128>);

/// Per-length statistics for tests: `(most_common[1..=ν], pairs[1..=ν])` tallied over every
/// length with t, and the parts the estimators tally, `(most_common[1..=t], pairs[t+1..=ν])`.
#[cfg(test)]
pub(super) fn tuple_stats_for_test(symbols: &[u8]) -> Option<((TupleLists, usize), TupleLists)> {
    let lists = |s: &TupleStats| {
        let mut most: Vec<u64> = s.most_common_descending().map(|(_, c)| c).collect();
        most.reverse();
        let pairs: Vec<u128> = s.pairs_ascending().map(|(_, p)| u128::from(p)).collect();
        (most, pairs)
    };
    let lcp = super::suffix::sorted_lcp(symbols)?;
    let (nu, t) = extent(&lcp);
    let every_length = lists(&TupleStats::tally(&lcp, nu, t, nu, 1));
    Some(((every_length, t), lists(&TupleStats::new(symbols)?)))
}
