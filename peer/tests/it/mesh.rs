//! Real nodes on loopback (TCP and QUIC) and on the memory transport: gossip and request-response.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use libp2p::{Multiaddr, PeerId};
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle, Protocol, RequestFrame, STATUS_TOPIC};
use protocols::identity::NodeKey;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(20);

async fn start(
    seed: u8,
    listen: &str,
    transport_memory: bool,
) -> (NodeHandle, mpsc::Receiver<NodeEvent>, Multiaddr) {
    let addr: Multiaddr = listen.parse().unwrap();
    let config = if transport_memory {
        NodeConfig::memory(vec![addr])
    } else {
        NodeConfig::network(vec![addr])
    };
    start_with(seed, config).await
}

/// Starts a node with `config` and waits for its first listen address (with `/p2p/`).
async fn start_with(
    seed: u8,
    config: NodeConfig,
) -> (NodeHandle, mpsc::Receiver<NodeEvent>, Multiaddr) {
    let key = NodeKey::from_secret_bytes(&[seed; 32]);
    let (handle, events, listening) = common::start_listening(&key, config).await;
    let full = listening.with(libp2p::multiaddr::Protocol::P2p(handle.peer_id()));
    (handle, events, full)
}

/// A network node on 127.0.0.1 over TCP.
fn tcp_config() -> NodeConfig {
    NodeConfig::network(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
}

/// Waits for the next peer that subscribes to the status topic on `events`' node.
async fn next_status_subscriber(events: &mut mpsc::Receiver<NodeEvent>) -> PeerId {
    timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Some(NodeEvent::Subscribed { peer, topic }) if topic == STATUS_TOPIC => {
                    return peer;
                }
                Some(_) => continue,
                None => panic!("node stopped"),
            }
        }
    })
    .await
    .expect("a peer subscribes")
}

/// Waits until `b` subscribed on `a`'s side, publishes, then waits for `b` to receive it.
async fn gossip_reaches(
    a: &NodeHandle,
    a_events: &mut mpsc::Receiver<NodeEvent>,
    b_events: &mut mpsc::Receiver<NodeEvent>,
    payload: &[u8],
) {
    next_status_subscriber(a_events).await;
    a.publish(STATUS_TOPIC, payload.to_vec()).await.unwrap();
    let got = timeout(DEADLINE, async {
        loop {
            match b_events.recv().await {
                Some(NodeEvent::Gossip { data, author, .. }) => return (data, author),
                Some(_) => continue,
                None => panic!("node stopped"),
            }
        }
    })
    .await
    .expect("gossip arrives");
    assert_eq!(got.0, payload);
    assert_eq!(got.1, Some(a.peer_id()));
}

/// Answers one request on `events` by echoing it reversed.
fn echo_server(mut events: mpsc::Receiver<NodeEvent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NodeEvent::Request {
                frame, responder, ..
            } = ev
            {
                let reply = match frame {
                    RequestFrame::Bytes(mut b) => {
                        b.reverse();
                        b
                    }
                    RequestFrame::Oversized { len, .. } => format!("oversized {len}").into_bytes(),
                };
                let _ = responder.respond(reply).await;
            }
        }
    })
}

