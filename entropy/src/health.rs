//! NIST SP 800-90B §4.4 continuous health tests (Repetition Count and Adaptive Proportion).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The false-positive exponent: alpha = 2^-ALPHA_LOG2 (SP 800-90B recommends 2^-20).
pub const ALPHA_LOG2: u32 = 20;
/// Minimum number of samples that must pass the tests before anything is credited.
pub const STARTUP_SAMPLES: u64 = 1024;
/// Adaptive Proportion window for binary sources (`bits_per_sample == 1`).
pub const APT_WINDOW_BINARY: u32 = 1024;
/// Adaptive Proportion window for non-binary sources.
pub const APT_WINDOW_NON_BINARY: u32 = 512;

/// Most conservative false-positive exponent SP 800-90B §4.4 allows (alpha = 2^-40).
pub const MAX_ALPHA_LOG2: u32 = 40;
/// A month of seconds: a healthy source should raise a false alarm less often than this.
pub const FALSE_ALARM_PERIOD_S: f64 = 30.0 * 24.0 * 3600.0;

/// alpha = 2^-20 as an f64.
pub fn alpha() -> f64 {
    (-f64::from(ALPHA_LOG2)).exp2()
}

/// The false-positive exponent for a source read at `samples_per_s`: the smallest `a` in
/// `ALPHA_LOG2..=MAX_ALPHA_LOG2` with `2^-a × samples_per_s × FALSE_ALARM_PERIOD_S < 1`, so a
/// healthy source raises fewer than one false alarm a month; capped at 2^-40 (90B's bound),
/// where the expected period is `2^40 / samples_per_s` seconds instead. A rate that is not a
/// positive finite number gets the most conservative exponent.
pub fn alpha_log2_for_rate(samples_per_s: f64) -> u32 {
    if !samples_per_s.is_finite() || samples_per_s <= 0.0 {
        return MAX_ALPHA_LOG2;
    }
    let needed = (samples_per_s * FALSE_ALARM_PERIOD_S).log2().ceil();
    // `as` saturates; the clamp keeps it in 90B's range.
    (needed.max(0.0) as u32).clamp(ALPHA_LOG2, MAX_ALPHA_LOG2)
}

/// Expected seconds between false alarms of a healthy source read at `samples_per_s` under
/// alpha = 2^-`alpha_log2` (each sample can start a false Repetition Count alarm).
pub fn false_alarm_period_s(samples_per_s: f64, alpha_log2: u32) -> f64 {
    if samples_per_s <= 0.0 {
        return f64::INFINITY;
    }
    f64::from(alpha_log2).exp2() / samples_per_s
}

/// Why a [`SourceSpec`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum SpecError {
    /// `bits_per_sample` must be 1..=8.
    #[error("bits_per_sample must be 1..=8, got {0}")]
    BitsPerSample(u8),
    /// The claimed min-entropy must be finite and in (0, bits_per_sample].
    #[error("claimed min-entropy {0} is not in (0, bits_per_sample]")]
    MinEntropy(f64),
}

/// A noise source's declaration: symbol width and claimed min-entropy per sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SourceSpecRepr", into = "SourceSpecRepr")]
pub struct SourceSpec {
    bits_per_sample: u8,
    min_entropy_per_sample: f64,
}

#[derive(Serialize, Deserialize)]
struct SourceSpecRepr {
    bits_per_sample: u8,
    min_entropy_per_sample: f64,
}

impl TryFrom<SourceSpecRepr> for SourceSpec {
    type Error = SpecError;
    fn try_from(r: SourceSpecRepr) -> Result<Self, SpecError> {
        SourceSpec::new(r.bits_per_sample, r.min_entropy_per_sample)
    }
}

impl From<SourceSpec> for SourceSpecRepr {
    fn from(s: SourceSpec) -> Self {
        SourceSpecRepr {
            bits_per_sample: s.bits_per_sample,
            min_entropy_per_sample: s.min_entropy_per_sample,
        }
    }
}

