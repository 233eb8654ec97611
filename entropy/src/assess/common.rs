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

/// The z value every estimator uses: [`Z_ALPHA`]. Test builds can replace it on the current
/// thread (`with_z_alpha`) to separate the effect of NIST's more precise quantile from any
/// other difference against the NIST tool's published outputs.
#[cfg(not(test))]
#[inline]
pub(super) fn z_alpha() -> f64 {
    Z_ALPHA
}

#[cfg(test)]
thread_local! {
    static Z_OVERRIDE: std::cell::Cell<f64> = const { std::cell::Cell::new(Z_ALPHA) };
}

#[cfg(test)]
pub(super) fn z_alpha() -> f64 {
    Z_OVERRIDE.with(std::cell::Cell::get)
}

/// Runs `f` with [`z_alpha`] returning `z` on this thread (test builds only).
#[cfg(test)]
pub(super) fn with_z_alpha<T>(z: f64, f: impl FnOnce() -> T) -> T {
    struct Restore(f64);
    impl Drop for Restore {
        fn drop(&mut self) {
            Z_OVERRIDE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(Z_OVERRIDE.with(|c| c.replace(z)));
    f()
}

/// `min(1, p + 2.576 sqrt(p (1 - p) / (n - 1)))`, the 99% upper bound used throughout §6.3.
/// Callers guarantee `n >= 2`.
pub(super) fn upper_bound(p: f64, n: f64) -> f64 {
    let spread = z_alpha() * (p * (1.0 - p) / (n - 1.0)).max(0.0).sqrt();
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
