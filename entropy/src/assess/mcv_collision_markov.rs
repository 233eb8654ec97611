//! §6.3.1 Most Common Value, §6.3.2 Collision and §6.3.3 Markov estimates.

use super::common::{Root, is_binary, neg_log2, solve_decreasing, upper_bound, z_alpha};

/// §6.3.1 Most Common Value estimate, bits per symbol. `None` with fewer than two symbols.
pub fn most_common_value(symbols: &[u8]) -> Option<f64> {
    if symbols.len() < 2 {
        return None;
    }
    let mut counts = [0u64; 256];
    for &s in symbols {
        counts[usize::from(s)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    let l = symbols.len() as f64;
    // Step 1: p̂ = max count / L.
    let p_hat = max as f64 / l;
    // Step 2: p_u = min(1, p̂ + 2.576 sqrt(p̂(1 - p̂)/(L - 1))).
    let p_u = upper_bound(p_hat, l);
    // Step 3: min-entropy = -log2(p_u).
    Some(neg_log2(p_u))
}

/// §6.3.2 step 7: the expected collision time of a binary source whose most likely value has
/// probability `p`, exactly as written in 90B:
/// `p q⁻² (1 + ½(p⁻¹ - q⁻¹)) F(q) - p q⁻¹ ½(p⁻¹ - q⁻¹)` with `q = 1 - p` and
/// `F(1/z) = Γ(3, z) z⁻³ eᶻ`. Since `Γ(3, z) = e⁻ᶻ (z² + 2z + 2)`, `F(q) = q + 2q² + 2q³`.
#[cfg(test)]
pub(super) fn collision_expectation_as_written(p: f64) -> f64 {
    let q = 1.0 - p;
    let f = q + 2.0 * q * q + 2.0 * q * q * q;
    let half_diff = 0.5 * (1.0 / p - 1.0 / q);
    p / (q * q) * (1.0 + half_diff) * f - p / q * half_diff
}

/// The same function as [`collision_expectation_as_written`], simplified algebraically to
/// `2 + 2 p q` (expand `F` and collect terms). It has no cancellation near `p = 1`, so the
/// bisection of step 7 runs on this form; a unit test checks the two agree.
fn collision_expectation(p: f64) -> f64 {
    2.0 + 2.0 * p * (1.0 - p)
}

/// §6.3.2 Collision estimate, bits per bit. Binary data only: `None` if any symbol is above 1
/// or fewer than two collisions are observed.
pub fn collision(bits: &[u8]) -> Option<f64> {
    if !is_binary(bits) {
        return None;
    }
    // Steps 1–4: walk the data; each collision time t is the length of the shortest prefix of
    // the remaining data that repeats a value. With two symbols that is 2 (s_i = s_i+1) or 3
    // (any three bits contain a repeat). A final incomplete search is not counted.
    let (mut v, mut sum, mut sum_sq) = (0u64, 0u64, 0u64);
    let mut index = 0usize;
    while let (Some(a), Some(b)) = (bits.get(index), bits.get(index + 1)) {
        let t = if a == b {
            2
        } else if index + 2 < bits.len() {
            3
        } else {
            break;
        };
        v += 1;
        sum += t;
        sum_sq += t * t;
        index += t as usize;
    }
    if v < 2 {
        return None;
    }
    let vf = v as f64;
    // Step 5: X̄ = mean of the t_i and σ̂ their sample standard deviation.
    let mean = sum as f64 / vf;
    let var = (sum_sq as f64 - sum as f64 * mean) / (vf - 1.0);
    let sigma = var.max(0.0).sqrt();
    // Step 6: X̄' = X̄ - 2.576 σ̂ / sqrt(v).
    let mean_lower = mean - z_alpha() * sigma / vf.sqrt();
    // Step 7: solve X̄' = E(p) for p in [1/2, 1] by bisection (E decreases from 2.5 to 2).
    // Step 8: no solution (X̄' above 2.5) means min-entropy log2(2) = 1; X̄' at or below 2, the
    // smallest possible mean, gives p = 1.
    match solve_decreasing(collision_expectation, mean_lower, 0.5, 1.0) {
        Root::At(p) => Some(neg_log2(p)),
        Root::AboveRange => Some(1.0),
    }
}

/// §6.3.3 Markov estimate, bits per bit. Binary data only: `None` if any symbol is above 1 or
/// there are fewer than two bits.
pub fn markov(bits: &[u8]) -> Option<f64> {
    if bits.len() < 2 || !is_binary(bits) {
        return None;
    }
    // Step 1: P_0, P_1 over all L bits.
    let ones = bits.iter().filter(|&&b| b == 1).count();
    let l = bits.len() as f64;
    let p1 = ones as f64 / l;
    let p0 = 1.0 - p1;
    // Step 2: transition probabilities from the L - 1 adjacent pairs. A state never left has
    // no defined transitions; its probabilities are taken as 0, so no sequence uses them.
    let mut trans = [[0u64; 2]; 2];
    for w in bits.windows(2) {
        if let [a, b] = *w {
            trans[usize::from(a)][usize::from(b)] += 1;
        }
    }
    let row = |r: [u64; 2]| {
        let total = r[0] + r[1];
        if total == 0 {
            (0.0, 0.0)
        } else {
            (r[0] as f64 / total as f64, r[1] as f64 / total as f64)
        }
    };
    let (p00, p01) = row(trans[0]);
    let (p10, p11) = row(trans[1]);
    // Step 3: -log2 of the probability of each of the six candidate most-likely 128-bit
    // sequences; a factor of probability 0 rules the sequence out.
    let term = |factors: &[(f64, f64)]| -> Option<f64> {
        let mut bits_needed = 0.0;
        for &(p, exponent) in factors {
            if p <= 0.0 {
                return None;
            }
            bits_needed -= exponent * p.log2();
        }
        Some(bits_needed)
    };
    let candidates = [
        term(&[(p0, 1.0), (p00, 127.0)]),             // 00…0
        term(&[(p0, 1.0), (p01, 64.0), (p10, 63.0)]), // 0101…01
        term(&[(p0, 1.0), (p01, 1.0), (p11, 126.0)]), // 011…1
        term(&[(p1, 1.0), (p10, 1.0), (p00, 126.0)]), // 100…0
        term(&[(p1, 1.0), (p10, 64.0), (p01, 63.0)]), // 1010…10
        term(&[(p1, 1.0), (p11, 127.0)]),             // 11…1
    ];
    // Step 4: min-entropy = min(-log2(p̂_max)/128, 1).
    let h_max = candidates.iter().flatten().fold(128.0f64, |a, &b| a.min(b));
    Some((h_max / 128.0).clamp(0.0, 1.0))
}
