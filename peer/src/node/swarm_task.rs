//! The swarm task: one `select!` over swarm events and owner commands; bounded both ways.

mod dialing;
mod discovery;
pub(super) mod incarnations;
mod liveness;
mod observed;
mod paths;
mod relaying;
mod requests;

pub use requests::Responder;

use relaying::{RESERVATION_RETRY, Reservations, is_relayed, on_relay_event};

use super::NodeError;
use super::behaviour::{MeshBehaviour, MeshBehaviourEvent};
use super::codec::RequestFrame;
use super::config::{NodeConfig, Protocol};
use super::handle::{Answer, Command, ConnectionPath, DroppedEvents, NodeHandle, RoundTrips};
use super::reachability::{SharedReachability, Tracker};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::multiaddr::Protocol as Part;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, ping};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What the node tells its owner.
#[derive(Debug)]
pub enum NodeEvent {
    /// A gossip message waiting for validation: report it with [`NodeHandle::report_gossip`].
    Gossip {
        /// Topic name.
        topic: String,
        /// Message id for the validation report.
        id: MessageId,
        /// The peer that forwarded it.
        propagation_source: PeerId,
        /// The authenticated author (gossipsub signatures are mandatory).
        author: Option<PeerId>,
        /// Payload.
        data: Vec<u8>,
    },
    /// An inbound request; answer it through the responder.
    Request {
        /// Protocol it came on.
        protocol: Protocol,
        /// The authenticated remote.
        peer: PeerId,
        /// The request bytes, or the oversized size it announced.
        frame: RequestFrame,
        /// Where the answer goes.
        responder: Responder,
    },
    /// A new listen address.
    Listening(Multiaddr),
    /// A connection to `peer` is up.
    Connected(PeerId),
    /// The last connection to `peer` closed.
    Disconnected(PeerId),
    /// `peer` subscribed to a gossip topic (publishing to it can now reach someone).
    Subscribed {
        /// Remote.
        peer: PeerId,
        /// Topic name.
        topic: String,
    },
}

pub(super) async fn spawn(
    swarm: Swarm<MeshBehaviour>,
    config: &NodeConfig,
) -> (NodeHandle, mpsc::Receiver<NodeEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(config.channel_capacity);
    let (event_tx, event_rx) = mpsc::channel(config.channel_capacity);
    let dropped = Arc::new(DroppedEvents::default());
    let round_trips = RoundTrips::default();
    let reachability = SharedReachability::default();
    let handle = NodeHandle {
        reachability: reachability.clone(),
        peer_id: *swarm.local_peer_id(),
        gossip_sink: config.gossip_sink,
        commands: cmd_tx.clone(),
        dropped: dropped.clone(),
        round_trips: round_trips.clone(),
    };
    let task = SwarmTask {
        dropped,
        round_trips,
        swarm,
        commands: cmd_rx,
        command_tx: cmd_tx.downgrade(),
        events: event_tx,
        pending: HashMap::new(),
        paths: HashMap::new(),
        relayed_peers: paths::RelayedPeers::new(paths::REMEMBERED_RELAYED_PEERS),
        lookups: HashMap::new(),
        // The coordinator (a relay that is a Kademlia server by configuration) is reachable by
        // definition; a relay peer's addresses are confirmed by AutoNAT like anyone's.
        public_listeners: config.relay_server.is_some() && (config.kad_server || !config.autonat),
        reachability,
        tracker: Tracker::default(),
        forced_kad_server: config.kad_server,
        waiting: dialing::Waiting::default(),
        reserve_unless_public: config.reserve_unless_public,
        quic_observed: observed::QuicObserved::default(),
        request_dial_concurrency: config.dial_concurrency,
        incarnations: incarnations::Incarnations::default(),
        reservations: Reservations::new(
            config.relay_listen_addrs(),
            config.max_relay_reservations,
            config.relay_backoff,
        ),
    };
    tokio::spawn(task.run());
    (handle, event_rx)
}

