//! §6.3.4 Compression estimate (Maurer's universal statistic on 6-bit blocks, 1000-block dictionary).

use super::common::{Root, is_binary, solve_decreasing, z_alpha};

/// Block width b of step 1.
const BLOCK_BITS: usize = 6;
/// Dictionary size d of step 2.
const DICT_BLOCKS: usize = 1000;
/// The constant c of step 4.
const SIGMA_FACTOR: f64 = 0.5907;

/// §6.3.4 Compression estimate, bits per bit. Binary data only: `None` if any symbol is above
/// 1, or there are fewer than `6 × 1002` bits (step 4 needs `v = L' - d >= 2`).
pub fn compression(bits: &[u8]) -> Option<f64> {
    if !is_binary(bits) {
        return None;
    }
    // Step 1: split into L' = floor(L / b) non-overlapping b-bit blocks (most significant bit
    // first); leftover bits are discarded.
    let blocks: Vec<usize> = bits
        .chunks_exact(BLOCK_BITS)
        .map(|c| c.iter().fold(0usize, |acc, &b| (acc << 1) | usize::from(b)))
        .collect();
    let n_blocks = blocks.len();
    if n_blocks < DICT_BLOCKS + 2 {
        return None;
    }
    // Step 2: dictionary of last positions (1-based), filled from the first d blocks;
    // 0 means "never seen".
    let mut dict = [0usize; 1 << BLOCK_BITS];
    for (i, &b) in blocks.iter().enumerate().take(DICT_BLOCKS) {
        if let Some(slot) = dict.get_mut(b) {
            *slot = i + 1;
        }
    }
    // Step 3: for i = d + 1 … L', D_i = i - dict[s'_i] (= i for a block never seen), then
    // dict[s'_i] = i. Accumulate log2 D and (log2 D)² for step 4.
    let v = n_blocks - DICT_BLOCKS;
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for (i0, &b) in blocks.iter().enumerate().skip(DICT_BLOCKS) {
        let i = i0 + 1;
        let Some(slot) = dict.get_mut(b) else {
            continue;
        };
        let distance = (i - *slot) as f64;
        *slot = i;
        let l = distance.log2();
        sum += l;
        sum_sq += l * l;
    }
    let vf = v as f64;
    // Step 4: X̄ = (1/v) Σ log2 D_i, σ̂ = c sqrt((1/(v - 1)) Σ (log2 D_i)² - X̄²).
    let mean = sum / vf;
    let sigma = SIGMA_FACTOR * (sum_sq / (vf - 1.0) - mean * mean).max(0.0).sqrt();
    // Step 5: X̄' = X̄ - 2.576 σ̂ / sqrt(v).
    let mean_lower = mean - z_alpha() * sigma / vf.sqrt();
    // Step 6: solve X̄' = G(p) + (2^b - 1) G(q), q = (1 - p)/(2^b - 1), for p in [2^-b, 1].
    let g = GFunction::new(n_blocks);
    let alphabet_minus_one = ((1usize << BLOCK_BITS) - 1) as f64;
    let expected = |p: f64| g.eval(p) + alphabet_minus_one * g.eval((1.0 - p) / alphabet_minus_one);
    let lowest_p = 1.0 / (1u32 << BLOCK_BITS) as f64;
    match solve_decreasing(expected, mean_lower, lowest_p, 1.0) {
        // Step 7: min-entropy = -log2(p) / b.
        Root::At(p) => Some((0.0 - p.log2() / BLOCK_BITS as f64).max(0.0) + 0.0),
        // Step 7: no solution means min-entropy 1.
        Root::AboveRange => Some(1.0),
    }
}

/// `G(z) = (1/v) Σ_{t=d+1}^{L'} Σ_{u=1}^{t} log2(u) F(z, t, u)` of step 6, with
/// `F(z, t, u) = z² (1 - z)^(u-1)` for `u < t` and `z (1 - z)^(t-1)` for `u = t`.
///
/// The double sum is regrouped by `u`: a term `log2(u) z² (1-z)^(u-1)` with `u <= L' - 1`
/// appears once for every `t` in `[d + 1, L']` with `t > u`, i.e. `L' - max(d, u)` times, and
/// the `u = t` terms form `z Σ_{t=d+1}^{L'} log2(t) (1-z)^(t-1)`. That makes one evaluation
/// `O(L')` instead of `O(L'²)`; the loop stops once `(1 - z)^(u-1)` underflows.
struct GFunction {
    log2: Vec<f64>,
    n_blocks: usize,
}

impl GFunction {
    fn new(n_blocks: usize) -> Self {
        let log2 = (0..=n_blocks).map(|u| (u.max(1) as f64).log2()).collect();
        GFunction { log2, n_blocks }
    }

    fn eval(&self, z: f64) -> f64 {
        let n = self.n_blocks;
        let v = (n - DICT_BLOCKS) as f64;
        let decay = 1.0 - z;
        // (1 - z)^(u - 1), starting at u = 2 (the u = 1 terms vanish: log2 1 = 0).
        let mut power = decay;
        let (mut inner, mut diagonal) = (0.0f64, 0.0f64);
        for (u, &log_u) in self.log2.iter().enumerate().skip(2) {
            if power < f64::MIN_POSITIVE {
                break;
            }
            let a = log_u * power;
            if u < n {
                inner += a * (n - u.max(DICT_BLOCKS)) as f64;
            }
            if u > DICT_BLOCKS {
                diagonal += a;
            }
            power *= decay;
        }
        (z * z * inner + z * diagonal) / v
    }
}

/// Direct evaluation of the step 6 double sum, for checking [`GFunction`] in tests.
#[cfg(test)]
pub(super) fn g_as_written(z: f64, n_blocks: usize) -> f64 {
    let mut total = 0.0;
    for t in DICT_BLOCKS + 1..=n_blocks {
        for u in 1..=t {
            let f = if u < t {
                z * z * (1.0 - z).powi(u as i32 - 1)
            } else {
                z * (1.0 - z).powi(t as i32 - 1)
            };
            total += (u as f64).log2() * f;
        }
    }
    total / (n_blocks - DICT_BLOCKS) as f64
}

/// [`GFunction::eval`] exposed to tests.
#[cfg(test)]
pub(super) fn g_fast(z: f64, n_blocks: usize) -> f64 {
    GFunction::new(n_blocks).eval(z)
}
