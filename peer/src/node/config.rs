//! Node configuration: transport choice, listen and bootstrap addresses, and every bound.

use libp2p::Multiaddr;
use std::time::Duration;

/// Which transports a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// TCP (+ Noise + yamux) and QUIC: real devices, tests on loopback.
    Network,
    /// libp2p's in-memory transport (+ Noise + yamux): the simulator.
    Memory,
}

/// Our request-response protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Coordinator → peer attestation challenge.
    Attest,
    /// Coordinator → peer store / delete share.
    Store,
    /// Requester → holder share fetch.
    Fetch,
    /// Requester → coordinator session create and tickets.
    Coord,
    /// Coordinator → peer entropy audit (a window of raw samples of one source).
    Audit,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 5] = [
        Protocol::Attest,
        Protocol::Store,
        Protocol::Fetch,
        Protocol::Coord,
        Protocol::Audit,
    ];

    /// Stream protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Attest => "/entroshard/attest/1",
            Protocol::Store => "/entroshard/store/1",
            Protocol::Fetch => "/entroshard/fetch/1",
            Protocol::Coord => "/entroshard/coord/1",
            Protocol::Audit => "/entroshard/entropy-audit/1",
        }
    }

    /// (largest request, largest response) in bytes.
    pub fn limits(self) -> (usize, usize) {
        match self {
            // The challenge carries the coordinator's feedback on the peer's sources, which it
            // trims to fit (protocols::attestation::Challenge::fit_feedback).
            Protocol::Attest => (16 * 1024, 8 * 1024),
            // A redistribution's `SubShares` order carries every dealer's signed sub-dealing;
            // its answer, an old holder's signed `SubDeal`.
            Protocol::Store => (protocols::wire::MAX_SUB_SHARES_BYTES + 4 * 1024, 16 * 1024),
            Protocol::Fetch => (protocols::wire::MAX_MESSAGE_BYTES, 4 * 1024),
            Protocol::Coord => (16 * 1024, 2 * protocols::wire::MAX_MESSAGE_BYTES),
            // The answer carries up to MAX_AUDIT_SAMPLES one-byte samples.
            Protocol::Audit => (1024, protocols::wire::MAX_AUDIT_SAMPLES as usize + 1024),
        }
    }

    /// Concurrent inbound streams per connection.
    pub fn max_concurrent_streams(self) -> usize {
        match self {
            Protocol::Fetch => 64,
            _ => 16,
        }
    }
}

/// libp2p's own default for [`NodeConfig::dial_concurrency`].
pub const LIBP2P_DIAL_CONCURRENCY: std::num::NonZeroU8 = match std::num::NonZeroU8::new(8) {
    Some(n) => n,
    None => std::num::NonZeroU8::MIN,
};

/// Bounds of a circuit relay v2 server (libp2p-relay): what one relay carries for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Reservations held at once (each a NATed peer that can be reached through us).
    pub max_reservations: usize,
    /// Reservations one peer may hold.
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before the client must renew it.
    pub reservation_duration: Duration,
    /// Circuits (relayed connections) open at once.
    pub max_circuits: usize,
    /// Circuits one source peer may have open at once.
    pub max_circuits_per_peer: usize,
    /// Longest a circuit lives.
    pub max_circuit_duration: Duration,
    /// Most bytes a circuit carries (both ways); a share fetch is a few KiB.
    pub max_circuit_bytes: u64,
    /// Circuits one source peer may open in a burst, and how often it gets one more (a token
    /// bucket). libp2p's default, 30 and then one every 2 minutes, refused a requester's circuits
    /// after a dozen fetches through the relay.
    pub circuit_rate_per_peer: (u32, Duration),
    /// The same per source IP address (several devices may share one home address).
    pub circuit_rate_per_ip: (u32, Duration),
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 256,
            max_reservations_per_peer: 2,
            reservation_duration: Duration::from_secs(30 * 60),
            max_circuits: 64,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(120),
            max_circuit_bytes: 256 * 1024,
            circuit_rate_per_peer: (64, Duration::from_secs(1)),
            circuit_rate_per_ip: (256, Duration::from_millis(250)),
        }
    }
}

