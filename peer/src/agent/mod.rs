//! The device agent (`entroshard peer run`): harvest, contribute, heartbeat, attest, store and serve shares.

mod admission;
pub mod audit;
#[cfg(test)]
mod boxed_tests;
mod contribute;
mod coordinator_call;
pub mod embedded;
mod event_loop;
pub mod feedback;
mod handlers;
pub mod harvest;
pub mod measure;
mod membership;
pub mod metrics;
mod prove;
pub mod readiness;
mod redeal;
#[cfg(test)]
mod redeal_tests;
mod source_series;

use crate::config::PeerConfig;
use crate::node::NodeConfig;
use crate::store::ShareStore;
use embedded::EmbeddedConfig;
use event_loop::Hosting;
use harvest::HealthSnapshot;
use libp2p::{Multiaddr, PeerId};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::ratelimit::RateLimiter;
use protocols::share_box::BoxSecret;
use protocols::wire::PowerState;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;

/// Agent start-up failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AgentError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Identity file.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// Share store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Node.
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// Sources.
    #[error("sources: {0}")]
    Sources(String),
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// State shared by the agent's tasks.
pub(crate) struct Shared {
    pub key: NodeKey,
    /// The secret every share this device holds is boxed to.
    pub share_key: BoxSecret,
    /// `(NodeId, PK_h)` signed by `key`, sent in every attestation evidence.
    pub share_key_statement: protocols::wire::SignedEnvelope,
    pub coordinator: NodeId,
    pub store: Arc<ShareStore>,
    pub health: Arc<Mutex<HealthSnapshot>>,
    pub measurement: measure::Measurement,
    pub started: Instant,
    pub fetch_limiter: Mutex<RateLimiter<NodeId>>,
    pub metrics: Arc<metrics::PeerMetrics>,
    pub tickets: crate::ticket_cache::TicketCache,
    pub audits: audit::AuditDesk,
    /// Sub-shares of redistributions this device is a new holder of, until combined (bounded).
    pub redistributions: Mutex<protocols::redistribution::new_holder::PendingRedistributions>,
    /// This device's membership certificate, carried in its gossip.
    pub membership: Arc<membership::Membership>,
    /// Certificates of other devices verified while judging their gossip for forwarding.
    pub admission: Mutex<protocols::membership::Admission>,
    /// Authors without a certificate asked about (and refused) by the coordinator.
    pub lookups: Mutex<admission::Lookups>,
}

/// The coordinator's PeerId and NodeId from its address, which must end in `/p2p/<PeerId>`.
fn coordinator_of(addr: &Multiaddr) -> Result<(PeerId, NodeId), AgentError> {
    let peer = match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => {
            return Err(AgentError::Sources(
                "coordinator address lacks /p2p/".into(),
            ));
        }
    };
    let node = crate::identity::node_id(&peer)
        .ok_or_else(|| AgentError::Sources("coordinator PeerId is not an Ed25519 key".into()))?;
    Ok((peer, node))
}

/// A holder's request handlers without a node or a swarm, for the fuzz target
/// `holder_requests`: the same [`handlers::answer`] the agent runs for every inbound request,
/// over a real share store. The agent itself does not use this type.
///
/// [`Self::answer`] must run inside a tokio runtime (store access goes through
/// `spawn_blocking`).
#[doc(hidden)]
pub struct DetachedHandlers {
    shared: Arc<Shared>,
}

impl DetachedHandlers {
    /// Handlers of the holder `key` (its shares boxed to `share_key`), pinned to `coordinator`,
    /// over `store`, allowing `fetch_rate_per_s` share fetches per remote per second.
    pub fn new(
        key: NodeKey,
        share_key: BoxSecret,
        coordinator: NodeId,
        store: Arc<ShareStore>,
        measurement: measure::Measurement,
        fetch_rate_per_s: f64,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                share_key_statement: protocols::attestation::share_key::sign(
                    &key,
                    share_key.public(),
                ),
                key,
                share_key,
                coordinator,
                store,
                health: Arc::new(Mutex::new(HealthSnapshot::default())),
                measurement,
                started: Instant::now(),
                fetch_limiter: Mutex::new(RateLimiter::new(
                    fetch_rate_per_s,
                    fetch_rate_per_s * 2.0,
                    4096,
                )),
                metrics: Arc::new(metrics::PeerMetrics::default()),
                tickets: crate::ticket_cache::TicketCache::default(),
                audits: audit::AuditDesk::default(),
                redistributions: redeal::pending(),
                membership: Arc::default(),
                admission: Mutex::default(),
                lookups: Mutex::default(),
            }),
        }
    }

    /// Answers one request from `remote` as the agent would; returns the encoded reply.
    pub async fn answer(
        &self,
        protocol: crate::node::Protocol,
        remote: libp2p::PeerId,
        frame: crate::node::RequestFrame,
    ) -> Vec<u8> {
        handlers::answer(self.shared.clone(), protocol, remote, frame).await
    }

    /// The counters the handlers update (served and refused requests by protocol and reason).
    pub fn metrics(&self) -> &metrics::PeerMetrics {
        &self.shared.metrics
    }
}

