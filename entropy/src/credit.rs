//! Per-peer entropy crediting: claimed min-entropy, a conservative factor and a per-round cap.

use super::ContributorId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a [`CreditPolicy`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum CreditError {
    /// The conservative factor must be finite and in (0, 1].
    #[error("conservative factor {0} is not in (0, 1]")]
    Factor(f64),
}

/// How much of a claim is credited.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CreditPolicyRepr", into = "CreditPolicyRepr")]
pub struct CreditPolicy {
    conservative_factor: f64,
    per_peer_cap_bits: u64,
}

#[derive(Serialize, Deserialize)]
struct CreditPolicyRepr {
    conservative_factor: f64,
    per_peer_cap_bits: u64,
}

impl TryFrom<CreditPolicyRepr> for CreditPolicy {
    type Error = CreditError;
    fn try_from(r: CreditPolicyRepr) -> Result<Self, CreditError> {
        CreditPolicy::new(r.conservative_factor, r.per_peer_cap_bits)
    }
}

impl From<CreditPolicy> for CreditPolicyRepr {
    fn from(p: CreditPolicy) -> Self {
        CreditPolicyRepr {
            conservative_factor: p.conservative_factor,
            per_peer_cap_bits: p.per_peer_cap_bits,
        }
    }
}

impl Default for CreditPolicy {
    /// Half of the claim, at most 1024 bits per peer per round.
    fn default() -> Self {
        CreditPolicy {
            conservative_factor: 0.5,
            per_peer_cap_bits: 1024,
        }
    }
}

impl CreditPolicy {
    /// `conservative_factor` in (0, 1]; `per_peer_cap_bits` per accumulation round.
    pub fn new(conservative_factor: f64, per_peer_cap_bits: u64) -> Result<Self, CreditError> {
        let f = conservative_factor;
        if !f.is_finite() || f <= 0.0 || f > 1.0 {
            return Err(CreditError::Factor(f));
        }
        Ok(CreditPolicy {
            conservative_factor: f,
            per_peer_cap_bits,
        })
    }

    /// Fraction of the claim that may be credited.
    pub fn conservative_factor(&self) -> f64 {
        self.conservative_factor
    }

    /// Maximum bits credited to one peer per round.
    pub fn per_peer_cap_bits(&self) -> u64 {
        self.per_peer_cap_bits
    }
}

/// One source's part of a contribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceClaim {
    /// Debiased bits contributed by this source.
    pub debiased_bits: u64,
    /// Peer-claimed min-entropy per debiased bit (clamped to [0, 1]; NaN counts as 0).
    pub claimed_min_entropy_per_bit: f64,
    /// Our own estimate, if any; the smaller of claim and estimate is used.
    pub measured_min_entropy_per_bit: Option<f64>,
}

fn per_bit(h: f64) -> f64 {
    if h.is_nan() { 0.0 } else { h.clamp(0.0, 1.0) }
}

impl SourceClaim {
    /// Bits this source claims: `floor(debiased_bits * min(claim, measurement))`,
    /// never more than `debiased_bits`.
    pub fn claimed_bits(&self) -> u64 {
        let mut h = per_bit(self.claimed_min_entropy_per_bit);
        if let Some(m) = self.measured_min_entropy_per_bit {
            h = h.min(per_bit(m));
        }
        // f64 → u64 `as` saturates; the min keeps the bound exact.
        ((self.debiased_bits as f64 * h).floor() as u64).min(self.debiased_bits)
    }
}

/// Total claimed bits of a contribution (saturating sum over sources).
pub fn claimed_bits(claims: &[SourceClaim]) -> u64 {
    claims
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.claimed_bits()))
}

/// Bits to credit for a contribution when the peer has already been credited
/// `already_credited` bits this round: `min(floor(claimed * factor), cap - already)`.
pub fn credit_for(claims: &[SourceClaim], already_credited: u64, policy: &CreditPolicy) -> u64 {
    let claimed = claimed_bits(claims);
    let conservative =
        ((claimed as f64 * per_bit(policy.conservative_factor)).floor() as u64).min(claimed);
    let room = policy.per_peer_cap_bits.saturating_sub(already_credited);
    conservative.min(room)
}

/// Tracks per-peer credit within the current accumulation round.
#[derive(Debug, Clone)]
pub struct PeerCreditLedger {
    policy: CreditPolicy,
    max_peers: usize,
    used: BTreeMap<ContributorId, u64>,
}