impl SourceSpec {
    /// Validates `1 <= bits_per_sample <= 8` and `0 < min_entropy <= bits_per_sample`.
    pub fn new(bits_per_sample: u8, min_entropy_per_sample: f64) -> Result<Self, SpecError> {
        if !(1..=8).contains(&bits_per_sample) {
            return Err(SpecError::BitsPerSample(bits_per_sample));
        }
        let h = min_entropy_per_sample;
        if !h.is_finite() || h <= 0.0 || h > f64::from(bits_per_sample) {
            return Err(SpecError::MinEntropy(h));
        }
        Ok(SourceSpec {
            bits_per_sample,
            min_entropy_per_sample: h,
        })
    }

    /// Symbol width in bits (1..=8).
    pub fn bits_per_sample(&self) -> u8 {
        self.bits_per_sample
    }

    /// Claimed min-entropy per sample, in bits.
    pub fn min_entropy_per_sample(&self) -> f64 {
        self.min_entropy_per_sample
    }

    /// Mask selecting the low `bits_per_sample` bits of a raw sample.
    pub fn sample_mask(&self) -> u8 {
        u8::MAX >> (8 - self.bits_per_sample.clamp(1, 8))
    }

    /// Adaptive Proportion window: 1024 for binary sources, 512 otherwise.
    pub fn apt_window(&self) -> u32 {
        if self.bits_per_sample == 1 {
            APT_WINDOW_BINARY
        } else {
            APT_WINDOW_NON_BINARY
        }
    }

    /// Repetition Count cutoff `C = 1 + ceil(20 / H)`.
    pub fn rct_cutoff(&self) -> u64 {
        rct_cutoff(self.min_entropy_per_sample)
    }

    /// Adaptive Proportion cutoff `C = 1 + CRITBINOM(W, 2^-H, 1 - alpha)`.
    pub fn apt_cutoff(&self) -> u32 {
        apt_cutoff(self.apt_window(), self.min_entropy_per_sample)
    }

    /// The same source with another min-entropy per sample (e.g. its assessed value).
    pub fn with_min_entropy(&self, min_entropy_per_sample: f64) -> Result<Self, SpecError> {
        SourceSpec::new(self.bits_per_sample, min_entropy_per_sample)
    }
}

/// Repetition Count cutoff `1 + ceil(20 / h)`; saturates for absurdly small `h`.
pub fn rct_cutoff(h: f64) -> u64 {
    rct_cutoff_at(h, ALPHA_LOG2)
}

/// Repetition Count cutoff `1 + ceil(a / h)` for alpha = 2^-a.
pub fn rct_cutoff_at(h: f64, alpha_log2: u32) -> u64 {
    if !h.is_finite() || h <= 0.0 {
        return u64::MAX;
    }
    // `as` from f64 saturates, so this cannot overflow.
    let c = (f64::from(alpha_log2) / h).ceil() as u64;
    c.saturating_add(1)
}

/// Adaptive Proportion cutoff `1 + CRITBINOM(window, 2^-h, 1 - 2^-20)`.
pub fn apt_cutoff(window: u32, h: f64) -> u32 {
    apt_cutoff_at(window, h, ALPHA_LOG2)
}

/// Adaptive Proportion cutoff `1 + CRITBINOM(window, 2^-h, 1 - 2^-a)`.
pub fn apt_cutoff_at(window: u32, h: f64, alpha_log2: u32) -> u32 {
    let p = (-h).exp2();
    crit_binom(window, p, (-f64::from(alpha_log2)).exp2())
        .saturating_add(1)
        .min(window)
}

