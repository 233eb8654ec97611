//! Peer scoring and the Efraimidis–Spirakis sampling keys that order candidates.

use rand_core::Rng;
use serde::{Deserialize, Serialize};

use super::{PeerRecord, Power};

/// Largest weight honoured; larger (or infinite) values are clamped so sums stay finite.
const MAX_WEIGHT: f64 = 1e6;
/// Smallest score floor honoured, so every eligible peer keeps a positive weight.
const MIN_FLOOR: f64 = 1e-6;

/// Weights of the peer score; see [`score`] for the formula.
///
/// Negative, NaN or infinite weights are treated as 0 (infinite ones as the cap
/// `1e6`); a floor that is not a positive finite number is raised to `1e-6`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreWeights {
    /// Weight of `uptime_ratio` (clamped to 0..=1).
    pub uptime: f64,
    /// Weight of `reachability` (clamped to 0..=1).
    pub reachability: f64,
    /// Weight of the round-trip term `rtt_reference_ms / (rtt_reference_ms + rtt_ms)`.
    pub rtt: f64,
    /// Weight of the power term: 1 on mains, `percent / 200` (at most 0.5) on battery.
    pub power: f64,
    /// Weight of the load term `load_reference_shares / (load_reference_shares + shares_held)`.
    pub load: f64,
    /// RTT at which the RTT term is one half (0 is treated as 1).
    pub rtt_reference_ms: u32,
    /// Shares held at which the load term is one half (0 is treated as 1).
    pub load_reference_shares: u32,
    /// Constant added to every score so that it is strictly positive.
    pub floor: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            uptime: 3.0,
            reachability: 3.0,
            rtt: 1.0,
            power: 1.0,
            load: 1.0,
            rtt_reference_ms: 100,
            load_reference_shares: 16,
            floor: 0.01,
        }
    }
}

/// A weight made safe: finite, in `0..=MAX_WEIGHT`.
fn weight(w: f64) -> f64 {
    if w.is_nan() || w <= 0.0 {
        0.0
    } else {
        w.min(MAX_WEIGHT)
    }
}

/// A ratio made safe: NaN becomes 0, everything else is clamped to `0..=1`.
fn unit(x: f32) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        f64::from(x.clamp(0.0, 1.0))
    }
}

/// `reference / (reference + value)`: 1 at 0, one half at `reference`, towards 0 beyond.
fn decay(value: u32, reference: u32) -> f64 {
    let reference = f64::from(reference.max(1));
    reference / (reference + f64::from(value))
}

/// The sampling weight of a peer: a finite number ≥ the floor (so always > 0).
///
/// ```text
/// score = floor
///       + w_uptime · clamp(uptime_ratio, 0, 1)
///       + w_reach  · clamp(reachability, 0, 1)
///       + w_rtt    · ρ / (ρ + rtt_ms)            (0 if the RTT is unknown)
///       + w_power  · (1 on mains, percent/200 on battery)
///       + w_load   · λ / (λ + shares_held)
/// ```
///
/// with `ρ = rtt_reference_ms` and `λ = load_reference_shares`. Every term lies in
/// `0..=1`, so with the default weights (3, 3, 1, 1, 1, floor 0.01) the score lies in
/// `0.01..=9.01`: availability dominates, then latency, power and load spread.
/// NaN ratios count as 0; an unknown RTT earns no latency credit.
pub fn score(peer: &PeerRecord, weights: &ScoreWeights) -> f64 {
    let rtt = peer
        .rtt_ms
        .map_or(0.0, |ms| decay(ms, weights.rtt_reference_ms));
    let power = match peer.power {
        Power::Mains => 1.0,
        Power::Battery { percent } => f64::from(percent.min(100)) / 200.0,
    };
    let load = decay(peer.shares_held, weights.load_reference_shares);
    let floor = if weights.floor.is_finite() {
        weights.floor.clamp(MIN_FLOOR, MAX_WEIGHT)
    } else {
        MIN_FLOOR
    };
    floor
        + weight(weights.uptime) * unit(peer.uptime_ratio)
        + weight(weights.reachability) * unit(peer.reachability)
        + weight(weights.rtt) * rtt
        + weight(weights.power) * power
        + weight(weights.load) * load
}

/// An Efraimidis–Spirakis key for a peer of weight `w > 0`: `ln(u) / w` with `u`
/// uniform in `(0, 1]`, a monotone transform of `u^(1/w)`. Taking candidates by
/// decreasing key is weighted sampling without replacement.
pub(super) fn sampling_key<R: Rng + ?Sized>(w: f64, rng: &mut R) -> f64 {
    // 53 random bits, shifted to (0, 1] so ln() is finite.
    let u = ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
    u.ln() / w.max(MIN_FLOOR)
}

/// Candidate indices `0..weights.len()` ordered by decreasing sampling key (ties by index).
/// Draws exactly one `u64` per candidate, in index order.
pub(super) fn sampling_order<R: Rng + ?Sized>(weights: &[f64], rng: &mut R) -> Vec<usize> {
    let keys: Vec<f64> = weights.iter().map(|&w| sampling_key(w, rng)).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]).then(a.cmp(&b)));
    order
}
