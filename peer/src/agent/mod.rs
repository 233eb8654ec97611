//! The device agent (`entroshard peer run`): harvest, contribute, heartbeat, attest, store and serve shares.

mod contribute;
pub mod embedded;
mod handlers;
pub mod harvest;
pub mod measure;
pub mod metrics;

use crate::config::PeerConfig;
use crate::node::{self, NodeConfig, NodeEvent, NodeHandle, STATUS_TOPIC};
use crate::store::ShareStore;
use harvest::HealthSnapshot;
use libp2p::Multiaddr;
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::ratelimit::RateLimiter;
use protocols::wire::{PowerState, SignedEnvelope, StatusHeartbeat, WIRE_VERSION};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc};

/// Concurrent request handlers per agent; past that, requests are refused as busy.
const MAX_HANDLERS: usize = 64;

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
    pub coordinator: NodeId,
    pub store: Arc<ShareStore>,
    pub health: Arc<Mutex<HealthSnapshot>>,
    pub measurement: measure::Measurement,
    pub started: Instant,
    pub fetch_limiter: Mutex<RateLimiter<NodeId>>,
    pub metrics: Arc<metrics::PeerMetrics>,
    pub tickets: crate::ticket_cache::TicketCache,
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
    /// Handlers of the holder `key`, pinned to `coordinator`, over `store`, allowing
    /// `fetch_rate_per_s` share fetches per remote per second.
    pub fn new(
        key: NodeKey,
        coordinator: NodeId,
        store: Arc<ShareStore>,
        measurement: measure::Measurement,
        fetch_rate_per_s: f64,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                key,
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
            }),
        }
    }

    /// Answers one request from `remote` as the agent would; returns the encoded reply.
    pub async fn answer(
        &self,
        protocol: node::Protocol,
        remote: libp2p::PeerId,
        frame: node::RequestFrame,
    ) -> Vec<u8> {
        handlers::answer(self.shared.clone(), protocol, remote, frame).await
    }

    /// The counters the handlers update (served and refused requests by protocol and reason).
    pub fn metrics(&self) -> &metrics::PeerMetrics {
        &self.shared.metrics
    }
}

/// A running agent: its node handle and where it listens (for tests and the demo).
pub struct RunningAgent {
    /// The node.
    pub node: NodeHandle,
    /// This agent's id.
    pub node_id: NodeId,
}

/// Runs the agent described by the config file until `shutdown` resolves.
pub async fn run(
    config_path: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    run_with_readiness(config_path, shutdown, || {}).await
}

/// [`run`], calling `on_ready` once the agent is up: store open, sources started, node
/// listening, metrics served (the daemon tells systemd from there).
pub async fn run_with_readiness(
    config_path: &Path,
    shutdown: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(),
) -> Result<(), AgentError> {
    let config = PeerConfig::load(config_path)?;
    let key = crate::identity::read_key(&config.identity_path())?;
    let measurement = measure::Measurement::take(config_path)?;
    let coordinator_addr: Multiaddr = config
        .coordinator
        .parse()
        .map_err(|e| AgentError::Sources(format!("coordinator: {e}")))?;
    let coordinator_peer = match coordinator_addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => {
            return Err(AgentError::Sources(
                "coordinator address lacks /p2p/".into(),
            ));
        }
    };
    let coordinator = crate::identity::node_id(&coordinator_peer)
        .ok_or_else(|| AgentError::Sources("coordinator PeerId is not an Ed25519 key".into()))?;
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
    node_config.bootstrap = vec![coordinator_addr.clone()];
    node_config.kad_server = config.kad_server;
    if config.profile == crate::config::ResourceProfile::LowMemory {
        node_config = node_config.low_memory();
    }
    let (node, mut events) = node::start(&key, node_config).await?;
    tracing::info!(peer = %node.peer_id(), node = %key.node_id(), coordinator = %coordinator_peer, "peer agent started");

    let metrics = Arc::new(metrics::PeerMetrics::default());
    if let Some(addr) = config.metrics {
        metrics::serve(addr, metrics.clone())
            .await
            .map_err(|e| AgentError::Sources(format!("metrics on {addr}: {e}")))?;
    }
    let shared = Arc::new(Shared {
        key,
        coordinator,
        store,
        health: health.clone(),
        measurement,
        started: Instant::now(),
        tickets: crate::ticket_cache::TicketCache::default(),
        fetch_limiter: Mutex::new(RateLimiter::new(
            config.fetch_rate_per_s,
            config.fetch_rate_per_s * 2.0,
            4096,
        )),
        metrics: metrics.clone(),
    });

    let (block_tx, block_rx) = mpsc::channel(4);
    let idle = Duration::from_millis(200);
    let harvesters = harvest::spawn(pipelines, block_tx, health, idle);

    if let Some(token) = config.join_token.clone() {
        let (node, addr, marker) = (
            node.clone(),
            coordinator_addr.clone(),
            config.data_dir.join("joined"),
        );
        tokio::spawn(async move {
            contribute::redeem_join_token(&node, coordinator_peer, &addr, &token, &marker).await
        });
    }
    let contributor = tokio::spawn(contribute::run(
        shared.clone(),
        node.clone(),
        coordinator_peer,
        coordinator_addr.clone(),
        config.contribution_interval_s,
        block_rx,
    ));
    let mut heartbeat = tokio::time::interval(Duration::from_secs_f64(config.heartbeat_interval_s));
    let handlers = Arc::new(Semaphore::new(MAX_HANDLERS));
    let mut heartbeat_seq = now_ms().saturating_mul(1000);
    tokio::pin!(shutdown);
    on_ready();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = events.recv() => match event {
                Some(event) => on_event(&shared, &node, &handlers, event).await,
                None => break,
            },
            _ = heartbeat.tick() => {
                heartbeat_seq += 1;
                redial_coordinator(&node, coordinator_peer, &coordinator_addr).await;
                let power = measure::power_state(&config.sources.system_root).unwrap_or(PowerState::Mains);
                send_heartbeat(&shared, &node, power, &config.region, &config.operator, heartbeat_seq).await;
                drop_expired(&shared).await;
            }
        }
    }
    tracing::info!("peer agent stopping");
    contributor.abort();
    node.shutdown().await;
    // Harvest threads notice the closed channel within one idle period; they are not joined
    // because a feed on stdin may block in read() indefinitely.
    drop(harvesters);
    Ok(())
}