/// How a node is built and bounded.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Transport family.
    pub transport: TransportKind,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Run Kademlia at all.
    pub kademlia: bool,
    /// Kademlia server mode forced on (the coordinator). Otherwise, with [`Self::autonat`], a
    /// node is a server once AutoNAT confirmed a direct address of it and a client until then;
    /// without it libp2p switches a node to server mode when it has any confirmed external
    /// address (a relay reservation counts).
    pub kad_server: bool,
    /// Serve as a circuit relay v2 for NATed peers, within these bounds (`None`: not a relay).
    /// A relay server also serves as an endpoint of DCUtR hole punches between its clients, and
    /// as an AutoNAT v2 server.
    pub relay_server: Option<RelayLimits>,
    /// Relays (multiaddrs ending in `/p2p/<PeerId>`) to hold a reservation on: the node
    /// listens on `<relay>/p2p-circuit`, so it is reachable through them, and its relayed
    /// address appears among its listen addresses (and so in heartbeats and tickets).
    pub relays: Vec<Multiaddr>,
    /// Reservations held at once: the first relays of [`Self::relays`] that answer. When one
    /// ends (its relay died, say) the next relay in the list takes its place, and the one that
    /// failed is skipped for a backoff: 2 s, doubled per failure in a row, at most
    /// [`Self::relay_backoff`].
    pub max_relay_reservations: usize,
    /// The longest a relay whose reservation or dial failed is passed over.
    pub relay_backoff: Duration,
    /// Hold no reservation while AutoNAT finds this node public (others dial it directly); hold
    /// them again if it turns private. Off: reserve whatever AutoNAT finds.
    pub reserve_unless_public: bool,
    /// Run the AutoNAT v2 client: the node learns whether it is reachable (a direct address of
    /// it confirmed by an AutoNAT server's dial-back) and is a Kademlia server only then. On in
    /// the peer agent; a requester (short-lived) and the coordinator (public by definition) do
    /// without.
    pub autonat: bool,
    /// Gossipsub `max_transmit_size`.
    pub gossip_max_transmit: usize,
    /// Gossipsub mesh degree.
    pub gossip_mesh_n: usize,
    /// Gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
    /// Request-response timeout.
    pub request_timeout: Duration,
    /// How long a call to the coordinator (`Protocol::Coord`) may take. Longer than
    /// `request_timeout`: creating or rotating a session waits for every holder's store
    /// acknowledgement, and a holder that died mid-store answers only by its own request
    /// timeout (a SIGKILLed QUIC peer sends no close), after which the coordinator commits
    /// without it. A requester that gave up first would call a placed session a failure.
    pub coordinator_call_timeout: Duration,
    /// Idle connection timeout.
    pub idle_timeout: Duration,
    /// How often each connection is pinged.
    pub ping_interval: Duration,
    /// How long a ping waits for its answer. A connection is closed when two pings in a row
    /// fail: its remote answered nothing for one timeout, an interval, and then the next ping's
    /// stream negotiation (libp2p's 10 s) or timeout, whichever ends first — about 35–45 s with
    /// the defaults (decision 0062), where TCP alone takes minutes to notice a dead link.
    pub ping_timeout: Duration,
    /// Capacity of the command and event channels.
    pub channel_capacity: usize,
    /// Subscribe to the gossip topics and relay them (true on every real node). A leaf that does
    /// not subscribe still publishes, through gossipsub's fanout to the subscribed peers it is
    /// connected to; the simulator makes most devices leaves so thousands of them do not all
    /// validate every message.
    pub gossip_subscribe: bool,
    /// Gossip ends here: a message the owner accepts is consumed, not forwarded (reported to
    /// gossipsub as `Ignore`, which carries no penalty). The coordinator is the only reader of
    /// contributions and heartbeats; forwarding them back into the mesh cost it a pass over every
    /// connected peer per message (libp2p's `forward_msg`), a fifth of its loop's time at 10,000
    /// devices.
    pub gossip_sink: bool,
    /// Most established connections in total; past it new ones are refused (`None`: no bound).
    pub max_established: Option<u32>,
    /// Most connections in negotiation (either direction) at once (`None`: no bound).
    pub max_pending: Option<u32>,
    /// Most concurrent yamux streams per TCP connection.
    pub yamux_max_streams: usize,
    /// QUIC receive window per stream, bytes (bounds what a remote can make us buffer).
    pub quic_max_stream_data: u32,
    /// QUIC receive window per connection, bytes.
    pub quic_max_connection_data: u32,
    /// Most concurrent QUIC streams a remote may open per connection.
    pub quic_max_streams: u32,
    /// Direct addresses of one peer dialled at once for a request. libp2p's default (8) dials a
    /// peer's QUIC and TCP addresses together and keeps the first to connect, paying both
    /// handshakes; 1 dials them in the order given (QUIC first on the fetch path) and falls back
    /// only on failure. Other dials (a hole punch's, above all: its candidates are tried together,
    /// while the remote's NAT is open for them) keep libp2p's default (decision 0060).
    pub dial_concurrency: std::num::NonZeroU8,
}

