//! Gossip admission on real nodes over loopback TCP (docs/protocol/gossip-admission.md): a
//! device agent forwards an enrolled author's contributions and refuses a stranger's — no
//! certificate, a forged one, an expired one, another node's — and the stranger's gossipsub
//! score at that device falls below zero, past the graylist threshold if it keeps on.
//!
//! Layout: authors (plain nodes) → device D (a real embedded agent, pinned to a coordinator key
//! the test holds; no coordinator runs, so D itself holds no certificate and publishes nothing)
//! → observer O (a plain node). Everything O receives is what D forwarded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libp2p::{Multiaddr, PeerId};
use peer::agent::embedded::{self, EmbeddedAgent, EmbeddedConfig};
use peer::node::{self, CONTRIBUTIONS_TOPIC, NodeConfig, NodeEvent, NodeHandle};
use protocols::identity::NodeKey;
use protocols::membership::{VALIDITY_MS, issue};
use protocols::wire::{Contribution, PowerState, SignedEnvelope, WIRE_VERSION};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Bound on each wait (generous: a busy machine takes milliseconds).
const DEADLINE: Duration = Duration::from_secs(60);
/// gossipsub's graylist threshold in `peer::node` (below it a peer's RPCs are ignored).
const GRAYLIST: f64 = -80.0;

fn now_ms() -> u64 {
    peer::agent::now_ms()
}

fn key(seed: u8) -> NodeKey {
    NodeKey::from_secret_bytes(&[seed; 32])
}