/// Runs the agent described by the config file until `shutdown` resolves.
pub async fn run(
    config_path: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    run_with_readiness(config_path, shutdown, || {}).await
}

/// [`run`], calling `on_ready` once the agent is up: store open, sources started, node
/// listening, metrics served (the daemon tells systemd from there). The agent is built as the
/// [`embedded`] one, fed by one harvest thread per source.
pub async fn run_with_readiness(
    config_path: &Path,
    shutdown: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(),
) -> Result<(), AgentError> {
    let config = PeerConfig::load(config_path)?;
    let key = crate::identity::read_key(&config.identity_path())?;
    let (share_key, created) = crate::share_key::load_or_create(&config.share_key_path())?;
    if created {
        tracing::info!(
            path = %config.share_key_path().display(),
            share_key = %protocols::share_box::fingerprint(&share_key.public()),
            "this device had no share key (installed before holder share keys): created one; \
             the coordinator places shares on it once its next attestation states it"
        );
    }
    let measurement = measure::Measurement::take(config_path)?;
    let coordinator_addr: Multiaddr = config
        .coordinator
        .parse()
        .map_err(|e| AgentError::Sources(format!("coordinator: {e}")))?;
    let (coordinator_peer, _) = coordinator_of(&coordinator_addr)?;
    let store_path = config.store_path();
    let capacity = config.store_capacity;
    let cache_bytes = config.profile.store_cache_bytes();
    let store = Arc::new(
        tokio::task::spawn_blocking(move || {
            ShareStore::open_with_cache(&store_path, capacity, cache_bytes)
        })
        .await
        .map_err(|e| AgentError::Sources(e.to_string()))??,
    );
    let pipelines = crate::sources::build(&config.sources).map_err(AgentError::Sources)?;
    let health = Arc::new(Mutex::new(HealthSnapshot::default()));
    harvest::refresh_all(&pipelines, &health);

    let mut node_config = NodeConfig::network(
        config
            .listen
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
    );
    node_config.kad_server = config.kad_server;
    node_config.relay_server = config.relay_server.then(crate::node::RelayLimits::default);
    node_config.relays = config.reservation_relays();
    node_config.reserve_unless_public = config.reserve_unless_public();
    // Reachability (and so Kademlia server or client mode) is found by AutoNAT.
    node_config.autonat = true;
    if config.profile == crate::config::ResourceProfile::LowMemory {
        node_config = node_config.low_memory();
    }
    let (block_tx, block_rx) = mpsc::channel(4);
    let idle = Duration::from_millis(200);
    let audits = audit::AuditDesk::default();
    let modelling = harvest::Modelling {
        store: Some(crate::sources::models::ModelStore::in_data_dir(
            &config.data_dir,
        )),
        binary_sha256: measurement
            .binary_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        policy: crate::pipeline::AssessPolicy {
            max_samples: config.sources.assess_samples,
            max_time: Duration::try_from_secs_f64(config.sources.assess_max_s)
                .unwrap_or(Duration::from_secs(5)),
        },
    };
    let health_now = health.clone();
    let harvesters = harvest::spawn(
        pipelines,
        block_tx,
        health.clone(),
        idle,
        Some(modelling),
        &audits,
    );
    let node_id = key.node_id();
    let (node, metrics, _, event_loop) = embedded::build(
        EmbeddedConfig {
            key,
            share_key,
            coordinator: coordinator_addr.clone(),
            region: config.region.clone(),
            operator: config.operator.clone(),
            power: PowerState::Mains,
            node: node_config,
            store,
            measurement,
            contribution_interval_s: config.contribution_interval_s,
            heartbeat_interval_s: config.heartbeat_interval_s,
            fetch_rate_per_s: config.fetch_rate_per_s,
            blocks: Some(block_rx),
            health,
            withhold_shares: false,
            audits,
        },
        Hosting::daemon(config.sources.system_root.clone()),
        shutdown,
    )
    .await?;
    tracing::info!(peer = %node.peer_id(), node = %node_id, coordinator = %coordinator_peer, "peer agent started");

    if let Some(addr) = config.metrics {
        let connected = metrics.clone();
        let ready: crate::metrics_http::Ready = Arc::new(move || {
            let sources = health_now
                .lock()
                .map(|h| h.sources.clone())
                .unwrap_or_default();
            readiness::judge(connected.coordinator_connected.get() == 1, &sources)
        });
        metrics::serve(addr, metrics, &node, ready)
            .await
            .map_err(|e| AgentError::Sources(format!("metrics on {addr}: {e}")))?;
    }
    if let Some(token) = config.join_token()? {
        let marker = config.data_dir.join("joined");
        tokio::spawn(async move {
            contribute::redeem_join_token(
                &node,
                coordinator_peer,
                &coordinator_addr,
                &token,
                &marker,
            )
            .await
        });
    }
    on_ready();
    // Driven here rather than spawned, as before the agents were one: `peer run`'s loop has the
    // runtime's main thread to itself.
    event_loop.await;
    tracing::info!("peer agent stopping");
    // Harvest threads notice the closed channel within one idle period; they are not joined
    // because a feed on stdin may block in read() indefinitely.
    drop(harvesters);
    Ok(())
}
