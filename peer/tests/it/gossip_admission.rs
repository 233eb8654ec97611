//! Gossip admission on real nodes over loopback TCP (docs/protocol/gossip-admission.md): a
//! device agent forwards an enrolled author's contributions and refuses a stranger's — no
//! certificate, a forged one, an expired one, another node's — and the stranger's gossipsub
//! score at that device falls below zero, past the graylist threshold if it keeps on.
//!
//! Layout: authors (plain nodes) → device D (a real embedded agent) → observer O (a plain node).
//! Everything O receives from an author is what D forwarded. D is pinned to a stand-in
//! coordinator (a plain node with the coordinator key) that answers `GetMembership` and
//! `GetMembershipOf` from its list of members, as the real one answers from its peer table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libp2p::{Multiaddr, PeerId};
use peer::agent::embedded::{self, EmbeddedAgent, EmbeddedConfig};
use peer::node::{self, CONTRIBUTIONS_TOPIC, NodeConfig, NodeEvent, NodeHandle};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
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

/// Key seed of the forwarding device.
const DEVICE: u8 = 10;

/// A stand-in coordinator keyed `key(seed)`: certificates for `members` (and the device), an
/// `unauthorized` refusal for anybody else. Returns its address.
async fn stand_in_coordinator(seed: u8, members: Vec<NodeId>) -> Multiaddr {
    let coordinator = &key(seed);
    use protocols::wire::{self, CoordinatorCall, CoordinatorRequest, Refusal, Reply};
    let mut config = tcp();
    config.gossip_subscribe = false;
    let (handle, mut events) = node::start(coordinator, config).await.unwrap();
    let signer = key(seed);
    let addr = timeout(DEADLINE, async {
        loop {
            if let Some(NodeEvent::Listening(a)) = events.recv().await {
                return a;
            }
        }
    })
    .await
    .expect("the coordinator listens");
    tokio::spawn(async move {
        let _keep = handle;
        while let Some(ev) = events.recv().await {
            let NodeEvent::Request {
                peer: caller,
                frame: peer::node::RequestFrame::Bytes(b),
                responder,
                ..
            } = ev
            else {
                continue;
            };
            let subject = match wire::decode::<CoordinatorCall>(&b, 4096).map(|c| c.request) {
                Ok(CoordinatorRequest::GetMembership) => peer::identity::node_id(&caller),
                Ok(CoordinatorRequest::GetMembershipOf(n)) => Some(n),
                _ => None,
            };
            let enrolled = subject.filter(|n| members.contains(n) || *n == key(DEVICE).node_id());
            let reply = match enrolled {
                Some(n) => wire::encode(&Reply::ok(issue(&signer, n, now_ms()))),
                None => wire::encode(&Reply::<()>::refused(Refusal::Unauthorized)),
            };
            let _ = responder.respond(reply).await;
        }
    });
    addr.with(libp2p::multiaddr::Protocol::P2p(
        peer::identity::peer_id(&coordinator.node_id()).unwrap(),
    ))
}