async fn exchange(listen_a: &str, listen_b: &str, memory: bool) {
    let (a, mut a_events, _) = start(1, listen_a, memory).await;
    let (b, mut b_events, b_addr) = start(2, listen_b, memory).await;
    a.dial(b_addr.clone()).await.unwrap();
    gossip_reaches(&a, &mut a_events, &mut b_events, b"status-1").await;
    let server = echo_server(b_events);
    let reply = a
        .request(
            Protocol::Fetch,
            b.peer_id(),
            vec![b_addr.clone()],
            b"abc".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(reply, b"cba");
    // An oversized request is reported to the owner without being read, and answered.
    let big = vec![0u8; Protocol::Attest.limits().0 + 1];
    let reply = a
        .request(Protocol::Attest, b.peer_id(), vec![b_addr], big.clone())
        .await
        .unwrap();
    assert_eq!(reply, format!("oversized {}", big.len()).into_bytes());
    // Ping round trips are kept in a table (no event per ping), and dropped with the connection.
    timeout(DEADLINE, async {
        while !a.round_trips().contains_key(&b.peer_id()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a ping round trip to b is recorded");
    server.abort();
    b.shutdown().await;
    timeout(DEADLINE, async {
        while a.round_trips().contains_key(&b.peer_id()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("b's round trip is forgotten once its connection closed");
}

#[tokio::test]
async fn nodes_exchange_gossip_and_requests_over_tcp() {
    exchange("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0", false).await;
}

#[tokio::test]
async fn nodes_exchange_gossip_and_requests_over_quic() {
    exchange(
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        false,
    )
    .await;
}

#[tokio::test]
async fn nodes_exchange_gossip_and_requests_over_the_memory_transport() {
    let port = 1 + (std::process::id() as u64 % 1_000_000) * 8;
    exchange(
        &format!("/memory/{port}"),
        &format!("/memory/{}", port + 1),
        true,
    )
    .await;
}

#[tokio::test]
async fn request_to_a_stopped_node_fails_with_a_typed_error() {
    let (a, _a_events, _) = start(3, "/ip4/127.0.0.1/tcp/0", false).await;
    let (b, _b_events, b_addr) = start(4, "/ip4/127.0.0.1/tcp/0", false).await;
    let b_id = b.peer_id();
    b.shutdown().await;
    drop(b);
    let err = a
        .request(Protocol::Fetch, b_id, vec![b_addr], b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, node::NodeError::Request { .. }), "{err:?}");
}

/// A node whose owner stops reading drops the gossip it cannot hand over, and counts every
/// message it dropped: delivered + counted = sent. A request meanwhile is answered busy, counted.
#[tokio::test]
async fn gossip_an_owner_cannot_take_is_counted_as_dropped() {
    const SENT: usize = 40;
    const CAPACITY: usize = 4;
    let (a, mut a_events, _) = start(5, "/ip4/127.0.0.1/tcp/0", false).await;
    let config = NodeConfig {
        channel_capacity: CAPACITY,
        ..tcp_config()
    };
    let (b, mut b_events, b_addr) = start_with(6, config).await;
    a.dial(b_addr.clone()).await.unwrap();
    next_status_subscriber(&mut a_events).await;
    // b's owner reads nothing from here on, until the messages are out.
    for i in 0..SENT {
        a.publish(STATUS_TOPIC, format!("message {i}").into_bytes())
            .await
            .unwrap();
    }
    let dropped = b.dropped();
    timeout(DEADLINE, async {
        while dropped.gossip() < (SENT - CAPACITY) as u64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} gossip messages counted as dropped",
            dropped.gossip()
        )
    });
    let reply = a
        .request(Protocol::Fetch, b.peer_id(), vec![b_addr], b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(reply, protocols::wire::busy_reply());
    assert_eq!(dropped.requests(), 1);
    let mut delivered = 0u64;
    timeout(DEADLINE, async {
        while delivered + dropped.gossip() < SENT as u64 {
            if let Some(NodeEvent::Gossip { .. }) = b_events.recv().await {
                delivered += 1;
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{delivered} delivered + {} dropped of {SENT}",
            dropped.gossip()
        )
    });
    assert_eq!(delivered + dropped.gossip(), SENT as u64);
}

/// A → C → B in a line, all subscribed; A publishes, C's owner accepts. Returns whether B got
/// the message within `wait`.
async fn passes_through(c_is_sink: bool, seed: u8, wait: Duration) -> bool {
    let node_at = |seed: u8, sink: bool| {
        let mut config = tcp_config();
        config.gossip_sink = sink;
        start_with(seed, config)
    };
    let (a, mut a_events, _) = node_at(seed, false).await;
    let (c, mut c_events, c_addr) = node_at(seed + 1, c_is_sink).await;
    let (b, mut b_events, _) = node_at(seed + 2, false).await;
    a.dial(c_addr.clone()).await.unwrap();
    b.dial(c_addr).await.unwrap();
    // C has both subscribed on its side, and A has C.
    let first = next_status_subscriber(&mut c_events).await;
    assert_ne!(next_status_subscriber(&mut c_events).await, first);
    next_status_subscriber(&mut a_events).await;
    // Let gossipsub's heartbeat graft the mesh.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.publish(STATUS_TOPIC, b"consumed at c".to_vec())
        .await
        .unwrap();
    let at_c = timeout(DEADLINE, async {
        loop {
            if let Some(NodeEvent::Gossip {
                id,
                propagation_source,
                ..
            }) = c_events.recv().await
            {
                return (id, propagation_source);
            }
        }
    })
    .await
    .expect("c receives the message");
    c.report_gossip(at_c.0, at_c.1, node::GossipVerdict::Accept)
        .await
        .unwrap();
    let got = timeout(wait, async {
        loop {
            if let Some(NodeEvent::Gossip { .. }) = b_events.recv().await {
                return;
            }
        }
    })
    .await
    .is_ok();
    for n in [a, b, c] {
        n.shutdown().await;
    }
    got
}

#[tokio::test]
async fn a_gossip_sink_consumes_what_it_accepts_and_a_relay_forwards_it() {
    assert!(
        passes_through(false, 20, DEADLINE).await,
        "a relay forwards an accepted message"
    );
    assert!(
        !passes_through(true, 30, Duration::from_secs(3)).await,
        "a sink forwarded an accepted message"
    );
}
