//! A coordinator that answers "busy" (the `RateLimited` reply a node sends when it cannot look at
//! a request) is asked again after a short wait, up to `busy_retries` times; any other answer
//! ends the call at once. The coordinator here is a real node on loopback QUIC that answers busy
//! a set number of times and then refuses with `NotReady`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peer::node::{self, NodeConfig, NodeEvent};
use protocols::identity::NodeKey;
use protocols::wire::{self, Refusal, Reply, SessionPolicy};
use requester::{Requester, RequesterError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Starts the coordinator stand-in node; returns its address and the count of calls it saw.
async fn coordinator_busy_for(busy_answers: u32) -> (libp2p::Multiaddr, Arc<AtomicU32>) {
    let key = NodeKey::from_secret_bytes(&[7; 32]);
    let config = NodeConfig::network(vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()]);
    let (handle, mut events) = node::start(&key, config).await.unwrap();
    let listen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(NodeEvent::Listening(a)) = events.recv().await {
                return a;
            }
        }
    })
    .await
    .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    tokio::spawn(async move {
        let _keep = handle;
        while let Some(event) = events.recv().await {
            if let NodeEvent::Request { responder, .. } = event {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let answer = if n < busy_answers {
                    wire::busy_reply()
                } else {
                    wire::encode(&Reply::<()>::refused(Refusal::NotReady(
                        "pool empty".into(),
                    )))
                };
                let _ = responder.respond(answer).await;
            }
        }
    });
    let peer = peer::identity::peer_id(&key.node_id()).unwrap();
    (listen.with(libp2p::multiaddr::Protocol::P2p(peer)), calls)
}

fn policy() -> SessionPolicy {
    SessionPolicy {
        n: 5,
        k: 3,
        ttl_s: 60,
        requesters: Vec::new(),
        label: "busy".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_coordinator_is_asked_again_until_it_answers() {
    let (addr, calls) = coordinator_busy_for(2).await;
    let requester = Requester::connect(&NodeKey::from_secret_bytes(&[8; 32]), addr)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = requester.create_session(policy()).await.unwrap_err();
    assert!(
        matches!(err, RequesterError::Refused(Refusal::NotReady(_))),
        "the answer after the busy ones: {err}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two busy answers, then the real one"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited 100 ms, then 200 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_busy_for_longer_than_the_retries_is_reported_busy() {
    let (addr, calls) = coordinator_busy_for(u32::MAX).await;
    let mut requester = Requester::connect(&NodeKey::from_secret_bytes(&[9; 32]), addr)
        .await
        .unwrap();
    requester.busy_retries = 1;
    let err = requester
        .ticket(protocols::ids::SessionId([1; 16]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequesterError::Refused(Refusal::RateLimited)),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the call and one retry");
}