async fn on_event(
    shared: &Arc<Shared>,
    node: &NodeHandle,
    handlers: &Arc<Semaphore>,
    event: NodeEvent,
) {
    match event {
        NodeEvent::Request {
            protocol,
            peer,
            frame,
            responder,
        } => {
            let Ok(permit) = handlers.clone().try_acquire_owned() else {
                let _ = responder.respond(protocols::wire::busy_reply()).await;
                return;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let reply = handlers::answer(shared, protocol, peer, frame).await;
                let _ = responder.respond(reply).await;
                drop(permit);
            });
        }
        NodeEvent::Gossip {
            id,
            propagation_source,
            author,
            data,
            topic,
        } => {
            // A plain peer relays only gossip whose envelope verifies and names the gossip author.
            let verdict = contribute::relay_verdict(&topic, author.as_ref(), &data);
            let _ = node.report_gossip(id, propagation_source, verdict).await;
        }
        NodeEvent::Connected(peer) => {
            shared
                .metrics
                .gossip_peers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(%peer, "connected");
        }
        NodeEvent::Disconnected(peer) => {
            shared
                .metrics
                .gossip_peers
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(%peer, "disconnected");
        }
        NodeEvent::Listening(addr) => tracing::info!(%addr, "listening"),
        _ => {}
    }
}

/// Dials the coordinator again when no connection to it is open (it restarted, or the network
/// dropped): gossip and the coordinator's orders reach this peer only over that connection, and
/// the bootstrap dial happens once at start. Called once per heartbeat, which bounds the rate.
async fn redial_coordinator(node: &NodeHandle, coordinator: libp2p::PeerId, addr: &Multiaddr) {
    match node.connected_peers().await {
        Ok(peers) if !peers.contains(&coordinator) => {
            tracing::debug!(%addr, "not connected to the coordinator; dialling it");
            if let Err(e) = node.dial(addr.clone()).await {
                tracing::debug!(%addr, error = %e, "coordinator dial failed");
            }
        }
        _ => {}
    }
}

/// Shares past their session's expiry are deleted without waiting for the coordinator.
async fn drop_expired(shared: &Shared) {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_expired(now_ms())).await {
        Ok(Ok(n)) if n > 0 => tracing::info!(deleted = n, "expired shares deleted"),
        Ok(Err(e)) => tracing::warn!(error = %e, "expired shares could not be deleted"),
        _ => {}
    }
}

async fn send_heartbeat(
    shared: &Shared,
    node: &NodeHandle,
    power: PowerState,
    region: &str,
    operator: &str,
    seq: u64,
) {
    let (shares_held, free) = {
        let store = shared.store.clone();
        tokio::task::spawn_blocking(move || {
            (store.len().unwrap_or(0), store.free_slots().unwrap_or(0))
        })
        .await
        .unwrap_or((0, 0))
    };
    shared
        .metrics
        .shares_held
        .store(u64::from(shares_held), std::sync::atomic::Ordering::Relaxed);
    let sources = shared
        .health
        .lock()
        .map(|h| h.sources.clone())
        .unwrap_or_default();
    shared.metrics.set_source_health(
        sources
            .iter()
            .map(|s| (s.source.clone(), s.samples, u64::from(s.failures)))
            .collect(),
    );
    let listen_addrs = node
        .listen_addrs()
        .await
        .unwrap_or_default()
        .iter()
        .map(|a| a.to_string())
        .collect();
    let beat = StatusHeartbeat {
        v: WIRE_VERSION,
        seq,
        at_ms: now_ms(),
        power,
        region: region.to_string(),
        operator: operator.to_string(),
        uptime_s: shared.started.elapsed().as_secs(),
        free_store_slots: free,
        shares_held,
        listen_addrs,
        sources,
    };
    let bytes = SignedEnvelope::seal(&shared.key, &beat).to_bytes();
    if let Err(e) = node.publish(STATUS_TOPIC, bytes).await {
        tracing::debug!(error = %e, "heartbeat not published (no gossip peers yet)");
    }
}