/// The forwarding device, pinned to the coordinator at `coordinator`.
async fn device(coordinator: Multiaddr, dir: &std::path::Path) -> (EmbeddedAgent, Multiaddr) {
    let store = peer::store::ShareStore::open(&dir.join("store.redb"), 16).unwrap();
    let agent = embedded::start(EmbeddedConfig {
        key: key(DEVICE),
        share_key: protocols::share_box::BoxSecret::from_uniform_bytes(&[7; 64]),
        coordinator,
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

/// Publishes a new message made by `make` (from a sequence number) every 300 ms until the device
/// has counted one more refusal for `reason` (a message without a certificate is first only
/// ignored, while the device asks the coordinator about its author).
async fn until_refused(
    d: &EmbeddedAgent,
    from: &NodeHandle,
    reason: &'static str,
    make: impl Fn(u64) -> Vec<u8>,
) {
    let before = d.metrics.gossip_refused_count(reason);
    timeout(DEADLINE, async {
        let mut seq = 1;
        loop {
            publish(from, make(seq)).await;
            seq += 1;
            for _ in 0..15 {
                if d.metrics.gossip_refused_count(reason) > before {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
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

/// Publishes the member's contributions, each with a certificate from `coordinator` (without
/// one if `None`), a new one every 300 ms, until the observer has one: the device forwarded it.
async fn until_observed(
    coordinator: Option<&NodeKey>,
    member: &NodeKey,
    m: &NodeHandle,
    seen: &Seen,
    first_seq: u64,
) {
    timeout(DEADLINE, async {
        let mut seq = first_seq;
        loop {
            let cert = coordinator.map(|c| issue(c, member.node_id(), now_ms()));
            let data = contribution(member, seq, cert);
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
    let (member, bare_member) = (key(2), key(6));
    let coord_addr = stand_in_coordinator(1, vec![member.node_id(), bare_member.node_id()]).await;
    let (d, d_addr) = device(coord_addr, dir.path()).await;
    let seen = Seen::default();
    let (_o, o_events) = plain(&key(20), &d_addr).await;
    seen.watch(o_events);
    let m = author(&member, &d_addr).await;
    // Two strangers, two refusals each: below zero, not yet graylisted (every message judged).
    let (s1_key, s2_key) = (key(3), key(4));
    let s1 = author(&s1_key, &d_addr).await;
    let s2 = author(&s2_key, &d_addr).await;

    until_observed(Some(&coordinator), &member, &m, &seen, 1).await;
    // A member that carries no certificate (it cannot reach the coordinator itself): the device
    // asks the coordinator about it and forwards its messages once vouched for.
    let bare = author(&bare_member, &d_addr).await;
    until_observed(None, &bare_member, &bare, &seen, 1).await;

    // The coordinator says the stranger is not enrolled: rejected from then on.
    until_refused(&d, &s1, "missing", |seq| contribution(&s1_key, seq, None)).await;
    // Signed by the stranger itself, not by the pinned coordinator.
    until_refused(&d, &s1, "forged", |seq| {
        let self_signed = issue(&s1_key, s1_key.node_id(), now_ms());
        contribution(&s1_key, 100 + seq, Some(self_signed))
    })
    .await;
    // Issued by the coordinator, but two hours ago.
    until_refused(&d, &s2, "expired", |seq| {
        let expired = issue(&coordinator, s2_key.node_id(), now_ms() - 2 * VALIDITY_MS);
        contribution(&s2_key, seq, Some(expired))
    })
    .await;
    // The member's valid certificate, lifted by the stranger.
    until_refused(&d, &s2, "other_node", |seq| {
        let lifted = issue(&coordinator, member.node_id(), now_ms());
        contribution(&s2_key, 100 + seq, Some(lifted))
    })
    .await;

    // A member's message sent after the strangers' refusals reaches the observer over the same
    // connection; had D forwarded any stranger's message, it would have arrived before.
    until_observed(Some(&coordinator), &member, &m, &seen, 100).await;
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
            "{who}'s score at the device after its refused messages: {score:?}"
        );
    }
    for (who, m) in [("member", &m), ("bare member", &bare)] {
        let score = d.node.gossip_score(m.peer_id()).await.unwrap();
        assert!(
            score.is_some_and(|x| x >= 0.0),
            "the {who}'s score at the device: {score:?}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn a_stranger_that_keeps_sending_refused_gossip_is_graylisted_by_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let coord_addr = stand_in_coordinator(1, Vec::new()).await;
    let (d, d_addr) = device(coord_addr, dir.path()).await;
    let stranger = key(5);
    let s = author(&stranger, &d_addr).await;
    let mut sent = 0u64;
    let score = timeout(DEADLINE, async {
        loop {
            let score = d.node.gossip_score(s.peer_id()).await.unwrap();
            if score.is_some_and(|x| x < GRAYLIST) {
                return score;
            }
            sent += 1;
            publish(&s, contribution(&stranger, sent, None)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the stranger was not graylisted after {sent} messages ({} refused)",
            d.metrics.gossip_refused_count("missing")
        )
    });
    eprintln!(
        "graylisted after {} refused messages ({} ignored while the coordinator was asked): score {score:?}",
        d.metrics.gossip_refused_count("missing"),
        d.metrics.gossip_refused_count("unknown")
    );
    d.stop().await;
}
