//! The device agent built from values instead of files: embedded in a host process (the
//! simulator, fed entropy blocks by its host) or run by `peer run` (fed by one harvest thread per
//! source). Either way the same node, handlers, contribution task and `super::event_loop`.

use super::event_loop::{self, Hosting, LoopSettings};
use super::harvest::{HealthSnapshot, ReadyBlock};
use super::{Shared, coordinator_of, measure::Measurement, metrics::PeerMetrics};
use crate::node::{self, NodeConfig, NodeHandle};
use crate::store::ShareStore;
use libp2p::Multiaddr;
use protocols::identity::NodeKey;
use protocols::ratelimit::RateLimiter;
use protocols::wire::PowerState;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Everything an embedded agent is built from.
pub struct EmbeddedConfig {
    /// The device identity.
    pub key: NodeKey,
    /// The device's share key (`share-key.key` for `peer run`).
    pub share_key: protocols::share_box::BoxSecret,
    /// The pinned coordinator, ending in `/p2p/<PeerId>`.
    pub coordinator: Multiaddr,
    /// Region label announced in heartbeats.
    pub region: String,
    /// Operator label announced in heartbeats.
    pub operator: String,
    /// Power state announced in heartbeats (`peer run` measures its own, falling back to this).
    pub power: PowerState,
    /// How the node is built (the simulator passes a memory-transport config).
    pub node: NodeConfig,
    /// The share store (opened by the host, so it can outlive a stop and a restart).
    pub store: Arc<ShareStore>,
    /// What attestation evidence reports (measured once by the host).
    pub measurement: Measurement,
    /// Seconds between contributions (before jitter).
    pub contribution_interval_s: f64,
    /// Seconds between heartbeats.
    pub heartbeat_interval_s: f64,
    /// Share fetches allowed per remote per second.
    pub fetch_rate_per_s: f64,
    /// Entropy blocks to contribute; `None` runs no contribution task (the host publishes).
    pub blocks: Option<mpsc::Receiver<ReadyBlock>>,
    /// Source health the host keeps up to date (heartbeats and attestation read it).
    pub health: Arc<Mutex<HealthSnapshot>>,
    /// Byzantine holder for the simulator: answers share fetches with "not found" although it
    /// holds the share. `false` is the real agent's behaviour.
    pub withhold_shares: bool,
    /// The sources that answer the coordinator's entropy audits.
    pub audits: super::audit::AuditDesk,
}

/// An agent's membership certificate as it renews it, for a host that publishes in the
/// device's name (the simulator's lying devices).
#[derive(Clone)]
pub struct MembershipView(Arc<super::membership::Membership>);

impl MembershipView {
    /// The certificate the device would carry now, if it holds a usable one.
    pub fn current(&self) -> Option<protocols::wire::SignedEnvelope> {
        self.0.current(super::now_ms())
    }
}

/// A running embedded agent.
pub struct EmbeddedAgent {
    /// Its node.
    pub node: NodeHandle,
    /// Its counters (contributions sent, refusals by reason, …).
    pub metrics: Arc<PeerMetrics>,
    /// Its membership certificate.
    pub membership: MembershipView,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl EmbeddedAgent {
    /// Stops the agent and its node, and waits until they are gone. The store stays open with
    /// the host.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts an embedded agent on the current runtime.
pub async fn start(config: EmbeddedConfig) -> Result<EmbeddedAgent, super::AgentError> {
    let (stop_tx, stop_rx) = oneshot::channel();
    let stop = async move {
        // Stopped on request, or when the host drops the agent.
        let _ = stop_rx.await;
    };
    let (node, metrics, membership, event_loop) = build(config, Hosting::embedded(), stop).await?;
    Ok(EmbeddedAgent {
        node,
        metrics,
        membership,
        stop: Some(stop_tx),
        task: tokio::spawn(event_loop),
    })
}

/// Builds an agent for the given host: its node is started and its contribution task spawned;
/// returns the node, its counters and the event loop (to spawn or to drive), which runs until
/// `stop` resolves.
pub(super) async fn build(
    config: EmbeddedConfig,
    hosting: Hosting,
    stop: impl Future<Output = ()>,
) -> Result<
    (
        NodeHandle,
        Arc<PeerMetrics>,
        MembershipView,
        impl Future<Output = ()>,
    ),
    super::AgentError,
> {
    let (coordinator_peer, coordinator) = coordinator_of(&config.coordinator)?;
    let mut node_config = config.node;
    node_config.bootstrap = vec![config.coordinator.clone()];
    let (node, events) = node::start(&config.key, node_config).await?;
    let metrics = Arc::new(PeerMetrics::default());
    let shared = Arc::new(Shared {
        share_key_statement: protocols::attestation::share_key::sign(
            &config.key,
            config.share_key.public(),
        ),
        key: config.key,
        share_key: config.share_key,
        coordinator,
        store: config.store,
        health: config.health,
        measurement: config.measurement,
        started: Instant::now(),
        fetch_limiter: Mutex::new(RateLimiter::new(
            config.fetch_rate_per_s,
            config.fetch_rate_per_s * 2.0,
            hosting.fetch_limiter_remotes,
        )),
        metrics: metrics.clone(),
        tickets: crate::ticket_cache::TicketCache::default(),
        audits: config.audits,
        redistributions: super::redeal::pending(),
        membership: Arc::default(),
        admission: Mutex::default(),
        lookups: Mutex::default(),
    });
    let mut tasks = vec![tokio::spawn(super::membership::keep(
        shared.clone(),
        node.clone(),
        coordinator_peer,
        config.coordinator.clone(),
    ))];
    tasks.extend(config.blocks.map(|blocks| {
        tokio::spawn(super::contribute::run(
            shared.clone(),
            node.clone(),
            coordinator_peer,
            config.coordinator.clone(),
            config.contribution_interval_s,
            blocks,
        ))
    }));
    let settings = LoopSettings {
        coordinator_peer,
        coordinator_addr: config.coordinator,
        power: config.power,
        region: config.region,
        operator: config.operator,
        heartbeat: Duration::from_secs_f64(config.heartbeat_interval_s),
        withhold_shares: config.withhold_shares,
        hosting,
    };
    let view = MembershipView(shared.membership.clone());
    let event_loop = event_loop::run(shared, node.clone(), events, settings, tasks, stop);
    Ok((node, metrics, view, event_loop))
}
