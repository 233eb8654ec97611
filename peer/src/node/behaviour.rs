//! The composed libp2p behaviour: gossipsub, Kademlia, identify, ping, circuit relay v2 (server
//! and client), DCUtR, AutoNAT v2 (client and server) and our request-response protocols.

use super::codec::FramedCodec;
use super::config::{NodeConfig, Protocol, RelayLimits};
use libp2p::swarm::{NetworkBehaviour, behaviour::toggle::Toggle};
use libp2p::{
    PeerId, StreamProtocol, autonat, connection_limits, dcutr, gossipsub, identify,
    identity::Keypair, kad, ping, relay, request_response,
};
use std::time::Duration;

/// Gossip topic of sealed entropy contributions.
pub const CONTRIBUTIONS_TOPIC: &str = "entroshard/contributions/1";
/// Gossip topic of status heartbeats.
pub const STATUS_TOPIC: &str = "entroshard/status/1";
/// Protocol name announced by identify.
pub const IDENTIFY_PROTOCOL: &str = "/entroshard/id/1";

type Rr = request_response::Behaviour<FramedCodec>;

/// Everything a node speaks. Kademlia is optional (off in large simulations).
#[derive(NetworkBehaviour)]
pub struct MeshBehaviour {
    /// Contributions and heartbeats.
    pub gossipsub: gossipsub::Behaviour,
    /// Peer routing.
    pub kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// Address and protocol exchange.
    pub identify: identify::Behaviour,
    /// Liveness and round-trip times.
    pub ping: ping::Behaviour,
    /// Attestation challenges.
    pub attest: Rr,
    /// Store and delete share orders.
    pub store: Rr,
    /// Share fetches (over QUIC in practice).
    pub fetch: Rr,
    /// Session creation and tickets (coordinator).
    pub coord: Rr,
    /// Coordinator → peer entropy audits.
    pub audit: Rr,
    /// Bounds on pending and established connections (`NodeConfig::max_established`).
    pub limits: connection_limits::Behaviour,
    /// Circuit relay v2 server (the coordinator and publicly reachable peers), bounded.
    pub relay: Toggle<relay::Behaviour>,
    /// Circuit relay v2 client: reservations on relays, relayed dials (real transports only).
    pub relay_client: Toggle<relay::client::Behaviour>,
    /// Hole punching: upgrades a relayed connection to a direct one when the NATs allow it.
    pub dcutr: Toggle<dcutr::Behaviour>,
    /// AutoNAT v2 client: asks AutoNAT servers to dial back each candidate external address
    /// (what identify saw) and confirms those they reach; the node's reachability follows.
    pub autonat: Toggle<autonat::v2::client::Behaviour>,
    /// AutoNAT v2 server: dials back the addresses clients ask about (publicly reachable nodes).
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
}

fn relay_config(limits: &RelayLimits) -> relay::Config {
    let nonzero = |n: u32| std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN);
    let (peer_burst, peer_every) = limits.circuit_rate_per_peer;
    let (ip_burst, ip_every) = limits.circuit_rate_per_ip;
    relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: limits.max_reservations_per_peer,
        reservation_duration: limits.reservation_duration,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        // Circuits are rate-limited by ours (below); libp2p's per-peer and per-IP rate limiters
        // of reservations stay.
        circuit_src_rate_limiters: Vec::new(),
        ..relay::Config::default()
    }
    .circuit_src_per_peer(nonzero(peer_burst), peer_every)
    .circuit_src_per_ip(nonzero(ip_burst), ip_every)
}