impl NodeConfig {
    /// Defaults for a real device listening on `listen`.
    pub fn network(listen: Vec<Multiaddr>) -> Self {
        Self {
            transport: TransportKind::Network,
            listen,
            bootstrap: Vec::new(),
            kademlia: true,
            kad_server: false,
            relay_server: None,
            relays: Vec::new(),
            max_relay_reservations: 2,
            relay_backoff: Duration::from_secs(30),
            reserve_unless_public: false,
            autonat: false,
            gossip_max_transmit: 16 * 1024,
            gossip_mesh_n: 6,
            gossip_heartbeat: Duration::from_millis(700),
            request_timeout: Duration::from_secs(10),
            coordinator_call_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(15),
            channel_capacity: 256,
            gossip_subscribe: true,
            gossip_sink: false,
            max_established: None,
            max_pending: None,
            // libp2p's defaults, stated here so the low-memory profile reads as a diff.
            yamux_max_streams: 512,
            quic_max_stream_data: 10_000_000,
            quic_max_connection_data: 15_000_000,
            quic_max_streams: 256,
            dial_concurrency: LIBP2P_DIAL_CONCURRENCY,
        }
    }

    /// The low-memory profile for Pi-class peers: bounded connections, small receive windows
    /// and queues, a smaller gossip mesh, Kademlia in client mode. The largest message any
    /// protocol carries (`protocols::wire::MAX_MESSAGE_BYTES`) still fits in one window.
    pub fn low_memory(self) -> Self {
        let window = u32::try_from(protocols::wire::MAX_MESSAGE_BYTES.saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(256 * 1024);
        Self {
            kad_server: false,
            gossip_mesh_n: 4,
            channel_capacity: 64,
            max_established: Some(48),
            max_pending: Some(16),
            yamux_max_streams: 64,
            quic_max_stream_data: window,
            quic_max_connection_data: window.saturating_mul(4),
            quic_max_streams: 64,
            ..self
        }
    }

    /// Listen addresses on relays: `<relay>/p2p-circuit` for each of [`Self::relays`].
    pub fn relay_listen_addrs(&self) -> Vec<Multiaddr> {
        self.relays
            .iter()
            .filter(|r| matches!(r.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))))
            .map(|r| r.clone().with(libp2p::multiaddr::Protocol::P2pCircuit))
            .collect()
    }

    /// Defaults for an in-memory simulated node.
    pub fn memory(listen: Vec<Multiaddr>) -> Self {
        Self {
            transport: TransportKind::Memory,
            kademlia: false,
            gossip_mesh_n: 4,
            channel_capacity: 64,
            ..Self::network(listen)
        }
    }
}
