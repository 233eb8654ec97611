//! Quorum selection: which n peers hold the shares of a k-of-n sharing.
//!
//! Selection is a pure function of the peer table, `(n, k)`, the policy, `now_ms`
//! and the caller's RNG:
//!
//! 1. **Eligibility** ([`exclusion`], [`eligible`]): attested, fresh heartbeat, battery
//!    at or above the floor, a free store slot, and not in the policy's exclusion set.
//! 2. **Weights** ([`score`]): availability, latency, power and load.
//! 3. **Order**: Efraimidis–Spirakis keys `u^(1/w)` drawn from the RNG (one draw per
//!    eligible peer), highest first — weighted sampling without replacement.
//! 4. **Constraints** ([`Caps`]): at most `n − k` holders per region (a region outage
//!    leaves ≥ k shares) and at most `k − 1` per operator (no operator can reconstruct).
//!
//! The quorum returned is the *first valid quorum in key order*: candidates are taken
//! by decreasing key, and one is accepted iff the holders accepted so far plus it can
//! still be completed to `n` holders within the caps. A plain greedy pass computes
//! exactly that whenever it succeeds; when it gets stuck, a max-flow over
//! (region, operator) groups decides each step. So selection succeeds whenever
//! *any* valid quorum exists among the eligible peers.

mod check;
mod flow;
#[cfg(test)]
mod proptests;
mod score;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

pub use check::{QuorumViolation, check_quorum};
pub use score::{ScoreWeights, score};

/// Largest number of shares (share indices are 1..=255).
pub const MAX_SHARES: usize = 255;

/// Power source of a device (the heartbeat's type).
pub use crate::wire::messages::PowerState as Power;

/// What the coordinator knows about one peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The peer's identity.
    pub node: NodeId,
    /// Failure domain for outages (compared trimmed and ASCII case-insensitively).
    pub region: String,
    /// Administrative owner (compared trimmed and ASCII case-insensitively).
    pub operator: String,
    /// Whether the peer's device attestation has been verified.
    pub attested: bool,
    /// Unix time of the last heartbeat, in milliseconds.
    pub last_heartbeat_ms: u64,
    /// Power source.
    pub power: Power,
    /// Share slots still free in the peer's store.
    pub free_store_slots: u32,
    /// Fraction of the observation window the peer was up, 0..=1.
    pub uptime_ratio: f32,
    /// Fraction of recent probes answered, 0..=1.
    pub reachability: f32,
    /// Last measured round-trip time, if any.
    pub rtt_ms: Option<u32>,
    /// Shares the peer already holds.
    pub shares_held: u32,
}

/// Eligibility thresholds, score weights and exclusions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuorumPolicy {
    /// A heartbeat older than this (strictly) makes a peer ineligible. Default 60 s.
    pub heartbeat_max_age_ms: u64,
    /// A heartbeat further than this in the future makes a peer ineligible. Default 5 s.
    pub max_clock_skew_ms: u64,
    /// A battery peer below this charge is ineligible. Default 20 %.
    pub battery_floor_percent: u8,
    /// Score weights.
    pub weights: ScoreWeights,
    /// Peers never picked: current holders to rotate away from, quarantined nodes…
    pub excluded: BTreeSet<NodeId>,
}

impl Default for QuorumPolicy {
    fn default() -> Self {
        Self {
            heartbeat_max_age_ms: 60_000,
            max_clock_skew_ms: 5_000,
            battery_floor_percent: 20,
            weights: ScoreWeights::default(),
            excluded: BTreeSet::new(),
        }
    }
}

impl QuorumPolicy {
    /// This policy with `nodes` added to the exclusion set.
    pub fn excluding(mut self, nodes: impl IntoIterator<Item = NodeId>) -> Self {
        self.excluded.extend(nodes);
        self
    }
}

/// Why a peer is not eligible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exclusion {
    /// Attestation not verified.
    NotAttested,
    /// Last heartbeat is `age_ms` old, beyond the policy's maximum age.
    StaleHeartbeat {
        /// Age of the heartbeat.
        age_ms: u64,
    },
    /// Last heartbeat is `ahead_ms` in the future, beyond the allowed clock skew.
    FutureHeartbeat {
        /// How far ahead of `now` the heartbeat is.
        ahead_ms: u64,
    },
    /// Battery charge below the policy floor.
    BatteryBelowFloor {
        /// Charge reported.
        percent: u8,
        /// Floor required.
        floor: u8,
    },
    /// No free share slot.
    NoFreeStore,
    /// In the policy's exclusion set.
    Excluded,
}