/// Smallest `k` such that `P(X <= k) >= 1 - tail_alpha` for `X ~ Binomial(n, p)`.
///
/// Equivalently the smallest `k` with upper tail `P(X > k) <= tail_alpha`. The
/// probability mass is walked down from `k = n` in log space, so nothing
/// underflows before it matters and the tail sum keeps full relative precision.
pub fn crit_binom(n: u32, p: f64, tail_alpha: f64) -> u32 {
    if p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if tail_alpha.is_nan() || tail_alpha <= 0.0 {
        return n;
    }
    let ln_p = p.ln();
    let ln_odds_down = (-p).ln_1p() - ln_p; // ln((1-p)/p)
    let nf = f64::from(n);
    // ln P(X = n) = n ln p.
    let mut ln_pmf = nf * ln_p;
    let mut tail = 0.0_f64; // P(X > k), starting at k = n
    let mut k = n;
    while k > 0 {
        // Move from k to k-1: tail gains P(X = k).
        tail += ln_pmf.exp();
        if tail > tail_alpha {
            return k;
        }
        let kf = f64::from(k);
        // P(X=k-1) = P(X=k) * k / (n-k+1) * (1-p)/p
        ln_pmf += (kf / (nf - kf + 1.0)).ln() + ln_odds_down;
        k -= 1;
    }
    0
}

/// Which health test tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthFailure {
    /// Too many identical consecutive samples.
    RepetitionCount,
    /// One value too frequent within an APT window.
    AdaptiveProportion,
}

/// What [`HealthTester::feed`] says about the sample just fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthVerdict {
    /// Start-up testing still running: the sample must not be credited.
    Startup,
    /// Source healthy: the sample may be used and credited.
    Healthy,
    /// The source is cut off (sticky until [`HealthTester::reset_after_intervention`]).
    Failed(HealthFailure),
}

impl HealthVerdict {
    /// True only for [`HealthVerdict::Healthy`].
    pub fn is_creditable(&self) -> bool {
        matches!(self, HealthVerdict::Healthy)
    }
}

/// Lifetime counters of a [`HealthTester`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthCounters {
    /// Samples fed since construction.
    pub samples_seen: u64,
    /// Repetition Count Test failures observed.
    pub rct_failures: u64,
    /// Adaptive Proportion Test failures observed (at most one per window).
    pub apt_failures: u64,
}

/// Per-source health-test state machine: start-up testing, then continuous testing.
///
/// Samples are masked to their low `bits_per_sample` bits. After a failure the
/// tests keep running (so the counters keep counting) but the verdict stays
/// `Failed` with the first failure kind.
#[derive(Debug, Clone)]
pub struct HealthTester {
    spec: SourceSpec,
    alpha_log2: u32,
    mask: u8,
    rct_cutoff: u64,
    apt_cutoff: u32,
    apt_window: u32,
    // Repetition Count Test.
    rct_last: Option<u8>,
    rct_run: u64,
    // Adaptive Proportion Test.
    apt_first: u8,
    apt_count: u32,
    apt_pos: u32, // samples of the current window seen so far (0 = none)
    apt_tripped_this_window: bool,
    // Lifecycle.
    startup_seen: u64,
    startup_required: u64,
    failed: Option<HealthFailure>,
    counters: HealthCounters,
}

impl HealthTester {
    /// A fresh tester in start-up state, at alpha = 2^-20.
    pub fn new(spec: SourceSpec) -> Self {
        Self::with_alpha(spec, ALPHA_LOG2)
    }

    /// A fresh tester in start-up state whose cutoffs come from `spec`'s min-entropy and
    /// alpha = 2^-`alpha_log2` (clamped to 90B's 2^-20 … 2^-40; see [`alpha_log2_for_rate`]).
    pub fn with_alpha(spec: SourceSpec, alpha_log2: u32) -> Self {
        let alpha_log2 = alpha_log2.clamp(ALPHA_LOG2, MAX_ALPHA_LOG2);
        let apt_window = spec.apt_window();
        let h = spec.min_entropy_per_sample();
        HealthTester {
            spec,
            alpha_log2,
            mask: spec.sample_mask(),
            rct_cutoff: rct_cutoff_at(h, alpha_log2),
            apt_cutoff: apt_cutoff_at(apt_window, h, alpha_log2),
            apt_window,
            rct_last: None,
            rct_run: 0,
            apt_first: 0,
            apt_count: 0,
            apt_pos: 0,
            apt_tripped_this_window: false,
            startup_seen: 0,
            startup_required: STARTUP_SAMPLES.max(u64::from(apt_window)),
            failed: None,
            counters: HealthCounters::default(),
        }
    }

