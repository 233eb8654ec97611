//! §6.3.7 MultiMCW and §6.3.8 Lag prediction estimates, and the global/local bound shared by all predictors.

use super::common::{Root, distinct_symbols, neg_log2, solve_decreasing, upper_bound};

/// Tally of one predictor run: `N` predictions, `C` correct, and the longest run of correct
/// predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) predictions: u64,
    pub(super) correct: u64,
    run: u64,
    pub(super) longest_run: u64,
}

impl Tally {
    /// Records one prediction outcome (a null prediction counts as incorrect).
    pub(super) fn record(&mut self, correct: bool) {
        self.predictions += 1;
        if correct {
            self.correct += 1;
            self.run += 1;
            self.longest_run = self.longest_run.max(self.run);
        } else {
            self.run = 0;
        }
    }
}

/// Steps 7–10 of §6.3.7 (shared verbatim by §6.3.8–§6.3.10): min-entropy from a predictor
/// tally over an alphabet of `k` symbols. `None` with fewer than two predictions.
pub(super) fn prediction_entropy(tally: &Tally, k: usize) -> Option<f64> {
    if tally.predictions < 2 {
        return None;
    }
    let n = tally.predictions as f64;
    // Step 7: P_global = C / N; P_global' is its 99% upper bound, or 1 - 0.01^(1/N) if C = 0.
    let p_global = tally.correct as f64 / n;
    let p_global_upper = if tally.correct == 0 {
        1.0 - 0.01f64.powf(1.0 / n)
    } else {
        upper_bound(p_global, n)
    };
    // Step 10's floor 1/k (k = distinct symbols present; see the module docs).
    let floor = p_global_upper.max(1.0 / k.max(1) as f64);
    if floor >= 1.0 {
        return Some(0.0);
    }
    // Steps 8–9: r = longest run + 1; P_local solves 0.99 = Pr(no run of r successes in N).
    // That probability decreases in p, so if it is already <= 0.99 at the floor, P_local is
    // below the floor and cannot change the result.
    let r = tally.longest_run as f64 + 1.0;
    let log_target = 0.99f64.ln();
    let f = |p: f64| log_no_run_probability(p, r, n);
    let p_local = if f(floor) <= log_target {
        floor
    } else {
        match solve_decreasing(f, log_target, floor, 1.0) {
            Root::At(p) => p,
            Root::AboveRange => floor,
        }
    };
    // Step 10: min-entropy = -log2(max(P_global', P_local, 1/k)).
    Some(neg_log2(floor.max(p_local)))
}

/// ln of step 9's right-hand side `(1 - p x) / ((r + 1 - r x) q) · x^-(N+1)`, with `q = 1 - p`
/// and `x = x_10` from `x_0 = 1`, `x_j = 1 + q p^r x_{j-1}^(r+1)`. Non-finite or undefined
/// values come out as NaN, which the bisection treats as "above target" (conservative).
fn log_no_run_probability(p: f64, r: f64, n: f64) -> f64 {
    let q = 1.0 - p;
    let qpr = q * p.powf(r);
    let mut x = 1.0f64;
    for _ in 0..10 {
        x = 1.0 + qpr * x.powf(r + 1.0);
    }
    let numerator = 1.0 - p * x;
    let denominator = (r + 1.0 - r * x) * q;
    if numerator <= 0.0 || denominator <= 0.0 {
        return f64::NAN;
    }
    numerator.ln() - denominator.ln() - (n + 1.0) * x.ln()
}

/// Window sizes w1..w4 of §6.3.7 step 1.
const MCW_WINDOWS: [usize; 4] = [63, 255, 1023, 4095];

/// Most-common-value tracker over a sliding window, ties broken by most recent occurrence.
struct Window {
    width: usize,
    counts: Vec<u32>,
    last_seen: Vec<usize>,
    mode: u8,
    mode_count: u32,
}

impl Window {
    fn new(width: usize, alphabet: usize) -> Self {
        Window {
            width,
            counts: vec![0; alphabet],
            last_seen: vec![0; alphabet],
            mode: 0,
            mode_count: 0,
        }
    }

    /// Appends `symbols[i]` and drops the sample that leaves the window.
    fn push(&mut self, symbols: &[u8], i: usize) {
        let Some(&x) = symbols.get(i) else { return };
        let xi = usize::from(x);
        if let (Some(c), Some(l)) = (self.counts.get_mut(xi), self.last_seen.get_mut(xi)) {
            *c += 1;
            *l = i;
            // The newest value wins ties ("the value that appeared most recently").
            if *c >= self.mode_count {
                self.mode = x;
                self.mode_count = *c;
            }
        }
        let Some(&old) = i.checked_sub(self.width).and_then(|j| symbols.get(j)) else {
            return;
        };
        if let Some(c) = self.counts.get_mut(usize::from(old)) {
            *c = c.saturating_sub(1);
        }
        if old == self.mode {
            self.rescan();
        }
    }

    fn rescan(&mut self) {
        let mut best: Option<(u32, usize, u8)> = None;
        for (sym, (&c, &l)) in self.counts.iter().zip(&self.last_seen).enumerate() {
            if c > 0 && best.is_none_or(|(bc, bl, _)| c > bc || (c == bc && l > bl)) {
                best = Some((c, l, sym as u8));
            }
        }
        if let Some((c, _, sym)) = best {
            self.mode = sym;
            self.mode_count = c;
        }
    }
}