/// A node on loopback TCP without Kademlia (so nobody finds anybody but whom it dials).
fn tcp() -> NodeConfig {
    let mut c = NodeConfig::network(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    c.kademlia = false;
    c
}

/// The forwarding device, pinned to `coordinator` (which does not run: its address refuses).
async fn device(coordinator: &NodeKey, dir: &std::path::Path) -> (EmbeddedAgent, Multiaddr) {
    let coordinator_id = peer::identity::peer_id(&coordinator.node_id()).unwrap();
    let store = peer::store::ShareStore::open(&dir.join("store.redb"), 16).unwrap();
    let agent = embedded::start(EmbeddedConfig {
        key: key(10),
        share_key: protocols::share_box::BoxSecret::from_uniform_bytes(&[7; 64]),
        coordinator: format!("/ip4/127.0.0.1/tcp/1/p2p/{coordinator_id}")
            .parse()
            .unwrap(),
        region: "eu".into(),
        operator: "op".into(),
        power: PowerState::Mains,
        node: tcp(),
        store: Arc::new(store),
        measurement: peer::agent::measure::Measurement {
            binary_sha256: [0; 32],
            config_digest: [0; 32],
            boot_id: "test".into(),
        },
        contribution_interval_s: 1.0,
        heartbeat_interval_s: 1.0,
        fetch_rate_per_s: 10.0,
        blocks: None,
        health: Arc::default(),
        withhold_shares: false,
        audits: Default::default(),
    })
    .await
    .unwrap();
    let addr = timeout(DEADLINE, async {
        loop {
            if let Some(a) = agent.node.listen_addrs().await.unwrap().into_iter().next() {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the device listens");
    let full = addr.with(libp2p::multiaddr::Protocol::P2p(agent.node.peer_id()));
    (agent, full)
}

/// A plain node that dials `to`; its events are returned (an author's are drained).
async fn plain(k: &NodeKey, to: &Multiaddr) -> (NodeHandle, mpsc::Receiver<NodeEvent>) {
    let (handle, events) = node::start(k, tcp()).await.unwrap();
    handle.dial(to.clone()).await.unwrap();
    (handle, events)
}

async fn author(k: &NodeKey, to: &Multiaddr) -> NodeHandle {
    let (handle, mut events) = plain(k, to).await;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    handle
}

/// A contribution signed by `by`, carrying `membership`.
fn contribution(by: &NodeKey, seq: u64, membership: Option<SignedEnvelope>) -> Vec<u8> {
    let c = Contribution {
        v: WIRE_VERSION,
        seq,
        sent_at_ms: now_ms(),
        sealed: vec![0x5a; 96],
        membership,
    };
    SignedEnvelope::seal(by, &c).to_bytes()
}

/// Publishes, retrying while the author does not yet know the device subscribed.
async fn publish(from: &NodeHandle, data: Vec<u8>) {
    timeout(DEADLINE, async {
        while from
            .publish(CONTRIBUTIONS_TOPIC, data.clone())
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the author has the device as a gossip peer");
}

/// Waits until the device counted `n` refusals for `reason`.
async fn refused(d: &EmbeddedAgent, reason: &'static str, n: u64) {
    timeout(DEADLINE, async {
        while d.metrics.gossip_refused_count(reason) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the device never refused a message as {reason}"));
}

/// A gossip message the observer received: its author and bytes.
type Received = (PeerId, Vec<u8>);

/// The observer's view: every message that reached it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

impl Seen {
    fn watch(&self, mut events: mpsc::Receiver<NodeEvent>) {
        let seen = self.0.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let NodeEvent::Gossip {
                    author: Some(a),
                    data,
                    ..
                } = ev
                {
                    seen.lock().unwrap().push((a, data));
                }
            }
        });
    }

    fn has(&self, author: PeerId, data: &[u8]) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(a, d)| *a == author && d == data)
    }

    fn from(&self, author: PeerId) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == author)
            .count()
    }
}

/// Publishes the member's contributions, each with a certificate from `coordinator` (a new one
/// every 300 ms), until the observer has one: the device forwarded it.
async fn until_observed(
    coordinator: &NodeKey,
    member: &NodeKey,
    m: &NodeHandle,
    seen: &Seen,
    first_seq: u64,
) {
    timeout(DEADLINE, async {
        let mut seq = first_seq;
        loop {
            let cert = issue(coordinator, member.node_id(), now_ms());
            let data = contribution(member, seq, Some(cert));
            publish(m, data.clone()).await;
            for _ in 0..15 {
                if seen.has(m.peer_id(), &data) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seq += 1;
        }
    })
    .await
    .expect("the device forwards a member's contribution to the observer");
}

#[tokio::test]
async fn a_device_forwards_a_members_contributions_and_refuses_strangers_by_reason_and_score() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = key(1);
    let (d, d_addr) = device(&coordinator, dir.path()).await;
    let seen = Seen::default();
    let (_o, o_events) = plain(&key(20), &d_addr).await;
    seen.watch(o_events);
    let member = key(2);
    let m = author(&member, &d_addr).await;
    // Two strangers, two refusals each: below zero, not yet graylisted (every message judged).
    let (s1_key, s2_key) = (key(3), key(4));
    let s1 = author(&s1_key, &d_addr).await;
    let s2 = author(&s2_key, &d_addr).await;

    until_observed(&coordinator, &member, &m, &seen, 1).await;

    publish(&s1, contribution(&s1_key, 1, None)).await;
    refused(&d, "missing", 1).await;
    // Signed by the stranger itself, not by the pinned coordinator.
    let self_signed = issue(&s1_key, s1_key.node_id(), now_ms());
    publish(&s1, contribution(&s1_key, 2, Some(self_signed))).await;
    refused(&d, "forged", 1).await;
    // Issued by the coordinator, but two hours ago.
    let expired = issue(&coordinator, s2_key.node_id(), now_ms() - 2 * VALIDITY_MS);
    publish(&s2, contribution(&s2_key, 1, Some(expired))).await;
    refused(&d, "expired", 1).await;
    // The member's valid certificate, lifted by the stranger.
    let lifted = issue(&coordinator, member.node_id(), now_ms());
    publish(&s2, contribution(&s2_key, 2, Some(lifted))).await;
    refused(&d, "other_node", 1).await;

    // A member's message sent after the strangers' refusals reaches the observer over the same
    // connection; had D forwarded any stranger's message, it would have arrived before.
    until_observed(&coordinator, &member, &m, &seen, 100).await;
    assert_eq!(
        seen.from(s1.peer_id()),
        0,
        "a stranger's message was forwarded"
    );
    assert_eq!(
        seen.from(s2.peer_id()),
        0,
        "a stranger's message was forwarded"
    );

    for (who, s) in [("s1", &s1), ("s2", &s2)] {
        let score = d.node.gossip_score(s.peer_id()).await.unwrap();
        assert!(
            score.is_some_and(|x| x < 0.0),
            "{who}'s score at the device after two refused messages: {score:?}"
        );
    }
    let member_score = d.node.gossip_score(m.peer_id()).await.unwrap();
    assert!(
        member_score.is_some_and(|x| x >= 0.0),
        "the member's score at the device: {member_score:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_stranger_that_keeps_sending_refused_gossip_is_graylisted_by_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let (d, d_addr) = device(&key(1), dir.path()).await;
    let stranger = key(5);
    let s = author(&stranger, &d_addr).await;
    let mut sent = 0u64;
    let score = timeout(DEADLINE, async {
        loop {
            let score = d.node.gossip_score(s.peer_id()).await.unwrap();
            if score.is_some_and(|x| x < GRAYLIST) {
                return score;
            }
            // One more refused message once the last was judged (a graylisted peer's are not).
            if d.metrics.gossip_refused_count("missing") >= sent {
                sent += 1;
                publish(&s, contribution(&stranger, sent, None)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the stranger was not graylisted after {sent} refused messages ({} judged)",
            d.metrics.gossip_refused_count("missing")
        )
    });
    eprintln!(
        "graylisted after {} refused messages: score {score:?}",
        d.metrics.gossip_refused_count("missing")
    );
    assert!(sent <= 5, "{sent} refused messages before the graylist");
    d.stop().await;
}
