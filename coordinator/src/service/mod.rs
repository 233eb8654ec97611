//! The coordinator daemon, a driver of the core (`crate::core`): one loop that owns the core's
//! [`State`], feeds it network events, admin requests, task reports and ticks with the time, and
//! carries out what it decides; slow work (holder orders, database writes, assessments) runs in
//! tasks that report back over a bounded channel.

mod attest;
mod audit;
mod detached;
mod entropy_audit;
pub mod errors;
/// Running totals of the coordinator loop, for reports.
pub mod figures {
    pub use crate::admin::requests::CoordinatorFigures;
}
mod gossip;
mod holders;
mod master_keys;
mod placing;
mod reports;
pub mod rotation;
mod sessions;
mod startup;
mod upkeep;

use crate::config::CoordinatorConfig;
pub(crate) use crate::core::state::State;
use crate::db::CoordinatorDb;
use crate::master_key::SharedKeyring;
use peer::node::{NodeEvent, NodeHandle, Protocol, RequestFrame};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::sealing::{ShareOpeningKey, ShareSlot};
use protocols::wire::{self, CoordinatorRequest, Refusal, Reply, SignedEnvelope};
use std::sync::Arc;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

#[doc(hidden)]
pub use detached::DetachedService;
pub use sessions::SessionSummary;
pub use startup::{Handle, run, spawn, spawn_with_node};

pub use crate::admin::requests::AdminRequest;
pub use crate::os::now_ms;
pub(crate) use crate::os::os_random;

/// What never changes while the daemon runs; shared with its tasks.
pub(crate) struct Ctx {
    pub key: NodeKey,
    /// The sealing master keys in force.
    pub masters: SharedKeyring,
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
    /// Runs `f` on the database on a blocking thread (`Err`: the thread ended without an
    /// answer).
    pub async fn on_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CoordinatorDb) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await
    }

    /// The key of `slot` of `record`'s current epoch, derived from the master key that epoch is
    /// sealed under; `None` if no key in force has that id (which the start-up check and the
    /// retirement rule exclude).
    pub fn opening_key(
        &self,
        record: &crate::db::SessionRecord,
        slot: &ShareSlot,
    ) -> Option<ShareOpeningKey> {
        let ring = self.masters.get();
        let key = ring.for_session(record.sealed_under.as_ref());
        if key.is_none() {
            tracing::error!(session = %record.session, key = ?record.sealed_under, "no master key in force opens this session");
        }
        key.map(|k| k.share_key(slot))
    }
}

/// Where the answer to one inbound coordinator request goes: the node's response channel, or
/// (for [`DetachedService`]) back to the caller.
pub(crate) enum ReplyTo {
    /// The libp2p request-response channel the request came in on.
    Node(peer::node::Responder),
    /// The caller of [`DetachedService::request`].
    Detached(tokio::sync::oneshot::Sender<Vec<u8>>),
}

impl ReplyTo {
    /// Sends the answer; fails only when its receiver is gone.
    pub(crate) async fn respond(self, bytes: Vec<u8>) -> Result<(), peer::node::NodeError> {
        match self {
            ReplyTo::Node(responder) => responder.respond(bytes).await,
            ReplyTo::Detached(sender) => sender
                .send(bytes)
                .map_err(|_| peer::node::NodeError::Closed),
        }
    }
}

/// Results tasks send back to the loop.
pub(crate) enum Internal {
    Attested {
        node: NodeId,
        nonce: [u8; 32],
        reply: Result<Vec<u8>, crate::core::errors::NoAnswer>,
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

/// Where the loop answers a revocation.
pub(crate) type RevokeReply =
    tokio::sync::oneshot::Sender<Result<Option<crate::db::SessionRecord>, crate::db::DbError>>;

async fn run_loop(
    ctx: Arc<Ctx>,
    mut state: State,
    mut events: mpsc::Receiver<NodeEvent>,
    mut admin: mpsc::Receiver<AdminRequest>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (internal_tx, mut internal) = mpsc::channel::<Internal>(256);
    let mut attest_tick = tokio::time::interval(state.rules.attestation_tick);
    let mut round_tick = tokio::time::interval(state.rules.credit_round);
    let mut rotation_tick = tokio::time::interval(state.rules.upkeep_tick);
    let mut revocations = Vec::new();
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
            Some(req) = admin.recv() => {
                reports::on_admin(&ctx, &mut state, &internal_tx, &mut revocations, req).await
            }
            _ = attest_tick.tick() => {
                for node in state.attestation_slice_due() {
                    attest::challenge(&ctx, &mut state, &internal_tx, node);
                }
            }
            _ = round_tick.tick() => state.intake.new_round(),
            _ = rotation_tick.tick() => {
                entropy_audit::tick(&ctx, &mut state, &internal_tx);
                gossip::settle_intake(&ctx, &mut state);
                reports::revoke_ready(&ctx, &mut state, &mut revocations).await;
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
                && state.wanted_on_connect(&node, now_ms())
            {
                attest::challenge(ctx, state, internal, node);
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
    let max = Protocol::Coord.limits().0;
    let (remote, request) = match crate::core::admission::admit(frame, &peer, max) {
        Ok(admitted) => admitted,
        Err(r) => {
            let _ = responder.respond(sessions::refuse(ctx, r)).await;
            return;
        }
    };
    match request {
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
