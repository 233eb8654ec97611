//! The loop's state for the core's tests, on virtual time: peers enrolled, attested, beating
//! and with share keys, each in a region and under an operator of its own; sessions on them.
#![allow(clippy::unwrap_used)]

use super::state::{Loaded, State};
use crate::config::CoordinatorConfig;
use crate::db::{Holder, SessionRecord, session_writer_record};
use crate::intake::{DuplicateRules, Intake};
use protocols::entropy::CreditPolicy;
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId};
use protocols::share_box::BoxSecret;
use protocols::wire::{PowerState, StatusHeartbeat, WIRE_VERSION};

/// The time the fixtures start at (ms).
pub const NOW: u64 = 10_000_000;
/// An hour (ms).
pub const HOUR: u64 = 3_600_000;

/// Peer `i`'s id.
pub fn node(i: u8) -> NodeId {
    NodeKey::from_secret_bytes(&[i; 32]).node_id()
}

/// Peer `i`'s share key.
pub fn share_key(i: u8) -> BoxSecret {
    BoxSecret::from_uniform_bytes(&[i; 64])
}

/// The configuration of the fixtures: the defaults (attestations valid 120 s, heartbeats
/// 60 s, rotations every hour, the first holder audit 60 s after a commit).
pub fn config() -> CoordinatorConfig {
    CoordinatorConfig::new("/nonexistent".into(), Vec::new())
}

/// An empty pool.
pub fn intake() -> Intake {
    let rules = DuplicateRules {
        hold_ms: 0,
        min_events: 3,
    };
    Intake::with_rules([1; 32], CreditPolicy::new(1.0, 1 << 20).unwrap(), rules).unwrap()
}

/// A state with `peers` peers (1..=peers), all live at `NOW`, and `sessions` stored.
pub fn state(peers: u8, sessions: Vec<SessionRecord>) -> State {
    let mut state = State::new(
        &config(),
        Loaded {
            sessions,
            ..Loaded::default()
        },
        intake(),
    );
    for i in 1..=peers {
        let labels = (format!("region-{i}"), format!("operator-{i}"));
        state.peers.enrol(node(i), labels.0, labels.1);
        state.peers.get_mut(&node(i)).unwrap().share_key = Some(share_key(i).public());
        beat(&mut state, i, NOW);
    }
    state
}

/// Peer `i` attested and sent a heartbeat at `at`.
pub fn beat(state: &mut State, i: u8, at: u64) {
    let p = state.peers.get_mut(&node(i)).unwrap();
    p.attested_at_ms = Some(at);
    p.heartbeat_at_ms = Some(at);
    p.heartbeat = Some(StatusHeartbeat {
        v: WIRE_VERSION,
        seq: at,
        at_ms: at,
        power: PowerState::Mains,
        region: p.region.clone(),
        operator: p.operator.clone(),
        uptime_s: 7_200,
        free_store_slots: 100,
        shares_held: 0,
        listen_addrs: Vec::new(),
        sources: Vec::new(),
        membership: None,
    });
}

/// Session `tag` boxed to `holders` (peer numbers), threshold 2, created at `NOW`, expiring
/// ten hours later.
pub fn session(tag: u8, holders: &[u8]) -> SessionRecord {
    let mut s = session_writer_record(u64::from(tag));
    s.session = SessionId([tag; 16]);
    s.policy.n = holders.len() as u8;
    s.holders = holders
        .iter()
        .zip(1u8..)
        .map(|(&i, index)| Holder {
            node: node(i),
            index,
        })
        .collect();
    s.epoch = 0;
    s.created_at_ms = NOW;
    s.rotated_at_ms = 0;
    s.expires_at_ms = NOW + 10 * HOUR;
    s.sealed_under = None;
    s.boxed = true;
    s
}