impl PeerCreditLedger {
    /// A ledger remembering at most `max_peers` peers per round; further new
    /// peers are credited nothing until the next round.
    pub fn new(policy: CreditPolicy, max_peers: usize) -> Self {
        PeerCreditLedger {
            policy,
            max_peers,
            used: BTreeMap::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &CreditPolicy {
        &self.policy
    }

    /// Credits a contribution from `peer` and returns the bits credited.
    pub fn credit(&mut self, peer: &ContributorId, claims: &[SourceClaim]) -> u64 {
        let already = self.used(peer);
        if already == 0 && !self.used.contains_key(peer) && self.used.len() >= self.max_peers {
            return 0;
        }
        let bits = credit_for(claims, already, &self.policy);
        if bits > 0 {
            self.used.insert(*peer, already.saturating_add(bits));
        }
        bits
    }

    /// Bits credited to `peer` this round.
    pub fn used(&self, peer: &ContributorId) -> u64 {
        self.used.get(peer).copied().unwrap_or(0)
    }

    /// Starts a new accumulation round (all peers back to zero).
    pub fn new_round(&mut self) {
        self.used.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn claim(bits: u64, h: f64) -> SourceClaim {
        SourceClaim {
            debiased_bits: bits,
            claimed_min_entropy_per_bit: h,
            measured_min_entropy_per_bit: None,
        }
    }

    #[test]
    fn conservative_factor_scales_the_claim_down() {
        let p = CreditPolicy::new(0.5, 1_000_000).unwrap();
        assert_eq!(credit_for(&[claim(20_000, 0.9)], 0, &p), 9_000);
    }

    #[test]
    fn credit_never_exceeds_the_remaining_per_peer_cap() {
        let p = CreditPolicy::new(1.0, 1_000).unwrap();
        assert_eq!(credit_for(&[claim(20_000, 1.0)], 0, &p), 1_000);
        assert_eq!(credit_for(&[claim(20_000, 1.0)], 900, &p), 100);
        assert_eq!(credit_for(&[claim(20_000, 1.0)], 5_000, &p), 0);
    }

    #[test]
    fn claims_above_one_bit_per_bit_are_clamped() {
        assert_eq!(claim(100, 3.0).claimed_bits(), 100);
        assert_eq!(claim(100, -1.0).claimed_bits(), 0);
        assert_eq!(claim(100, f64::NAN).claimed_bits(), 0);
        assert_eq!(claim(100, f64::INFINITY).claimed_bits(), 100);
    }

    #[test]
    fn our_measurement_overrides_a_more_optimistic_claim() {
        let mut c = claim(1_000, 1.0);
        c.measured_min_entropy_per_bit = Some(0.25);
        assert_eq!(c.claimed_bits(), 250);
        c.measured_min_entropy_per_bit = Some(2.0);
        assert_eq!(c.claimed_bits(), 1_000);
    }

    #[test]
    fn multiple_sources_are_summed() {
        let p = CreditPolicy::new(1.0, u64::MAX).unwrap();
        let claims = [claim(100, 0.5), claim(300, 1.0)];
        assert_eq!(claimed_bits(&claims), 350);
        assert_eq!(credit_for(&claims, 0, &p), 350);
        assert_eq!(
            claimed_bits(&[claim(u64::MAX, 1.0), claim(u64::MAX, 1.0)]),
            u64::MAX
        );
    }

    #[test]
    fn policy_rejects_factors_outside_zero_to_one() {
        assert!(CreditPolicy::new(0.0, 1).is_err());
        assert!(CreditPolicy::new(1.01, 1).is_err());
        assert!(CreditPolicy::new(f64::NAN, 1).is_err());
        assert!(CreditPolicy::new(1.0, 1).is_ok());
        let bad = CreditPolicyRepr {
            conservative_factor: 7.0,
            per_peer_cap_bits: 1,
        };
        assert!(CreditPolicy::try_from(bad).is_err());
    }

    #[test]
    fn ledger_caps_a_peer_across_contributions_until_the_next_round() {
        let mut l = PeerCreditLedger::new(CreditPolicy::new(1.0, 1_000).unwrap(), 16);
        let peer = [1u8; 32];
        assert_eq!(l.credit(&peer, &[claim(600, 1.0)]), 600);
        assert_eq!(l.credit(&peer, &[claim(600, 1.0)]), 400);
        assert_eq!(l.credit(&peer, &[claim(600, 1.0)]), 0);
        assert_eq!(l.used(&peer), 1_000);
        // Another peer has its own cap.
        assert_eq!(l.credit(&[2u8; 32], &[claim(600, 1.0)]), 600);
        l.new_round();
        assert_eq!(l.used(&peer), 0);
        assert_eq!(l.credit(&peer, &[claim(600, 1.0)]), 600);
    }

    #[test]
    fn ledger_credits_nothing_to_new_peers_once_full() {
        let mut l = PeerCreditLedger::new(CreditPolicy::new(1.0, 1_000).unwrap(), 1);
        assert_eq!(l.credit(&[1u8; 32], &[claim(10, 1.0)]), 10);
        assert_eq!(l.credit(&[2u8; 32], &[claim(10, 1.0)]), 0);
        assert_eq!(l.credit(&[1u8; 32], &[claim(10, 1.0)]), 10);
    }

    proptest! {
        #[test]
        fn credit_is_at_most_claimed_times_factor_and_at_most_the_cap(
            claims in proptest::collection::vec((any::<u64>(), -1.0f64..2.0, proptest::option::of(-1.0f64..2.0)), 0..8),
            factor in 0.001f64..=1.0,
            cap in any::<u64>(),
            already in any::<u64>(),
        ) {
            let claims: Vec<SourceClaim> = claims
                .into_iter()
                .map(|(b, h, m)| SourceClaim {
                    debiased_bits: b >> 8,
                    claimed_min_entropy_per_bit: h,
                    measured_min_entropy_per_bit: m,
                })
                .collect();
            let p = CreditPolicy::new(factor, cap).unwrap();
            let claimed = claimed_bits(&claims);
            let credit = credit_for(&claims, already, &p);
            prop_assert!(credit <= claimed);
            prop_assert!(credit <= cap.saturating_sub(already));
            prop_assert!(credit as f64 <= claimed as f64 * factor + 1.0);
            let raw: u64 = claims.iter().map(|c| c.debiased_bits).fold(0, u64::saturating_add);
            prop_assert!(claimed <= raw);
        }

        #[test]
        fn a_peer_is_never_credited_more_than_the_cap_in_one_round(
            sizes in proptest::collection::vec(0u64..5_000, 0..50),
            cap in 0u64..20_000,
        ) {
            let mut l = PeerCreditLedger::new(CreditPolicy::new(0.75, cap).unwrap(), 4);
            let peer = [9u8; 32];
            let total: u64 = sizes.iter().map(|&s| l.credit(&peer, &[claim(s, 1.0)])).sum();
            prop_assert!(total <= cap);
            prop_assert_eq!(total, l.used(&peer));
        }
    }
}