/// Why `peer` is ineligible at `now_ms` under `policy`, or `None` if it is eligible.
/// Checks run in the order of [`Exclusion`]'s variants; the first failing one is reported.
pub fn exclusion(peer: &PeerRecord, policy: &QuorumPolicy, now_ms: u64) -> Option<Exclusion> {
    if !peer.attested {
        return Some(Exclusion::NotAttested);
    }
    let last = peer.last_heartbeat_ms;
    if last <= now_ms {
        let age_ms = now_ms - last;
        if age_ms > policy.heartbeat_max_age_ms {
            return Some(Exclusion::StaleHeartbeat { age_ms });
        }
    } else {
        let ahead_ms = last - now_ms;
        if ahead_ms > policy.max_clock_skew_ms {
            return Some(Exclusion::FutureHeartbeat { ahead_ms });
        }
    }
    if let Power::Battery { percent } = peer.power
        && percent < policy.battery_floor_percent
    {
        return Some(Exclusion::BatteryBelowFloor {
            percent,
            floor: policy.battery_floor_percent,
        });
    }
    if peer.free_store_slots == 0 {
        return Some(Exclusion::NoFreeStore);
    }
    if policy.excluded.contains(&peer.node) {
        return Some(Exclusion::Excluded);
    }
    None
}

/// The eligible peers of `table`, in table order. If a node appears more than once,
/// only its first record counts (as in [`check_quorum`]); later ones are ignored.
pub fn eligible<'a>(
    table: &'a [PeerRecord],
    policy: &QuorumPolicy,
    now_ms: u64,
) -> Vec<&'a PeerRecord> {
    let mut seen = HashSet::with_capacity(table.len());
    table
        .iter()
        .filter(|p| seen.insert(p.node))
        .filter(|p| exclusion(p, policy, now_ms).is_none())
        .collect()
}

/// Per-group holder limits derived from `(n, k)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// At most `n − k` holders per region.
    pub per_region: usize,
    /// At most `k − 1` holders per operator.
    pub per_operator: usize,
}

impl Caps {
    /// The caps for a k-of-n sharing, or `None` unless `2 ≤ k ≤ n ≤ 255`.
    /// (With `k = n` the region cap is 0, so no quorum can ever satisfy it.)
    pub fn new(n: usize, k: usize) -> Option<Self> {
        (2 <= k && k <= n && n <= MAX_SHARES).then(|| Self {
            per_region: n - k,
            per_operator: k - 1,
        })
    }
}

/// The chosen share holders, in selection order (holder `i` gets share index `i + 1`
/// if the caller wishes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// Distinct nodes, `n` of them.
    pub holders: Vec<NodeId>,
}

/// Why no quorum was selected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// `(n, k)` outside `2 ≤ k ≤ n ≤ 255`.
    #[error("invalid quorum parameters n={n}, k={k}: need 2 <= k <= n <= 255")]
    InvalidParameters {
        /// Requested holders.
        n: usize,
        /// Requested threshold.
        k: usize,
    },
    /// Fewer eligible peers than holders needed.
    #[error("only {eligible} eligible peers, {needed} holders needed")]
    NotEnoughEligible {
        /// Eligible peers.
        eligible: usize,
        /// Holders needed (n).
        needed: usize,
    },
    /// Enough eligible peers, but no `n` of them fit the region and operator caps.
    #[error(
        "no valid quorum: {eligible} eligible peers in {regions} regions under {operators} \
         operators, but at most {largest} of the {needed} holders fit the caps"
    )]
    ConstraintsUnsatisfiable {
        /// Eligible peers.
        eligible: usize,
        /// Distinct regions among them.
        regions: usize,
        /// Distinct operators among them.
        operators: usize,
        /// Size of the largest holder set within the caps.
        largest: usize,
        /// Holders needed (n).
        needed: usize,
    },
}

