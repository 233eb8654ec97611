//! Starting the coordinator: its database loaded, its node, metrics endpoint and admin socket
//! started, the core's state built, and the loop run (in this task, or spawned for tests, the
//! demo and the simulator).

use super::errors::StartError;
use super::{AdminRequest, Ctx, State, now_ms, os_random, run_loop};
use crate::config::CoordinatorConfig;
use crate::core::state::Loaded;
use crate::db::CoordinatorDb;
use crate::intake::Intake;
use crate::master_key::SharedKeyring;
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle};
use protocols::entropy::CreditPolicy;
use protocols::identity::NodeKey;
use protocols::wire::{CoordinatorRecord, SignedEnvelope, WIRE_VERSION};
use std::sync::Arc;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// A running coordinator, for tests and the demo.
pub struct Handle {
    /// Its node.
    pub node: NodeHandle,
    /// Admin requests.
    pub admin: mpsc::Sender<AdminRequest>,
    /// Its metrics.
    pub metrics: Arc<crate::metrics::CoordinatorMetrics>,
}

/// Runs the coordinator from its data directory until `shutdown` resolves.
pub async fn run(
    config: CoordinatorConfig,
    key: NodeKey,
    db: Arc<CoordinatorDb>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let socket = config.admin_socket();
    let (ctx, state, events, admin_rx, admin_tx) = start(config, key, db, None).await?;
    crate::admin::serve(&socket, ctx.db.clone(), admin_tx)
        .await
        .map_err(|source| StartError::AdminSocket {
            path: socket.clone(),
            source,
        })?;
    run_loop(ctx, state, events, admin_rx, shutdown).await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

pub(super) type Started = (
    Arc<Ctx>,
    State,
    mpsc::Receiver<NodeEvent>,
    mpsc::Receiver<AdminRequest>,
    mpsc::Sender<AdminRequest>,
);

pub(super) async fn start(
    config: CoordinatorConfig,
    key: NodeKey,
    db: Arc<CoordinatorDb>,
    node_config: Option<NodeConfig>,
) -> Result<Started, StartError> {
    let load = db.clone();
    let master_key_path = config.master_key_path();
    let (secrets, keyring, restored, loaded) =
        tokio::task::spawn_blocking(move || -> Result<_, StartError> {
            let s = load.secrets()?.ok_or(StartError::NotInitialised)?;
            let keyring = crate::master_key::open(&master_key_path, &load)?;
            let loaded = Loaded {
                enrolments: load.enrolments()?,
                allowlist: load.allowed_binaries()?,
                requesters: load.requesters()?,
                sessions: load.sessions()?,
            };
            Ok((s, keyring, load.restored_from()?, loaded))
        })
        .await
        .map_err(|e| StartError::Task(e.to_string()))??;
    let mut node_config = node_config.unwrap_or_else(|| {
        let mut c = NodeConfig::network(
            config
                .listen
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
        );
        c.kad_server = true;
        // The coordinator is reachable by every device: NATed ones reserve a slot on it.
        c.relay_server = Some(peer::node::RelayLimits::default());
        c
    });
    // The coordinator reads every contribution and heartbeat; nobody needs them after it.
    node_config.gossip_sink = true;
    let (node, events) = node::start(&key, node_config).await?;
    let noise_static = Zeroizing::new(secrets.noise_static);
    let record = SignedEnvelope::seal(
        &key,
        &CoordinatorRecord {
            v: WIRE_VERSION,
            noise_static: peer::contribution::static_public(&noise_static),
            issued_at_ms: now_ms(),
        },
    );
    let (enrolled, sessions) = (loaded.enrolments.len(), loaded.sessions.len());
    tracing::info!(peer = %node.peer_id(), enrolled, sessions, "coordinator started");
    // A block is worth what its accounting says, capped by its source's audit; no factor on
    // top (decision 0039). The per-peer cap per round stays.
    let credit = CreditPolicy::new(1.0, config.per_peer_cap_bits)?;
    let intake = Intake::with_rules(os_random(), credit, config.duplicate_rules())?;
    let metrics = Arc::new(crate::metrics::CoordinatorMetrics::default());
    let readiness = Arc::new(peer::telemetry::Readiness::not_yet(
        "starting: the pool has not been checked yet",
    ));
    if let Some(addr) = config.metrics {
        let bound = serve_metrics(addr, &metrics, &node, &readiness)
            .await
            .map_err(|source| StartError::Metrics { addr, source })?;
        tracing::info!(%bound, "serving /metrics, /health and /ready");
    }
    let ctx = Arc::new(Ctx {
        metrics,
        readiness,
        masters: SharedKeyring::new(keyring),
        restored,
        noise_static,
        record,
        db,
        node,
        config,
        key,
        assessing: tokio::sync::Semaphore::new(1),
    });
    let (admin_tx, admin_rx) = mpsc::channel(32);
    let state = State::new(&ctx.config, loaded, intake);
    Ok((ctx, state, events, admin_rx, admin_tx))
}

/// Serves the coordinator's series with the build info and the events its node dropped on
/// `/metrics`, with `/health` and `/ready` (the loop's last verdict).
async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: &crate::metrics::CoordinatorMetrics,
    node: &NodeHandle,
    readiness: &Arc<peer::telemetry::Readiness>,
) -> std::io::Result<std::net::SocketAddr> {
    let mut registry = peer::telemetry::registry("coordinator");
    metrics.register(&mut registry);
    registry.register_collector(Box::new(node.dropped()));
    let readiness = readiness.clone();
    let endpoints = peer::metrics_http::Endpoints {
        registry: Arc::new(registry),
        ready: Arc::new(move || readiness.get()),
    };
    peer::metrics_http::serve(addr, endpoints).await
}

/// Starts a coordinator in this process and returns its handle (the loop runs as a task).
pub async fn spawn(
    config: CoordinatorConfig,
    key: NodeKey,
    db: Arc<CoordinatorDb>,
) -> Result<Handle, StartError> {
    spawn_on(config, key, db, None).await
}

/// Like [`spawn`], on a node built from `node_config` instead of the config's listen addresses
/// (the simulator passes a memory-transport config).
pub async fn spawn_with_node(
    config: CoordinatorConfig,
    key: NodeKey,
    db: Arc<CoordinatorDb>,
    node_config: NodeConfig,
) -> Result<Handle, StartError> {
    spawn_on(config, key, db, Some(node_config)).await
}

async fn spawn_on(
    config: CoordinatorConfig,
    key: NodeKey,
    db: Arc<CoordinatorDb>,
    node_config: Option<NodeConfig>,
) -> Result<Handle, StartError> {
    let (ctx, state, events, admin_rx, admin_tx) = start(config, key, db, node_config).await?;
    let node = ctx.node.clone();
    let metrics = ctx.metrics.clone();
    tokio::spawn(run_loop(
        ctx,
        state,
        events,
        admin_rx,
        std::future::pending(),
    ));
    Ok(Handle {
        node,
        admin: admin_tx,
        metrics,
    })
}