fn rr(protocol: Protocol, timeout: Duration) -> Rr {
    let (max_request, max_response) = protocol.limits();
    request_response::Behaviour::with_codec(
        FramedCodec {
            max_request,
            max_response,
        },
        [(
            StreamProtocol::new(protocol.name()),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(protocol.max_concurrent_streams()),
    )
}

impl MeshBehaviour {
    /// Builds the behaviour for `key` under `config`; `relay_client` is the behaviour half of
    /// the relay client transport (absent on the memory transport).
    pub fn new(
        key: &Keypair,
        config: &NodeConfig,
        relay_client: Option<relay::client::Behaviour>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let local = PeerId::from(key.public());
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(config.gossip_max_transmit)
            .mesh_n(config.gossip_mesh_n)
            .mesh_n_low(config.gossip_mesh_n.saturating_sub(2).max(1))
            .mesh_n_high(config.gossip_mesh_n.saturating_mul(2))
            .mesh_outbound_min(1.min(config.gossip_mesh_n / 2))
            .heartbeat_interval(config.gossip_heartbeat)
            .build()
            .map_err(|e| format!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )?;
        gossipsub
            .with_peer_score(score_params(), score_thresholds())
            .map_err(|e| format!("gossipsub scoring: {e}"))?;
        let topics: &[&str] = if config.gossip_subscribe {
            &[CONTRIBUTIONS_TOPIC, STATUS_TOPIC]
        } else {
            &[]
        };
        for topic in topics {
            gossipsub
                .subscribe(&gossipsub::IdentTopic::new(*topic))
                .map_err(|e| format!("subscribe {topic}: {e}"))?;
        }
        let kad = config.kademlia.then(|| {
            // Kademlia is for peer routing only: we store no records and no provider records,
            // and a NATed device turns server once it has a relayed address, so what remotes
            // ask it to store is handed to us (and dropped) instead of stored, and the store
            // itself holds nothing (it held up to 1,024 values of 65 KiB by default).
            let mut kad_config = kad::Config::new(kad::PROTOCOL_NAME);
            kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
            let store = kad::store::MemoryStore::with_config(
                local,
                kad::store::MemoryStoreConfig {
                    max_records: 0,
                    max_value_bytes: 0,
                    max_providers_per_key: 0,
                    max_provided_keys: 0,
                },
            );
            let mut kad = kad::Behaviour::with_config(local, store, kad_config);
            // Forced server on the coordinator. Elsewhere AutoNAT decides (the swarm task turns
            // a node server once a direct address of it is confirmed reachable, client when none
            // is); without AutoNAT, libp2p decides from confirmed external addresses.
            kad.set_mode(if config.kad_server {
                Some(kad::Mode::Server)
            } else if config.autonat {
                Some(kad::Mode::Client)
            } else {
                None
            });
            kad
        });
        Ok(Self {
            gossipsub,
            kad: kad.into(),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(super::swarm_task::incarnations::agent_version()),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(config.ping_interval)
                    .with_timeout(config.ping_timeout),
            ),
            attest: rr(Protocol::Attest, config.request_timeout),
            store: rr(Protocol::Store, config.request_timeout),
            // A share fetch is one small exchange; a holder that has not answered in a few seconds
            // is dead or overloaded, and the requester hedges with another holder anyway.
            fetch: rr(
                Protocol::Fetch,
                config
                    .request_timeout
                    .min(std::time::Duration::from_secs(3)),
            ),
            coord: rr(Protocol::Coord, config.coordinator_call_timeout),
            audit: rr(Protocol::Audit, config.request_timeout),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(config.max_established)
                    .with_max_pending_incoming(config.max_pending)
                    .with_max_pending_outgoing(config.max_pending),
            ),
            relay: config
                .relay_server
                .as_ref()
                .map(|limits| {
                    let mut relay = relay::Behaviour::new(local, relay_config(limits));
                    // Configured as a relay because it is publicly reachable: advertise the hop
                    // protocol now instead of waiting for a confirmed external address.
                    relay.set_status(Some(relay::Status::Enable));
                    relay
                })
                .into(),
            dcutr: relay_client
                .is_some()
                .then(|| dcutr::Behaviour::new(local))
                .into(),
            relay_client: relay_client.into(),
            autonat: config
                .autonat
                .then(autonat::v2::client::Behaviour::default)
                .into(),
            autonat_server: config
                .relay_server
                .is_some()
                .then(autonat::v2::server::Behaviour::default)
                .into(),
        })
    }

    /// The request-response behaviour of `protocol`.
    pub fn rr_mut(&mut self, protocol: Protocol) -> &mut Rr {
        match protocol {
            Protocol::Attest => &mut self.attest,
            Protocol::Store => &mut self.store,
            Protocol::Fetch => &mut self.fetch,
            Protocol::Coord => &mut self.coord,
            Protocol::Audit => &mut self.audit,
        }
    }
}

/// Peer scoring (docs/protocol/gossip-admission.md, "Scoring"): libp2p's peer-wide defaults,
/// and on both topics a penalty for every message this node refused (P4, squared, decaying over
/// 10 minutes: three refusals pass the graylist threshold) beside small, capped rewards for time
/// in the mesh and first deliveries (at most +10 a topic). Mesh delivery rates (P3) are not
/// scored: heartbeats and contributions are sparse and uneven, and an honest quiet mesh would
/// be punished.
pub fn score_params() -> gossipsub::PeerScoreParams {
    let ten_minutes = Duration::from_secs(600);
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.05,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(ten_minutes),
        first_message_deliveries_cap: 5.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(ten_minutes),
        ..gossipsub::TopicScoreParams::default()
    };
    let mut params = gossipsub::PeerScoreParams::default();
    for name in [CONTRIBUTIONS_TOPIC, STATUS_TOPIC] {
        params
            .topics
            .insert(gossipsub::IdentTopic::new(name).hash(), topic.clone());
    }
    params
}

fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    }
}