/// A region or operator label in canonical form: trimmed, ASCII lower-case.
/// Merging labels can only make the caps stricter, never looser.
pub(crate) fn canonical_label(label: &str) -> Cow<'_, str> {
    let trimmed = label.trim();
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Interns canonical labels as dense indices.
#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<Cow<'a, str>, u32>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, label: &'a str) -> u32 {
        let key = canonical_label(label);
        let next = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        *self.ids.entry(key).or_insert(next)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Eligible peers reduced to what the constraints see: dense region and operator ids.
#[derive(Clone, Debug, Default)]
pub(crate) struct Groups {
    pub region: Vec<u32>,
    pub operator: Vec<u32>,
    pub regions: usize,
    pub operators: usize,
}

impl Groups {
    fn of(peers: &[&PeerRecord]) -> Self {
        let (mut regions, mut operators) = (Interner::default(), Interner::default());
        let region = peers.iter().map(|p| regions.id(&p.region)).collect();
        let operator = peers.iter().map(|p| operators.id(&p.operator)).collect();
        Self {
            region,
            operator,
            regions: regions.len(),
            operators: operators.len(),
        }
    }
}

/// Plain greedy pass over `order`: take every candidate that keeps the caps. Returns
/// the first `n` taken, or `None` if it runs out. When it succeeds its answer equals
/// [`flow::first_valid_in_order`]'s: every candidate it took was completable (the
/// result completes it) and every one it skipped already broke a cap.
fn greedy(groups: &Groups, order: &[usize], caps: Caps, n: usize) -> Option<Vec<usize>> {
    let mut per_region = vec![0usize; groups.regions];
    let mut per_operator = vec![0usize; groups.operators];
    let mut picked = Vec::with_capacity(n);
    for &i in order {
        let (r, o) = (groups.region[i] as usize, groups.operator[i] as usize);
        if per_region[r] < caps.per_region && per_operator[o] < caps.per_operator {
            per_region[r] += 1;
            per_operator[o] += 1;
            picked.push(i);
            if picked.len() == n {
                return Some(picked);
            }
        }
    }
    None
}

/// Candidate indices (into `groups`) of the first valid quorum in `order`, or the size
/// of the largest valid holder set if there is none.
fn pick(groups: &Groups, order: &[usize], caps: Caps, n: usize) -> Result<Vec<usize>, usize> {
    match greedy(groups, order, caps, n) {
        Some(picked) => Ok(picked),
        None => flow::first_valid_in_order(groups, order, caps, n),
    }
}

/// Selects `n` holders for a k-of-n sharing from `table` (see the module docs).
///
/// Draws one `u64` from `rng` per eligible peer, in table order, once the parameter and
/// eligibility checks have passed (none before). Never panics; errors are, in order of
/// precedence, [`QuorumError::InvalidParameters`], [`QuorumError::NotEnoughEligible`]
/// and [`QuorumError::ConstraintsUnsatisfiable`].
pub fn select_quorum<R: Rng + ?Sized>(
    table: &[PeerRecord],
    n: usize,
    k: usize,
    policy: &QuorumPolicy,
    now_ms: u64,
    rng: &mut R,
) -> Result<Quorum, QuorumError> {
    let caps = Caps::new(n, k).ok_or(QuorumError::InvalidParameters { n, k })?;
    let peers = eligible(table, policy, now_ms);
    if peers.len() < n {
        return Err(QuorumError::NotEnoughEligible {
            eligible: peers.len(),
            needed: n,
        });
    }
    let groups = Groups::of(&peers);
    let weights: Vec<f64> = peers.iter().map(|p| score(p, &policy.weights)).collect();
    let order = score::sampling_order(&weights, rng);
    // Spread holders evenly over the regions when the peers allow it, so a region outage leaves
    // more than k of them (room for churn until repair); otherwise the DESIGN caps alone.
    let spread = Caps {
        per_region: caps.per_region.min(n.div_ceil(groups.regions.max(1))),
        ..caps
    };
    let picked = match pick(&groups, &order, spread, n) {
        Ok(picked) => Ok(picked),
        Err(_) if spread != caps => pick(&groups, &order, caps, n),
        Err(largest) => Err(largest),
    };
    match picked {
        Ok(picked) => Ok(Quorum {
            holders: picked.iter().map(|&i| peers[i].node).collect(),
        }),
        Err(largest) => Err(QuorumError::ConstraintsUnsatisfiable {
            eligible: peers.len(),
            regions: groups.regions,
            operators: groups.operators,
            largest,
            needed: n,
        }),
    }
}
