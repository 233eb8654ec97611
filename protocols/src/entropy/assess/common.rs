//! Numeric and data helpers shared by the §6.3 estimators (bounds, bisection, bit expansion).

use super::Z_ALPHA;

/// The bits of every sample (`bits` low bits, most significant first), one bit per byte.
pub(super) fn to_bitstring(samples: &[u8], bits: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len().saturating_mul(usize::from(bits)));
    for &s in samples {
        for j in (0..bits).rev() {
            out.push((s >> j) & 1);
        }
    }
    out
}

/// Clamps an estimate to `[0, max]`; NaN (never expected) becomes 0, the conservative value.
pub(super) fn clamp_entropy(h: f64, max: f64) -> f64 {
    // `+ 0.0` turns a -0.0 into +0.0.
    if h.is_nan() {
        0.0
    } else {
        h.clamp(0.0, max) + 0.0
    }
}

/// `-log2(p)` for a probability, as +0.0 (never -0.0) when `p >= 1`.
pub(super) fn neg_log2(p: f64) -> f64 {
    if p >= 1.0 { 0.0 } else { 0.0 - p.log2() }
}

/// `min(1, p + 2.576 sqrt(p (1 - p) / (n - 1)))`, the 99% upper bound used throughout §6.3.
/// Callers guarantee `n >= 2`.
pub(super) fn upper_bound(p: f64, n: f64) -> f64 {
    let spread = Z_ALPHA * (p * (1.0 - p) / (n - 1.0)).max(0.0).sqrt();
    (p + spread).min(1.0)
}

/// True when every symbol is 0 or 1.
pub(super) fn is_binary(symbols: &[u8]) -> bool {
    symbols.iter().all(|&s| s <= 1)
}

/// Number of distinct values present (`k` in the prediction estimators).
pub(super) fn distinct_symbols(symbols: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &s in symbols {
        seen[usize::from(s)] = true;
    }
    seen.iter().filter(|&&b| b).count()
}

/// Outcome of [`solve_decreasing`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Root {
    /// `f(p) = target` at this `p` (to `f64` resolution; the upper end of the final bracket).
    At(f64),
    /// `target > f(lo)`: no `p` in the domain fits (90B's "no solution" case).
    AboveRange,
}

/// Bisection for `f(p) = target` with `f` non-increasing on `[lo, hi]`. When
/// `target <= f(hi)`, returns `hi` (the data are at least as predictable as `p = hi`). A NaN
/// value of `f` is treated as "above target", which moves the answer towards `hi` (lower
/// entropy).
pub(super) fn solve_decreasing(f: impl Fn(f64) -> f64, target: f64, lo: f64, hi: f64) -> Root {
    let f_lo = f(lo);
    if f_lo < target {
        return Root::AboveRange;
    }
    if f(hi) >= target {
        return Root::At(hi);
    }
    let (mut lo, mut hi) = (lo, hi);
    for _ in 0..200 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Root::At(hi)
}
