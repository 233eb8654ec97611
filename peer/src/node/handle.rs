//! The owner's side of a node: the cheap, cloneable [`NodeHandle`] and the commands it sends to
//! the swarm task, with what the task shares back (events it dropped, ping round trips).

use super::NodeError;
use super::config::Protocol;
use super::swarm_task::NodeEvent;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug)]
pub(super) enum Command {
    Publish {
        topic: &'static str,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Request {
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Answer, NodeError>>,
    },
    FindPeer {
        peer: PeerId,
        seeds: Vec<Multiaddr>,
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Respond {
        protocol: Protocol,
        channel: ResponseChannel<Vec<u8>>,
        bytes: Vec<u8>,
    },
    ReportGossip {
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    GossipScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
    GossipSubscribed {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    Disconnect {
        peer: PeerId,
    },
    Shutdown,
}

/// Events the node could not hand to its owner because the owner's event channel was full (or
/// the owner gone). A dropped gossip message is reported `Ignore` (not forwarded, no penalty), a
/// dropped request is answered busy, and any other event (connected, disconnected, a ping) is lost.
#[derive(Debug, Default)]
pub struct DroppedEvents {
    gossip: AtomicU64,
    requests: AtomicU64,
    other: AtomicU64,
}

impl DroppedEvents {
    pub(super) fn count(&self, event: &NodeEvent) {
        let counter = match event {
            NodeEvent::Gossip { .. } => &self.gossip,
            NodeEvent::Request { .. } => &self.requests,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Gossip messages dropped (neither validated nor forwarded).
    pub fn gossip(&self) -> u64 {
        self.gossip.load(Ordering::Relaxed)
    }

    /// Requests answered busy without being read.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Other events dropped.
    pub fn other(&self) -> u64 {
        self.other.load(Ordering::Relaxed)
    }
}

/// `entroshard_node_events_dropped_total{kind}`, read at each scrape.
impl prometheus_client::collector::Collector for DroppedEvents {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        let mut family = encoder.encode_descriptor(
            "entroshard_node_events_dropped",
            "Events the node could not hand to its owner because its queue was full, by kind \
             (gossip, request, other).",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (kind, n) in [
            ("gossip", self.gossip()),
            ("request", self.requests()),
            ("other", self.other()),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&[("kind", kind)])?)?;
        }
        Ok(())
    }
}

/// A cheap, cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub(super) peer_id: PeerId,
    pub(super) gossip_sink: bool,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) dropped: Arc<DroppedEvents>,
    pub(super) round_trips: RoundTrips,
    pub(super) reachability: super::SharedReachability,
}

/// The last ping round trip to each connected peer, kept by the swarm task (a table the owner
/// reads when it needs it, not an event per ping: a coordinator of 10,000 peers would get 700
/// a second).
pub(super) type RoundTrips = Arc<std::sync::Mutex<HashMap<PeerId, Duration>>>;

/// How the connection a request went out on reached the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionPath {
    /// Dialled or accepted directly (no relay).
    Direct,
    /// A direct connection DCUtR opened by hole punching through the NATs on both sides.
    HolePunched,
    /// Through a circuit relay (`/p2p-circuit`).
    Relayed,
}

impl ConnectionPath {
    /// `direct`, `hole-punched` or `relayed`.
    pub fn label(self) -> &'static str {
        match self {
            ConnectionPath::Direct => "direct",
            ConnectionPath::HolePunched => "hole-punched",
            ConnectionPath::Relayed => "relayed",
        }
    }
}

/// A response and the path of the connection it came back on.
#[derive(Debug)]
pub struct Answer {
    /// Response bytes.
    pub bytes: Vec<u8>,
    /// How the connection reached the remote (`None`: the connection closed before we looked).
    pub path: Option<ConnectionPath>,
}

/// Gossip validation outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid: forward it (a node configured as a gossip sink consumes it instead).
    Accept,
    /// Invalid: drop it and penalise the sender.
    Reject,
    /// Not for us (e.g. a duplicate): drop it without penalty.
    Ignore,
}