/// §6.3.7 MultiMCW prediction estimate, bits per symbol. `None` for fewer than 65 symbols.
pub fn multi_mcw_prediction(symbols: &[u8]) -> Option<f64> {
    let [w1, ..] = MCW_WINDOWS;
    if symbols.len() < w1 + 2 || symbols.len() > super::MAX_SEQUENCE_LEN {
        return None;
    }
    let alphabet = symbols
        .iter()
        .copied()
        .max()
        .map_or(1, |m| usize::from(m) + 1);
    let mut windows = MCW_WINDOWS.map(|w| Window::new(w, alphabet));
    // Step 2: scoreboard of four zeros, winner = the first (smallest) window.
    let mut scoreboard = [0u64; 4];
    let mut winner = 0usize;
    let mut tally = Tally::default();
    for (i, &x) in symbols.iter().enumerate() {
        if i >= w1 {
            // Step 3a: frequent_j is the window's mode once the window is full, else null.
            let frequent = windows.each_ref().map(|w| (i >= w.width).then_some(w.mode));
            // Steps 3b–3c: predict with the current winner.
            tally.record(frequent.get(winner).copied().flatten() == Some(x));
            // Step 3d: update the scoreboard in window order.
            for (j, f) in frequent.iter().enumerate() {
                if *f == Some(x) {
                    scoreboard[j] += 1;
                    if scoreboard[j] >= scoreboard[winner] {
                        winner = j;
                    }
                }
            }
        }
        for w in &mut windows {
            w.push(symbols, i);
        }
    }
    // Steps 4–10 (N = L - w1).
    prediction_entropy(&tally, distinct_symbols(symbols))
}

/// Lag depth D of §6.3.8 step 1.
const LAG_DEPTH: usize = 128;

/// §6.3.8 Lag prediction estimate, bits per symbol. `None` for fewer than three symbols.
///
/// Per step, every lag's score is bumped when it would have predicted correctly (a
/// branch-free pass the compiler vectorises). The winner update of step 3d — lags visited in
/// order 1…D, a lag takes over when its new score is `>=` the winner's — always leaves the
/// winner holding the maximum score, so it is equivalent to: the largest correct lag whose
/// new score equals the new maximum becomes the winner, and otherwise the winner stays.
/// Only when some correct lag reaches the old maximum can that change anything.
pub fn lag_prediction(symbols: &[u8]) -> Option<f64> {
    if symbols.len() < 3 || symbols.len() > super::MAX_SEQUENCE_LEN {
        return None;
    }
    // Steps 4–10 (N = L - 1).
    prediction_entropy(&lag_tally(symbols), distinct_symbols(symbols))
}

/// Steps 1–3 of §6.3.8: the predictor tally.
pub(super) fn lag_tally(symbols: &[u8]) -> Tally {
    // Scores indexed by k = D - d, so that score[k] pairs with the window entry
    // s[i - D + k] = s[i - d] in a forward, vectorisable zip. Step 2: winner = lag 1.
    let mut score = [0u32; LAG_DEPTH];
    let mut winner = 1usize;
    let mut tally = Tally::default();
    for (i, &x) in symbols.iter().enumerate().skip(1) {
        // Steps 3a–3c: prediction_d = s_{i-d} when d < i (1-based); predict with the winner.
        let predicted = i.checked_sub(winner).and_then(|j| symbols.get(j));
        tally.record(predicted == Some(&x));
        // Step 3d (see above for why this equals the one-lag-at-a-time update). Lags not yet
        // available (d > i) predict null and never score.
        let old_max = score.get(LAG_DEPTH - winner).copied().unwrap_or(0);
        let start = i.saturating_sub(LAG_DEPTH);
        let Some(history) = symbols.get(start..i) else {
            continue;
        };
        let Some(scores) = score.get_mut(LAG_DEPTH - history.len()..) else {
            continue;
        };
        // Pass 1: bump the correct lags and find the best score among them.
        let mut best_hit = 0u32;
        for (sc, &h) in scores.iter_mut().zip(history) {
            let hit = u32::from(h == x);
            *sc += hit;
            best_hit = best_hit.max(*sc & hit.wrapping_neg());
        }
        if best_hit > 0 && best_hit >= old_max {
            // Pass 2: a correct lag now holds the maximum; the largest such lag wins.
            // Lag of entry k is len - k (<= 128, so u32 lanes suffice).
            let len = history.len() as u32;
            let mut lag = 0u32;
            for (k, (&sc, &h)) in (0u32..).zip(scores.iter().zip(history)) {
                let candidate = if h == x && sc == best_hit { len - k } else { 0 };
                lag = lag.max(candidate);
            }
            if lag > 0 {
                winner = lag as usize;
            }
        }
    }
    tally
}

/// Step 3d of §6.3.8 exactly as written (one lag at a time), for checking
/// [`lag_prediction`] in tests: returns the tally.
#[cfg(test)]
pub(super) fn lag_tally_as_written(symbols: &[u8]) -> Tally {
    let mut score = [0u64; LAG_DEPTH + 1];
    let mut winner = 1usize;
    let mut tally = Tally::default();
    for (i, &x) in symbols.iter().enumerate().skip(1) {
        let predicted = i.checked_sub(winner).and_then(|j| symbols.get(j));
        tally.record(predicted == Some(&x));
        for d in 1..=LAG_DEPTH {
            if i >= d && symbols.get(i - d) == Some(&x) {
                score[d] += 1;
                if score[d] >= score[winner] {
                    winner = d;
                }
            }
        }
    }
    tally
}