struct SwarmTask {
    dropped: Arc<DroppedEvents>,
    round_trips: RoundTrips,
    swarm: Swarm<MeshBehaviour>,
    commands: mpsc::Receiver<Command>,
    command_tx: mpsc::WeakSender<Command>,
    events: mpsc::Sender<NodeEvent>,
    pending: HashMap<(Protocol, OutboundRequestId), ReplySender>,
    /// How each open connection reached its remote (one entry per connection, removed on close).
    paths: HashMap<ConnectionId, (PeerId, ConnectionPath)>,
    /// Peers this node had a relayed connection with (bounded), for [`paths::classify`].
    relayed_peers: paths::RelayedPeers,
    /// Kademlia lookups of a peer's addresses waiting for their query to finish (bounded by
    /// Kademlia's query timeout; one entry per query).
    lookups: HashMap<kad::QueryId, (PeerId, oneshot::Sender<Vec<Multiaddr>>)>,
    /// Listen addresses are reachable by others (a relay server: the coordinator, a public
    /// device): each non-loopback one is confirmed as external. A relay hands its external
    /// addresses out in reservations and refuses to reserve without any.
    public_listeners: bool,
    /// The reservations this node keeps on relays.
    reservations: Reservations,
    /// Reachability as AutoNAT found it, shared with the handle.
    reachability: SharedReachability,
    /// The AutoNAT outcomes it adds up from.
    tracker: Tracker,
    /// Kademlia is a server whatever AutoNAT finds (the coordinator).
    forced_kad_server: bool,
    /// Requests waiting for a connection to the relays their relayed addresses go through.
    waiting: dialing::Waiting,
    /// Reservations are dropped while AutoNAT finds this node public.
    reserve_unless_public: bool,
    /// Whether this node's QUIC address was seen from outside (for hole punches).
    quic_observed: observed::QuicObserved,
    /// Direct addresses of a peer dialled at once for a request.
    request_dial_concurrency: std::num::NonZeroU8,
    /// The remote process each identified connection reached, to close a restarted peer's
    /// leftovers.
    incarnations: incarnations::Incarnations,
}

type ReplySender = oneshot::Sender<Result<Answer, NodeError>>;

/// Kademlia lookups in flight at once; past it a lookup answers "nothing found" at once.
const MAX_LOOKUPS: usize = 32;

