//! Shared helpers of the peer crate's integration tests: a node started and its first listen
//! address.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use libp2p::Multiaddr;
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle};
use protocols::identity::NodeKey;
use std::time::Duration;
use tokio::sync::mpsc;

/// Bound on a node's start: a bound on a hang, far above what loopback needs on a busy machine.
const LISTEN_DEADLINE: Duration = Duration::from_secs(60);

/// Starts a node with `key` and `config` and waits for its first `Listening` event; returns the
/// node, its events (everything after that first address) and the address (without `/p2p/`).
pub async fn start_listening(
    key: &NodeKey,
    config: NodeConfig,
) -> (NodeHandle, mpsc::Receiver<NodeEvent>, Multiaddr) {
    let (handle, mut events) = node::start(key, config).await.unwrap();
    let listening = tokio::time::timeout(LISTEN_DEADLINE, async {
        loop {
            match events.recv().await {
                Some(NodeEvent::Listening(a)) => return a,
                Some(_) => continue,
                None => panic!("the node stopped before it listened"),
            }
        }
    })
    .await
    .expect("the node listens");
    (handle, events, listening)
}
