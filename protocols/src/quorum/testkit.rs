//! Test helpers: peer records, a fixed clock and seeded RNGs.

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::{PeerRecord, Power};
use crate::ids::NodeId;

/// The fixed "now" of every test.
pub const NOW: u64 = 1_700_000_000_000;

/// A deterministic RNG.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A node id derived from a small number.
pub fn node(i: u32) -> NodeId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    NodeId(bytes)
}

/// A healthy, eligible peer.
pub fn peer(i: u32, region: &str, operator: &str) -> PeerRecord {
    PeerRecord {
        node: node(i),
        region: region.to_owned(),
        operator: operator.to_owned(),
        attested: true,
        last_heartbeat_ms: NOW - 1_000,
        power: Power::Mains,
        free_store_slots: 10,
        uptime_ratio: 0.9,
        reachability: 0.9,
        rtt_ms: Some(50),
        shares_held: 3,
    }
}

/// `count` healthy peers, peer `i` in region `r{i % regions}` under operator `o{i % operators}`.
pub fn spread(count: u32, regions: u32, operators: u32) -> Vec<PeerRecord> {
    (0..count)
        .map(|i| {
            peer(
                i,
                &format!("r{}", i % regions.max(1)),
                &format!("o{}", i % operators.max(1)),
            )
        })
        .collect()
}