impl SwarmTask {
    async fn run(mut self) {
        let mut retry = tokio::time::interval(RESERVATION_RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut waited = tokio::time::interval(dialing::RELAY_WAIT / 4);
        waited.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = retry.tick(), if !self.reservations.is_empty() => self.keep_reservations(),
                _ = waited.tick(), if !self.waiting.is_empty() => self.release_waiting(),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
            }
        }
        tracing::debug!(peer = %self.swarm.local_peer_id(), "node stopped");
    }

    fn on_command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Publish { topic, data, reply } => {
                let result = behaviour
                    .gossipsub
                    .publish(IdentTopic::new(topic), data)
                    .map(|_| ())
                    .map_err(|e| NodeError::Publish(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Request {
                protocol,
                peer,
                addrs,
                data,
                reply,
            } => self.request(dialing::Request {
                protocol,
                peer,
                addrs,
                data,
                reply,
            }),
            Command::FindPeer { peer, seeds, reply } => match behaviour.kad.as_mut() {
                Some(kad) if self.lookups.len() < MAX_LOOKUPS => {
                    for seed in seeds {
                        if let Some(Part::P2p(id)) = seed.iter().last() {
                            kad.add_address(&id, seed);
                        }
                    }
                    let id = kad.get_closest_peers(peer);
                    self.lookups.insert(id, (peer, reply));
                }
                _ => {
                    let _ = reply.send(Vec::new());
                }
            },
            Command::Respond {
                protocol,
                channel,
                bytes,
            } => {
                if behaviour
                    .rr_mut(protocol)
                    .send_response(channel, bytes)
                    .is_err()
                {
                    tracing::debug!(?protocol, "response dropped: the requester went away");
                }
            }
            Command::ReportGossip {
                id,
                source,
                acceptance,
            } => {
                behaviour
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Command::Dial { addr, reply } => {
                let _ = reply.send(
                    self.swarm
                        .dial(addr)
                        .map_err(|e| NodeError::Dial(e.to_string())),
                );
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::GossipScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::GossipSubscribed { peer, reply } => {
                let subscribed = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .any(|(p, topics)| p == &peer && !topics.is_empty());
                let _ = reply.send(subscribed);
            }
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Shutdown => {}
        }
    }

    /// Hands `event` to the owner without waiting; a full channel gives it back, counted.
    fn offer(&self, event: NodeEvent) -> Result<(), Box<NodeEvent>> {
        self.events.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev) => {
                self.dropped.count(&ev);
                Box::new(ev)
            }
        })
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<MeshBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                let loopback = address.iter().any(|p| match p {
                    Part::Ip4(ip) => ip.is_loopback(),
                    Part::Ip6(ip) => ip.is_loopback(),
                    _ => false,
                });
                if self.public_listeners && !loopback && !is_relayed(&address) {
                    self.swarm.add_external_address(address.clone());
                }
                let _ = self.offer(NodeEvent::Listening(address));
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                match (
                    self.reservations
                        .on_listener_closed(listener_id, std::time::Instant::now()),
                    reason,
                ) {
                    (Some(relay), reason) => {
                        // Passed over for a while; the next relay in the list takes its place.
                        tracing::info!(%relay, ?reason, "relay reservation ended");
                        self.keep_reservations();
                    }
                    (None, Err(e)) => {
                        tracing::error!(?addresses, error = %super::error_chain(&e), "listener failed");
                    }
                    (None, Ok(())) => {}
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
                self.tracker.confirmed(&address);
                self.on_reachability();
            }
            SwarmEvent::NewExternalAddrCandidate { address } => {
                tracing::debug!(%address, "external address candidate");
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.tracker.expired(&address);
                self.on_reachability();
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::error!(error = %super::error_chain(&error), "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                connection_id,
                endpoint,
                ..
            } => {
                // DCUtR reports a punch only to the side whose dial opened it: the other side
                // knows it from a relayed connection with the peer before this direct one.
                let relayed_before =
                    self.relayed_to(&peer_id) || self.relayed_peers.contains(&peer_id);
                let path = paths::classify(&endpoint, relayed_before);
                if path == ConnectionPath::Relayed {
                    self.relayed_peers.add(peer_id);
                }
                // A hole punch reports its connection before or after this event; keep its mark.
                self.paths.entry(connection_id).or_insert((peer_id, path));
                if !endpoint.is_relayed() {
                    self.relay_dial_ended(peer_id, true);
                }
                if !endpoint.is_relayed() {
                    self.reserve_on(peer_id);
                }
                if num_established.get() == 1 {
                    let _ = self.offer(NodeEvent::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                connection_id,
                ..
            } => {
                self.paths.remove(&connection_id);
                self.incarnations.closed(&connection_id);
                if num_established == 0 {
                    if let Ok(mut rtts) = self.round_trips.lock() {
                        rtts.remove(&peer_id);
                    }
                    let _ = self.offer(NodeEvent::Disconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                self.paths.remove(&connection_id);
                tracing::debug!(?peer_id, error = %super::error_chain(&error), "dial failed");
                if let Some(peer) = peer_id {
                    self.relay_dial_ended(peer, false);
                }
                if let Some(peer) = peer_id
                    && !self.swarm.is_connected(&peer)
                    && self
                        .reservations
                        .on_dial_failed(&peer, std::time::Instant::now())
                {
                    tracing::info!(relay = %peer, "relay unreachable; trying the next one");
                    self.keep_reservations();
                }
            }
            _ => {}
        }
    }

    /// Whether a relayed connection to `peer` is open.
    fn relayed_to(&self, peer: &PeerId) -> bool {
        self.paths
            .values()
            .any(|(p, path)| p == peer && *path == ConnectionPath::Relayed)
    }

    fn on_behaviour_event(&mut self, event: MeshBehaviourEvent) {
        match event {
            MeshBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let ev = NodeEvent::Gossip {
                    topic: message.topic.into_string(),
                    id: message_id.clone(),
                    propagation_source,
                    author: message.source,
                    data: message.data,
                };
                if self.offer(ev).is_err() {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
            }
            MeshBehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                let _ = self.offer(NodeEvent::Subscribed {
                    peer: peer_id,
                    topic: topic.into_string(),
                });
            }
            MeshBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                connection_id,
            }) => {
                self.close_superseded(peer_id, connection_id, &info.agent_version);
                self.learn_quic_address(peer_id, &info);
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    for addr in info.listen_addrs {
                        kad.add_address(&peer_id, addr);
                    }
                }
            }
            MeshBehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Ok(mut rtts) = self.round_trips.lock() {
                    rtts.insert(peer, rtt);
                }
            }
            MeshBehaviourEvent::Ping(event) => self.on_ping_failure(event),
            MeshBehaviourEvent::RelayClient(event) => self.on_relay_client_event(event),
            MeshBehaviourEvent::Relay(event) => on_relay_event(event),
            MeshBehaviourEvent::Dcutr(event) => self.on_dcutr_event(event),
            MeshBehaviourEvent::Autonat(event) => self.on_autonat_event(event),
            MeshBehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                step,
                ..
            }) => self.on_closest_peers(id, result, step.last),
            // Record filtering hands every store request to us; we keep none (peer routing
            // only, see behaviour.rs).
            MeshBehaviourEvent::Kad(kad::Event::InboundRequest {
                request:
                    request @ (kad::InboundRequest::PutRecord { .. }
                    | kad::InboundRequest::AddProvider { .. }),
            }) => tracing::debug!(
                ?request,
                "Kademlia store request dropped: this node keeps no records"
            ),
            MeshBehaviourEvent::Attest(e) => self.on_rr_event(Protocol::Attest, e),
            MeshBehaviourEvent::Store(e) => self.on_rr_event(Protocol::Store, e),
            MeshBehaviourEvent::Fetch(e) => self.on_rr_event(Protocol::Fetch, e),
            MeshBehaviourEvent::Coord(e) => self.on_rr_event(Protocol::Coord, e),
            MeshBehaviourEvent::Audit(e) => self.on_rr_event(Protocol::Audit, e),
            _ => {}
        }
    }
}
