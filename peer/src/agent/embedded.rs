//! The device agent embedded in a host process (the simulator): the same node, handlers,
//! contribution task and heartbeats as `peer run`, built from values instead of files, and fed
//! entropy blocks by its host instead of one harvest thread per source.

use super::harvest::{HealthSnapshot, ReadyBlock};
use super::{Shared, drop_expired, measure::Measurement, metrics::PeerMetrics, now_ms};
use crate::node::{self, NodeConfig, NodeEvent, NodeHandle, Protocol};
use crate::store::ShareStore;
use libp2p::Multiaddr;
use protocols::identity::NodeKey;
use protocols::ratelimit::RateLimiter;
use protocols::wire::{PowerState, Refusal, Reply};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Everything an embedded agent is built from.
pub struct EmbeddedConfig {
    /// The device identity.
    pub key: NodeKey,
    /// The pinned coordinator, ending in `/p2p/<PeerId>`.
    pub coordinator: Multiaddr,
    /// Region label announced in heartbeats.
    pub region: String,
    /// Operator label announced in heartbeats.
    pub operator: String,
    /// Power state announced in heartbeats.
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
}

/// A running embedded agent.
pub struct EmbeddedAgent {
    /// Its node.
    pub node: NodeHandle,
    /// Its counters (contributions sent, refusals by reason, …).
    pub metrics: Arc<PeerMetrics>,
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
    let coordinator_peer = match config.coordinator.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => {
            return Err(super::AgentError::Sources(
                "coordinator address lacks /p2p/".into(),
            ));
        }
    };
    let coordinator = crate::identity::node_id(&coordinator_peer).ok_or_else(|| {
        super::AgentError::Sources("coordinator PeerId is not an Ed25519 key".into())
    })?;
    let mut node_config = config.node;
    node_config.bootstrap = vec![config.coordinator.clone()];
    let (node, events) = node::start(&config.key, node_config).await?;
    let metrics = Arc::new(PeerMetrics::default());
    let shared = Arc::new(Shared {
        key: config.key,
        coordinator,
        store: config.store,
        health: config.health,
        measurement: config.measurement,
        started: Instant::now(),
        fetch_limiter: Mutex::new(RateLimiter::new(
            config.fetch_rate_per_s,
            config.fetch_rate_per_s * 2.0,
            256,
        )),
        metrics: metrics.clone(),
        tickets: crate::ticket_cache::TicketCache::default(),
    });
    let contributor = config.blocks.map(|blocks| {
        tokio::spawn(super::contribute::run(
            shared.clone(),
            node.clone(),
            coordinator_peer,
            config.coordinator.clone(),
            config.contribution_interval_s,
            blocks,
        ))
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let labels = Labels {
        power: config.power,
        region: config.region,
        operator: config.operator,
        heartbeat: Duration::from_secs_f64(config.heartbeat_interval_s),
        withhold_shares: config.withhold_shares,
    };
    let task = tokio::spawn(run_loop(
        shared,
        node.clone(),
        events,
        labels,
        contributor,
        stop_rx,
    ));
    Ok(EmbeddedAgent {
        node,
        metrics,
        stop: Some(stop_tx),
        task,
    })
}

struct Labels {
    power: PowerState,
    region: String,
    operator: String,
    heartbeat: Duration,
    withhold_shares: bool,
}

async fn run_loop(
    shared: Arc<Shared>,
    node: NodeHandle,
    mut events: mpsc::Receiver<NodeEvent>,
    labels: Labels,
    contributor: Option<tokio::task::JoinHandle<()>>,
    mut stop: oneshot::Receiver<()>,
) {
    // Small devices answer few requests at once; the real agent allows 64.
    let handlers = Arc::new(Semaphore::new(16));
    let mut heartbeat = tokio::time::interval(labels.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeat_seq = now_ms().saturating_mul(1000);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            event = events.recv() => match event {
                Some(NodeEvent::Request { protocol: Protocol::Fetch, responder, .. }) if labels.withhold_shares => {
                    let _ = responder.respond(protocols::wire::encode(&Reply::<()>::refused(Refusal::NotFound))).await;
                }
                Some(event) => super::on_event(&shared, &node, &handlers, event).await,
                None => break,
            },
            _ = heartbeat.tick() => {
                heartbeat_seq += 1;
                super::send_heartbeat(&shared, &node, labels.power, &labels.region, &labels.operator, heartbeat_seq).await;
                drop_expired(&shared).await;
            }
        }
    }
    if let Some(c) = contributor {
        c.abort();
    }
    node.shutdown().await;
}
