//! Validation of a stored or proposed quorum against the table and the caps.

use std::collections::{HashMap, HashSet};

use super::{Caps, PeerRecord, canonical_label};
use crate::ids::NodeId;

/// Why a holder list is not a valid quorum.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumViolation {
    /// `(n, k)` outside `2 ≤ k ≤ n ≤ 255`.
    #[error("invalid quorum parameters n={n}, k={k}: need 2 <= k <= n <= 255")]
    InvalidParameters {
        /// Holders expected.
        n: usize,
        /// Threshold.
        k: usize,
    },
    /// Not exactly `n` holders.
    #[error("quorum has {actual} holders, expected {expected}")]
    WrongSize {
        /// n.
        expected: usize,
        /// Holders given.
        actual: usize,
    },
    /// A node listed twice.
    #[error("holder {node} is listed twice")]
    DuplicateHolder {
        /// The repeated node.
        node: NodeId,
    },
    /// A holder with no record in the table.
    #[error("holder {node} is not in the peer table")]
    UnknownHolder {
        /// The unknown node.
        node: NodeId,
    },
    /// More than `n − k` holders in one region.
    #[error("{holders} holders in region {region:?}, at most {cap} allowed")]
    RegionOverCap {
        /// Canonical region label.
        region: String,
        /// Holders in it.
        holders: usize,
        /// n − k.
        cap: usize,
    },
    /// More than `k − 1` holders under one operator.
    #[error("{holders} holders under operator {operator:?}, at most {cap} allowed")]
    OperatorOverCap {
        /// Canonical operator label.
        operator: String,
        /// Holders under it.
        holders: usize,
        /// k − 1.
        cap: usize,
    },
}

/// Checks that `holders` is a structurally valid k-of-n quorum over `table`: valid
/// `(n, k)`, exactly `n` distinct holders, each in the table (first record of a node
/// counts), at most `n − k` per region and `k − 1` per operator (labels compared
/// canonically). Eligibility (heartbeat, battery…) is *not* checked: it changes over
/// time while a stored quorum stays structurally valid; use [`super::exclusion`] for it.
///
/// Holders are examined in order; the first problem found is reported.
pub fn check_quorum(
    table: &[PeerRecord],
    holders: &[NodeId],
    n: usize,
    k: usize,
) -> Result<(), QuorumViolation> {
    let caps = Caps::new(n, k).ok_or(QuorumViolation::InvalidParameters { n, k })?;
    if holders.len() != n {
        return Err(QuorumViolation::WrongSize {
            expected: n,
            actual: holders.len(),
        });
    }
    let mut records: HashMap<NodeId, &PeerRecord> = HashMap::with_capacity(table.len());
    for peer in table {
        records.entry(peer.node).or_insert(peer);
    }
    let mut seen = HashSet::with_capacity(n);
    let mut per_region: HashMap<_, usize> = HashMap::new();
    let mut per_operator: HashMap<_, usize> = HashMap::new();
    for &node in holders {
        if !seen.insert(node) {
            return Err(QuorumViolation::DuplicateHolder { node });
        }
        let peer = records
            .get(&node)
            .ok_or(QuorumViolation::UnknownHolder { node })?;
        let region = canonical_label(&peer.region);
        let in_region = per_region.entry(region.clone()).or_insert(0);
        *in_region += 1;
        if *in_region > caps.per_region {
            return Err(QuorumViolation::RegionOverCap {
                region: region.into_owned(),
                holders: *in_region,
                cap: caps.per_region,
            });
        }
        let operator = canonical_label(&peer.operator);
        let under_operator = per_operator.entry(operator.clone()).or_insert(0);
        *under_operator += 1;
        if *under_operator > caps.per_operator {
            return Err(QuorumViolation::OperatorOverCap {
                operator: operator.into_owned(),
                holders: *under_operator,
                cap: caps.per_operator,
            });
        }
    }
    Ok(())
}