impl NodeHandle {
    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The last ping round trip to each connected peer.
    pub fn round_trips(&self) -> HashMap<PeerId, Duration> {
        self.round_trips
            .lock()
            .map(|rtts| rtts.clone())
            .unwrap_or_default()
    }

    /// Whether others can dial this node, as AutoNAT found it (a collector for metrics, too).
    pub fn reachability(&self) -> super::SharedReachability {
        self.reachability.clone()
    }

    /// Events dropped because the owner did not keep up.
    pub fn dropped(&self) -> Arc<DroppedEvents> {
        self.dropped.clone()
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Closed)?;
        rx.await.map_err(|_| NodeError::Closed)
    }

    /// Publishes on a gossip topic.
    pub async fn publish(&self, topic: &'static str, data: Vec<u8>) -> Result<(), NodeError> {
        self.call(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Sends a request and waits for the response bytes (bounded by the protocol's timeout).
    pub async fn request(
        &self,
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, NodeError> {
        Ok(self
            .request_traced(protocol, peer, addrs, data)
            .await?
            .bytes)
    }

    /// Like [`Self::request`], and says whether the answer came directly, through a hole punch or
    /// through a relay. When not connected, `addrs` are dialled; relayed ones (`/p2p-circuit`)
    /// are dialled together with the direct ones, and the first connection up carries the
    /// request.
    pub async fn request_traced(
        &self,
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
    ) -> Result<Answer, NodeError> {
        self.call(|reply| Command::Request {
            protocol,
            peer,
            addrs,
            data,
            reply,
        })
        .await?
    }

    /// Looks `peer` up in Kademlia (a closest-peers query for its id), first adding `seeds`
    /// (multiaddrs ending in `/p2p/<PeerId>`, the coordinator say) to the routing table; the
    /// addresses found, empty when none (or when the node runs without Kademlia). Bounded by
    /// Kademlia's query timeout.
    pub async fn find_peer(
        &self,
        peer: PeerId,
        seeds: Vec<Multiaddr>,
    ) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|reply| Command::FindPeer { peer, seeds, reply })
            .await
    }

    /// Reports the validation result of a gossip message.
    pub async fn report_gossip(
        &self,
        id: MessageId,
        source: PeerId,
        verdict: GossipVerdict,
    ) -> Result<(), NodeError> {
        let acceptance = match verdict {
            GossipVerdict::Accept if self.gossip_sink => MessageAcceptance::Ignore,
            GossipVerdict::Accept => MessageAcceptance::Accept,
            GossipVerdict::Reject => MessageAcceptance::Reject,
            GossipVerdict::Ignore => MessageAcceptance::Ignore,
        };
        self.commands
            .send(Command::ReportGossip {
                id,
                source,
                acceptance,
            })
            .await
            .map_err(|_| NodeError::Closed)
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.call(|reply| Command::Dial { addr, reply }).await?
    }

    /// Current listen addresses.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NodeError> {
        self.call(|reply| Command::ConnectedPeers { reply }).await
    }

    /// This node's gossipsub score of `peer` (below -80 its gossip is ignored), if it knows it.
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>, NodeError> {
        self.call(|reply| Command::GossipScore { peer, reply })
            .await
    }

    /// Whether gossipsub knows `peer` to be subscribed to any topic. A connected peer whose
    /// subscriptions never arrived gets none of this node's gossip: gossipsub announces
    /// subscriptions on a peer's first connection only, so a remote still holding a dead
    /// connection from before this node restarted never announces them again on the new one.
    pub async fn gossip_subscribed(&self, peer: PeerId) -> Result<bool, NodeError> {
        self.call(|reply| Command::GossipSubscribed { peer, reply })
            .await
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NodeError> {
        self.commands
            .send(Command::Disconnect { peer })
            .await
            .map_err(|_| NodeError::Closed)
    }

    /// Stops the swarm task.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}
