//! The coordinator daemon: one loop that owns the peer table and the pool; slow work runs in tasks
//! that report back over a bounded channel.

mod attest;
mod audit;
mod detached;
mod entropy_audit;
pub mod errors;
pub mod figures;
mod gossip;
mod holders;
mod master_keys;
mod placing;
mod readiness;
mod reports;
pub mod rotation;
mod sessions;
mod upkeep;

use crate::config::CoordinatorConfig;
use crate::db::CoordinatorDb;
use crate::intake::Intake;
use crate::master_key::{Keyring, MasterKey};
use crate::peers::PeerTable;
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle, Protocol, RequestFrame};
use protocols::entropy::CreditPolicy;
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::sealing::{ShareOpeningKey, ShareSlot};
use protocols::wire::{
    self, CoordinatorCall, CoordinatorRecord, CoordinatorRequest, Refusal, Reply, SignedEnvelope,
    WIRE_VERSION,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

#[doc(hidden)]
pub use detached::DetachedService;
pub(crate) use detached::ReplyTo;
pub use sessions::SessionSummary;

pub use crate::admin::requests::AdminRequest;
pub use crate::os::now_ms;
pub(crate) use crate::os::os_random;
use errors::StartError;

/// What never changes while the daemon runs; shared with its tasks.
pub(crate) struct Ctx {
    pub key: NodeKey,
    /// The sealing master keys; replaced (never held across an await) when a master-key
    /// rotation starts or ends.
    pub masters: std::sync::RwLock<Keyring>,
    /// The backup the database was restored from, if any (decision 0046).
    pub restored: Option<crate::db::RestoredFrom>,
    pub noise_static: Zeroizing<[u8; 32]>,
    pub record: SignedEnvelope,
    pub db: Arc<CoordinatorDb>,
    pub node: NodeHandle,
    pub config: CoordinatorConfig,
    pub metrics: Arc<crate::metrics::CoordinatorMetrics>,
    /// Whether a session could be created now (`GET /ready`), refreshed at each upkeep tick.
    pub readiness: Arc<peer::telemetry::Readiness>,
    /// Entropy audit windows assessed one at a time (each is seconds of CPU on a small board).
    pub assessing: tokio::sync::Semaphore,
}

impl Ctx {
    /// The master keys in force now.
    pub fn keyring(&self) -> Keyring {
        self.masters
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the master keys in force (after `master.key` holds them durably).
    pub fn set_keyring(&self, ring: Keyring) {
        *self
            .masters
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
    }

    /// The key new shares are sealed under; a placement holds it until it ends, which keeps a
    /// retiring key in force while a placement still seals under it.
    pub fn sealing_key(&self) -> Arc<MasterKey> {
        self.keyring().current().clone()
    }

    /// The retiring master key's id, and whether anything besides the keyring still holds it (a
    /// placement that seals under it). `None` when no master-key rotation is under way.
    pub fn retiring_key(&self) -> Option<(protocols::sealing::MasterKeyId, bool)> {
        let ring = self
            .masters
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.retiring().map(|k| (k.id(), Arc::strong_count(k) > 1))
    }

    /// The key of `slot` of `record`'s current epoch, derived from the master key that epoch is
    /// sealed under; `None` if no key in force has that id (which the start-up check and the
    /// retirement rule exclude).
    pub fn opening_key(
        &self,
        record: &crate::db::SessionRecord,
        slot: &ShareSlot,
    ) -> Option<ShareOpeningKey> {
        let ring = self.keyring();
        let key = match &record.sealed_under {
            Some(id) => ring.get(id),
            None => Some(&**ring.current()),
        };
        if key.is_none() {
            tracing::error!(session = %record.session, key = ?record.sealed_under, "no master key in force opens this session");
        }
        key.map(|k| k.share_key(slot))
    }
}

/// Results tasks send back to the loop.
pub(crate) enum Internal {
    Attested {
        node: NodeId,
        nonce: [u8; 32],
        reply: Result<Vec<u8>, String>,
        /// When the answer reached this node (coordinator clock): the answer window is judged
        /// on it, not on when the loop got round to it.
        received_at_ms: u64,
    },
    SessionStored {
        session: protocols::ids::SessionId,
        holders: Vec<NodeId>,
    },
    /// An expired session's deletion finished (successfully or not: a failure is retried).
    ExpiryDone { session: protocols::ids::SessionId },
    /// Owed deletions of these sessions were sent (those not acknowledged are resent later).
    Settled {
        sessions: Vec<protocols::ids::SessionId>,
        /// Holders whose proof before deleting a superseded share failed.
        faults: Vec<(NodeId, crate::core::holder_audits::HolderFault)>,
    },
    Rotated {
        session: protocols::ids::SessionId,
        cause: rotation::Cause,
        outcome: Result<rotation::Moved, errors::RotationError>,
        started: std::time::Instant,
        /// Where it started among operator requests.
        mark: crate::core::ledger::Mark,
        /// Holders whose answer to the rotation's fetch proved them bad.
        faults: Vec<(NodeId, crate::core::holder_audits::HolderFault)>,
    },
    /// An entropy audit of one source finished.
    EntropyAudited {
        node: NodeId,
        source: String,
        outcome: Result<crate::intake::sources::AuditResult, errors::AuditError>,
    },
    /// A holder audit finished (the session's lock is released).
    Audited {
        session: protocols::ids::SessionId,
        faults: Vec<(NodeId, crate::core::holder_audits::HolderFault)>,
        /// Holders that did not answer, to be asked again.
        silent: Vec<NodeId>,
        /// Which audit of the epoch this was (0: the first).
        attempt: u32,
    },
}

/// The loop's mutable state.
pub(crate) struct State {
    pub peers: PeerTable,
    pub intake: Intake,
    pub allowlist: BTreeSet<[u8; 32]>,
    pub requesters: BTreeSet<NodeId>,
    pub attestations: crate::core::attestation::Attestations,
    /// Shares held per peer, busy sessions, operator rotation requests.
    pub ledger: crate::core::ledger::Ledger,
    /// Holder audits to run, by session.
    pub audits: crate::core::holder_audits::HolderAudits,
    /// Every contributing source's audits and credit.
    pub sources: crate::intake::sources::SourceBook,
    /// Sessions an operator revoked, waiting for their rotation or audit to finish.
    pub revocations: Vec<(protocols::ids::SessionId, RevokeReply)>,
}

/// Where the loop answers a revocation.
pub(crate) type RevokeReply =
    tokio::sync::oneshot::Sender<Result<Option<crate::db::SessionRecord>, crate::db::DbError>>;

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

type Started = (
    Arc<Ctx>,
    State,
    mpsc::Receiver<NodeEvent>,
    mpsc::Receiver<AdminRequest>,
    mpsc::Sender<AdminRequest>,
);

async fn start(
    config: CoordinatorConfig,
    key: NodeKey,
    db: Arc<CoordinatorDb>,
    node_config: Option<NodeConfig>,
) -> Result<Started, StartError> {
    let load = db.clone();
    let master_key_path = config.master_key_path();
    let (secrets, keyring, restored, enrolments, allowlist, requesters, sessions) =
        tokio::task::spawn_blocking(move || -> Result<_, StartError> {
            let s = load.secrets()?.ok_or(StartError::NotInitialised)?;
            let keyring = crate::master_key::open(&master_key_path, &load)?;
            Ok((
                s,
                keyring,
                load.restored_from()?,
                load.enrolments()?,
                load.allowed_binaries()?,
                load.requesters()?,
                load.sessions()?,
            ))
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
    tracing::info!(peer = %node.peer_id(), enrolled = enrolments.len(), sessions = sessions.len(), "coordinator started");
    let mut peers = PeerTable::default();
    for (node_id, e) in enrolments {
        peers.enrol(node_id, e.region, e.operator);
        if let Some(p) = peers.get_mut(&node_id) {
            p.share_key = e.share_key;
        }
    }
    let ledger = crate::core::ledger::Ledger::from_sessions(&sessions);
    // A block is worth what its accounting says, capped by its source's audit; no factor on
    // top (decision 0039). The per-peer cap per round stays.
    let credit = CreditPolicy::new(1.0, config.per_peer_cap_bits)?;
    let sources = crate::intake::sources::SourceBook::new(
        config.entropy_audit_samples > 0,
        (config.entropy_audit_s.max(1.0) * 1000.0) as u64,
    );
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
        masters: std::sync::RwLock::new(keyring),
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
    let state = State {
        peers,
        intake,
        allowlist,
        requesters,
        attestations: crate::core::attestation::Attestations::new(
            (ctx.config.attestation_answer_s * 1000.0) as u64,
            (ctx.config.attestation_validity_s * 1000.0) as u64,
        ),
        ledger,
        audits: crate::core::holder_audits::HolderAudits::new(ctx.config.holder_audit_s),
        sources,
        revocations: Vec::new(),
    };
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

async fn run_loop(
    ctx: Arc<Ctx>,
    mut state: State,
    mut events: mpsc::Receiver<NodeEvent>,
    mut admin: mpsc::Receiver<AdminRequest>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (internal_tx, mut internal) = mpsc::channel::<Internal>(256);
    let mut attest_tick = tokio::time::interval(Duration::from_secs_f64(
        ctx.config.attestation_interval_s / attest::SLICES as f64,
    ));
    let mut attest_ticks = 0u64;
    let mut round_tick = tokio::time::interval(Duration::from_secs_f64(ctx.config.credit_round_s));
    let mut rotation_tick = tokio::time::interval(Duration::from_secs_f64(
        ctx.config.rotation_period_s.min(2.0),
    ));
    rotation::roll_back_pending(&ctx).await;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = events.recv() => match event {
                Some(event) => on_event(&ctx, &mut state, &internal_tx, event).await,
                None => break,
            },
            Some(msg) = internal.recv() => reports::on_internal(&ctx, &mut state, msg),
            Some(req) = admin.recv() => reports::on_admin(&ctx, &mut state, &internal_tx, req).await,
            _ = attest_tick.tick() => {
                attest::challenge_slice(&ctx, &mut state, &internal_tx, attest_ticks);
                attest_ticks = attest_ticks.wrapping_add(1);
            }
            _ = round_tick.tick() => state.intake.new_round(),
            _ = rotation_tick.tick() => {
                entropy_audit::tick(&ctx, &mut state, &internal_tx);
                gossip::settle_intake(&ctx, &mut state);
                reports::revoke_ready(&ctx, &mut state).await;
                upkeep::rotate_due(&ctx, &mut state, &internal_tx).await
            }
        }
    }
    tracing::info!("coordinator stopping");
    ctx.node.shutdown().await;
}

async fn on_event(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    event: NodeEvent,
) {
    match event {
        NodeEvent::Gossip {
            topic,
            id,
            propagation_source,
            author,
            data,
        } => {
            let verdict = gossip::on_gossip(ctx, state, &topic, author.as_ref(), &data);
            let _ = ctx
                .node
                .report_gossip(id, propagation_source, verdict)
                .await;
        }
        NodeEvent::Request {
            protocol: Protocol::Coord,
            peer,
            frame,
            responder,
        } => on_coord_request(ctx, state, internal, peer, frame, ReplyTo::Node(responder)).await,
        NodeEvent::Request { responder, .. } => {
            let _ = responder
                .respond(wire::encode(&Reply::<()>::refused(Refusal::Unauthorized)))
                .await;
        }
        NodeEvent::Connected(peer) => {
            // A newly connected enrolled peer that is not trusted now is challenged at once
            // rather than in its slice.
            if let Some(node) = peer::identity::node_id(&peer)
                && state.peers.get(&node).is_some()
            {
                attest::challenge_if_untrusted(ctx, state, internal, node);
            }
        }
        NodeEvent::Listening(addr) => tracing::info!(%addr, "listening"),
        _ => {}
    }
}

async fn on_coord_request(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    peer: libp2p::PeerId,
    frame: RequestFrame,
    responder: ReplyTo,
) {
    let refuse = |r: Refusal| sessions::refuse(ctx, r);
    let bytes = match frame {
        RequestFrame::Bytes(b) => b,
        RequestFrame::Oversized { len, max } => {
            let _ = responder
                .respond(refuse(Refusal::Malformed(format!(
                    "request of {len} bytes over the limit {max}"
                ))))
                .await;
            return;
        }
    };
    let Some(remote) = peer::identity::node_id(&peer) else {
        let _ = responder.respond(refuse(Refusal::Unauthorized)).await;
        return;
    };
    let call: CoordinatorCall = match wire::decode(&bytes, Protocol::Coord.limits().0) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(%peer, error = %e, "malformed coordinator request refused");
            let _ = responder
                .respond(refuse(Refusal::Malformed(e.to_string())))
                .await;
            return;
        }
    };
    match call.request {
        CoordinatorRequest::GetRecord => {
            let _ = responder
                .respond(wire::encode(&Reply::ok(ctx.record.clone())))
                .await;
        }
        CoordinatorRequest::CreateSession(create) => {
            sessions::create(ctx, state, internal, remote, create.policy, responder).await
        }
        CoordinatorRequest::GetTicket(req) => {
            sessions::ticket(ctx, state, remote, req.session, responder).await
        }
        CoordinatorRequest::Join(join) => {
            let reply = upkeep::redeem(ctx, state, remote, &join.token).await;
            if let Err(r) = &reply.result {
                ctx.metrics.requests_refused.inc(r.label());
            }
            let _ = responder.respond(wire::encode(&reply)).await;
        }
        CoordinatorRequest::GetMembership => {
            crate::membership::respond(ctx, &state.peers, remote, responder).await
        }
        CoordinatorRequest::GetMembershipOf(node) => {
            crate::membership::respond(ctx, &state.peers, node, responder).await
        }
    }
}