    /// The source declaration this tester enforces.
    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// The false-positive exponent in force (alpha = 2^-this).
    pub fn alpha_log2(&self) -> u32 {
        self.alpha_log2
    }

    /// Repetition Count cutoff in force.
    pub fn rct_cutoff(&self) -> u64 {
        self.rct_cutoff
    }

    /// Adaptive Proportion cutoff in force.
    pub fn apt_cutoff(&self) -> u32 {
        self.apt_cutoff
    }

    /// Adaptive Proportion window in force.
    pub fn apt_window(&self) -> u32 {
        self.apt_window
    }

    /// Lifetime counters.
    pub fn counters(&self) -> HealthCounters {
        self.counters
    }

    /// The first failure, if the source is cut off.
    pub fn failure(&self) -> Option<HealthFailure> {
        self.failed
    }

    /// Current state, as [`HealthTester::feed`] would report it without a new sample.
    pub fn state(&self) -> HealthVerdict {
        match self.failed {
            Some(f) => HealthVerdict::Failed(f),
            None if self.startup_seen < self.startup_required => HealthVerdict::Startup,
            None => HealthVerdict::Healthy,
        }
    }

    /// Feeds one raw sample and returns the verdict for it.
    pub fn feed(&mut self, sample: u8) -> HealthVerdict {
        let s = sample & self.mask;
        self.counters.samples_seen = self.counters.samples_seen.saturating_add(1);
        let rct = self.run_rct(s);
        let apt = self.run_apt(s);
        if self.failed.is_none() {
            self.failed = rct.or(apt);
        }
        if self.failed.is_none() && self.startup_seen < self.startup_required {
            self.startup_seen += 1;
            // The sample that completes start-up is itself still a start-up sample.
            return HealthVerdict::Startup;
        }
        self.state()
    }

    /// Operator intervention: clears the failure and restarts start-up testing.
    /// Lifetime counters are kept.
    pub fn reset_after_intervention(&mut self) {
        let counters = self.counters;
        *self = HealthTester::with_alpha(self.spec, self.alpha_log2);
        self.counters = counters;
    }

    /// After an intermittent alarm: clears the failure and the tests' running state (the window
    /// that alarmed is discarded by the caller) without a new start-up phase. Counters are kept.
    pub fn clear_alarm(&mut self) {
        self.failed = None;
        self.rct_last = None;
        self.rct_run = 0;
        self.apt_pos = 0;
        self.apt_count = 0;
        self.apt_tripped_this_window = false;
    }

    fn run_rct(&mut self, s: u8) -> Option<HealthFailure> {
        if self.rct_last == Some(s) {
            self.rct_run = self.rct_run.saturating_add(1);
        } else {
            self.rct_last = Some(s);
            self.rct_run = 1;
        }
        if self.rct_run >= self.rct_cutoff {
            self.counters.rct_failures = self.counters.rct_failures.saturating_add(1);
            // Restart the run so a persisting fault is counted again C-1 samples later.
            self.rct_run = 1;
            return Some(HealthFailure::RepetitionCount);
        }
        None
    }

    fn run_apt(&mut self, s: u8) -> Option<HealthFailure> {
        if self.apt_pos == 0 {
            self.apt_first = s;
            self.apt_count = 1;
            self.apt_tripped_this_window = false;
        } else if s == self.apt_first {
            self.apt_count = self.apt_count.saturating_add(1);
        }
        self.apt_pos += 1;
        let mut result = None;
        if self.apt_count >= self.apt_cutoff && !self.apt_tripped_this_window {
            self.apt_tripped_this_window = true;
            self.counters.apt_failures = self.counters.apt_failures.saturating_add(1);
            result = Some(HealthFailure::AdaptiveProportion);
        }
        if self.apt_pos >= self.apt_window {
            self.apt_pos = 0;
        }
        result
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
