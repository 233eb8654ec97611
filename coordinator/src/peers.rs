//! The coordinator's view of every peer: enrolment, heartbeats, attestation, quarantine, contribution sequence.

use libp2p::Multiaddr;
use protocols::ids::NodeId;
use protocols::quorum::{PeerRecord, Power};
use protocols::share_box::BoxPublic;
use protocols::wire::{SourceHealth, StatusHeartbeat};
use std::collections::{BTreeMap, HashMap};

/// Why a peer is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quarantine {
    /// Its evidence was wrong (reason text from the check).
    BadEvidence(String),
    /// It did not answer a challenge in time.
    NoAnswer,
    /// It sent entropy that cloned or replayed another stream.
    ClonedEntropy,
    /// It answered the coordinator's own fetch with a share that fails its seal or the
    /// session's commitments (text: why).
    BadShare(String),
    /// It answered the coordinator's own fetch "not found" for a share it acknowledged storing.
    WithheldShare,
}

impl Quarantine {
    /// Quarantines proven by what the peer did (cloned entropy, a bad or withheld share): a
    /// good attestation does not lift them, and a missed challenge does not replace them.
    pub fn is_sticky(&self) -> bool {
        matches!(
            self,
            Quarantine::ClonedEntropy | Quarantine::BadShare(_) | Quarantine::WithheldShare
        )
    }
}

/// Everything known about one enrolled peer.
#[derive(Debug, Clone)]
pub struct PeerState {
    /// Enrolled region.
    pub region: String,
    /// Enrolled operator.
    pub operator: String,
    /// Last heartbeat, if any.
    pub heartbeat: Option<StatusHeartbeat>,
    /// When the last heartbeat arrived (coordinator clock).
    pub heartbeat_at_ms: Option<u64>,
    /// Last good attestation (coordinator clock).
    pub attested_at_ms: Option<u64>,
    /// Current quarantine, if any.
    pub quarantine: Option<Quarantine>,
    /// Highest contribution sequence accepted.
    pub last_seq: Option<u64>,
    /// Challenges answered and sent (for reachability).
    pub answered: (u32, u32),
    /// Bits credited from this peer, ever.
    pub credited_bits: u64,
    /// Contributions from this peer that were not credited, by reason.
    pub refusals: BTreeMap<&'static str, u64>,
    /// The share key it stated in a valid attestation (recorded with its enrolment); a peer
    /// without one is never chosen to hold a share.
    pub share_key: Option<BoxPublic>,
}

impl PeerState {
    /// A freshly enrolled peer.
    pub fn new(region: String, operator: String) -> Self {
        Self {
            region,
            operator,
            heartbeat: None,
            heartbeat_at_ms: None,
            attested_at_ms: None,
            quarantine: None,
            last_seq: None,
            answered: (0, 0),
            credited_bits: 0,
            refusals: BTreeMap::new(),
            share_key: None,
        }
    }

    /// Counts a contribution of this peer that was not credited, and why.
    pub fn note_refusal(&mut self, reason: &'static str) {
        *self.refusals.entry(reason).or_insert(0) += 1;
    }

    /// Attested recently and not quarantined.
    pub fn trusted(&self, now_ms: u64, validity_ms: u64) -> bool {
        self.quarantine.is_none()
            && protocols::attestation::attestation_is_current(
                self.attested_at_ms,
                now_ms,
                validity_ms,
            )
    }

    /// Addresses from the last heartbeat.
    pub fn addrs(&self) -> Vec<Multiaddr> {
        self.heartbeat
            .as_ref()
            .map(|h| {
                h.listen_addrs
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Source health from the last heartbeat.
    pub fn sources(&self) -> &[SourceHealth] {
        self.heartbeat
            .as_ref()
            .map(|h| h.sources.as_slice())
            .unwrap_or_default()
    }
}

/// All enrolled peers.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<NodeId, PeerState>,
}

impl PeerTable {
    /// Adds or relabels an enrolled peer, keeping what is known about it.
    pub fn enrol(&mut self, node: NodeId, region: String, operator: String) {
        let entry = self
            .peers
            .entry(node)
            .or_insert_with(|| PeerState::new(region.clone(), operator.clone()));
        entry.region = region;
        entry.operator = operator;
    }

    /// Trusted peers at `now_ms` that stated no share key yet: never chosen to hold a share
    /// (devices still on a build from before share keys).
    pub fn trusted_without_share_key(&self, now_ms: u64, validity_ms: u64) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.share_key.is_none() && p.trusted(now_ms, validity_ms))
            .map(|(n, _)| *n)
            .collect()
    }

    /// The share key recorded for `node`, if any.
    pub fn share_key(&self, node: &NodeId) -> Option<BoxPublic> {
        self.peers.get(node).and_then(|p| p.share_key)
    }

    /// Removes a peer.
    pub fn remove(&mut self, node: &NodeId) {
        self.peers.remove(node);
    }

    /// The peer's state, when enrolled.
    pub fn get(&self, node: &NodeId) -> Option<&PeerState> {
        self.peers.get(node)
    }

    /// Mutable state, when enrolled.
    pub fn get_mut(&mut self, node: &NodeId) -> Option<&mut PeerState> {
        self.peers.get_mut(node)
    }

    /// Every enrolled peer.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &PeerState)> {
        self.peers.iter()
    }

    /// Enrolled peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// No enrolled peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Each node with the addresses its last heartbeat announced (empty when unknown).
    pub fn addrs_of(&self, nodes: impl Iterator<Item = NodeId>) -> Vec<(NodeId, Vec<Multiaddr>)> {
        nodes
            .map(|n| (n, self.peers.get(&n).map(|p| p.addrs()).unwrap_or_default()))
            .collect()
    }

    /// The quorum table: only trusted peers count as attested; `round_trips` are the node's last
    /// ping round trips by PeerId.
    pub fn quorum_table(
        &self,
        now_ms: u64,
        validity_ms: u64,
        shares_held: &BTreeMap<NodeId, u32>,
        round_trips: &HashMap<libp2p::PeerId, std::time::Duration>,
    ) -> Vec<PeerRecord> {
        let rtt_ms: HashMap<NodeId, u32> = round_trips
            .iter()
            .filter_map(|(remote, rtt)| {
                let node = peer::identity::node_id(remote)?;
                Some((node, u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX)))
            })
            .collect();
        self.peers
            .iter()
            .map(|(node, p)| {
                let beat = p.heartbeat.as_ref();
                let (answered, sent) = p.answered;
                PeerRecord {
                    node: *node,
                    region: p.region.clone(),
                    operator: p.operator.clone(),
                    attested: p.trusted(now_ms, validity_ms),
                    last_heartbeat_ms: p.heartbeat_at_ms.unwrap_or(0),
                    power: beat.map(|b| b.power).unwrap_or(Power::Mains),
                    free_store_slots: beat.map(|b| b.free_store_slots).unwrap_or(0),
                    uptime_ratio: beat
                        .map(|b| (b.uptime_s as f32 / 3600.0).min(1.0))
                        .unwrap_or(0.0)
                        .max(0.05),
                    reachability: if sent == 0 {
                        0.5
                    } else {
                        answered as f32 / sent as f32
                    },
                    rtt_ms: rtt_ms.get(node).copied(),
                    shares_held: shares_held.get(node).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}
