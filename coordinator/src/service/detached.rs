//! The coordinator's network entry points without a service loop, for the fuzz target
//! `coordinator_requests`: the very functions the loop runs for an inbound request and an
//! inbound gossip message, over a real database. The daemon itself does not use this type.

use super::{Ctx, Internal, State, gossip, on_coord_request, reports, start};
use crate::config::CoordinatorConfig;
use crate::db::CoordinatorDb;
use crate::metrics::CoordinatorMetrics;
use peer::node::{GossipVerdict, NodeConfig, NodeError, NodeEvent, RequestFrame, Responder};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Where the answer to one inbound coordinator request goes: the node's response channel, or
/// (for [`DetachedService`]) back to the caller.
pub(crate) enum ReplyTo {
    /// The libp2p request-response channel the request came in on.
    Node(Responder),
    /// The caller of [`DetachedService::request`].
    Detached(oneshot::Sender<Vec<u8>>),
}

impl ReplyTo {
    /// Sends the answer; fails only when its receiver is gone.
    pub(crate) async fn respond(self, bytes: Vec<u8>) -> Result<(), NodeError> {
        match self {
            ReplyTo::Node(responder) => responder.respond(bytes).await,
            ReplyTo::Detached(sender) => sender.send(bytes).map_err(|_| NodeError::Closed),
        }
    }
}

/// A coordinator built the way the daemon builds itself (from its database, on a node of its
/// own on the memory transport, listening nowhere) whose inbound requests and gossip are fed
/// by the caller instead of a service loop: [`Self::request`] runs the loop's request handler,
/// [`Self::gossip`] its gossip handler, on the same state. No timer runs (no attestation
/// challenges, credit rounds or rotations). Must be used inside a tokio runtime.
#[doc(hidden)]
pub struct DetachedService {
    ctx: Arc<Ctx>,
    state: State,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    _events: mpsc::Receiver<NodeEvent>,
}

impl DetachedService {
    /// Loads the coordinator of `key` from `db` (which must hold its secrets) as the daemon does.
    pub async fn start(
        config: CoordinatorConfig,
        key: NodeKey,
        db: Arc<CoordinatorDb>,
    ) -> Result<Self, super::errors::StartError> {
        let mut config = config;
        config.metrics = None;
        let (ctx, state, events, _admin_rx, _admin_tx) =
            start(config, key, db, Some(NodeConfig::memory(Vec::new()))).await?;
        let (internal_tx, internal_rx) = mpsc::channel(256);
        Ok(Self {
            ctx,
            state,
            internal_tx,
            internal_rx,
            _events: events,
        })
    }

    /// Answers one coordinator request from `remote` as the loop would and returns the encoded
    /// reply (waiting for tasks the handler spawned); `None` if the handler dropped the request
    /// without answering it. Reports of spawned tasks are then handled as the loop handles them.
    pub async fn request(
        &mut self,
        remote: libp2p::PeerId,
        frame: RequestFrame,
    ) -> Option<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        on_coord_request(
            &self.ctx,
            &mut self.state,
            &self.internal_tx,
            remote,
            frame,
            ReplyTo::Detached(tx),
        )
        .await;
        let reply = rx.await.ok();
        while let Ok(msg) = self.internal_rx.try_recv() {
            reports::on_internal(&self.ctx, &mut self.state, msg);
        }
        reply
    }

    /// Handles one gossip message as the loop would; returns the verdict reported to gossipsub.
    pub fn gossip(
        &mut self,
        topic: &str,
        author: Option<&libp2p::PeerId>,
        data: &[u8],
    ) -> GossipVerdict {
        gossip::on_gossip(&self.ctx, &mut self.state, topic, author, data)
    }

    /// Whether `node` is in the peer table (enrolled).
    pub fn is_enrolled(&self, node: &NodeId) -> bool {
        self.state.peers.get(node).is_some()
    }

    /// Removes `node` from the peer table (to undo a join after restoring the database).
    pub fn forget_peer(&mut self, node: &NodeId) {
        self.state.peers.remove(node);
    }

    /// Credited bits in the pool and the number of peers they came from.
    pub fn pool_credit(&self) -> (u64, usize) {
        self.state.intake.pool_credit()
    }

    /// The coordinator's counters.
    pub fn metrics(&self) -> &CoordinatorMetrics {
        &self.ctx.metrics
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::db::{CoordinatorSecrets, JoinToken, fuzzing::raw_contents, session_writer_record};
    use protocols::ticket::{Ticket, TicketGrant};
    use protocols::wire::{
        self, CoordinatorCall, CoordinatorRequest, JoinRequest, Joined, Refusal, Reply,
        SessionCreate, SessionCreated, SessionPolicy, TicketRequest, WIRE_VERSION,
    };

    fn peer_of(key: &NodeKey) -> libp2p::PeerId {
        peer::identity::keypair(key).unwrap().public().to_peer_id()
    }

    fn call(request: CoordinatorRequest) -> RequestFrame {
        RequestFrame::Bytes(wire::encode(&CoordinatorCall {
            v: WIRE_VERSION,
            request,
        }))
    }

    fn refusal<T: serde::de::DeserializeOwned + serde::Serialize>(bytes: &[u8]) -> Refusal {
        let reply: Reply<T> = wire::decode(bytes, wire::MAX_MESSAGE_BYTES).unwrap();
        match reply.result {
            Err(r) => r,
            Ok(_) => panic!("expected a refusal"),
        }
    }

    /// A coordinator database with its secrets, in a directory of its own.
    fn fresh_db() -> (tempfile::TempDir, Arc<CoordinatorDb>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(CoordinatorDb::open(&dir.path().join("coordinator.redb")).unwrap());
        db.init_secrets(&CoordinatorSecrets {
            noise_static: [2; 32],
        })
        .unwrap();
        crate::master_key::create(&dir.path().join("master.key")).unwrap();
        (dir, db)
    }

    /// The entry point answers each kind of request through the loop's handler: refusals for
    /// garbage, strangers and an empty pool, a ticket only for the session's creator, one join
    /// per token; refused requests write nothing.
    #[tokio::test]
    async fn detached_service_answers_requests_as_the_loop_does() {
        let (dir, db) = fresh_db();
        let (coordinator, requester, stranger) = (
            NodeKey::from_secret_bytes(&[1; 32]),
            NodeKey::from_secret_bytes(&[2; 32]),
            NodeKey::from_secret_bytes(&[9; 32]),
        );
        db.add_requester(&requester.node_id()).unwrap();
        let mut session = session_writer_record(0);
        session.creator = requester.node_id();
        db.put_session(&session).unwrap();
        let token = [0x5a_u8; 16];
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token).into();
        db.add_join_token(
            digest,
            &JoinToken {
                region: "eu".into(),
                operator: "op".into(),
                expires_at_ms: u64::MAX,
            },
        )
        .unwrap();
        let config = CoordinatorConfig::new(dir.path().to_path_buf(), Vec::new());
        let mut service =
            DetachedService::start(config, NodeKey::from_secret_bytes(&[1; 32]), db.clone())
                .await
                .unwrap();
        let before = raw_contents(&db).unwrap();

        let garbage = service
            .request(
                peer_of(&stranger),
                RequestFrame::Bytes(vec![0xff, 0x00, 0x13]),
            )
            .await
            .unwrap();
        assert!(matches!(refusal::<()>(&garbage), Refusal::Malformed(_)));

        let policy = SessionPolicy {
            n: 5,
            k: 3,
            ttl_s: 60,
            requesters: vec![],
            label: "test".into(),
        };
        let create = |policy: SessionPolicy| {
            call(CoordinatorRequest::CreateSession(SessionCreate {
                v: WIRE_VERSION,
                policy,
            }))
        };
        let by_stranger = service
            .request(peer_of(&stranger), create(policy.clone()))
            .await
            .unwrap();
        assert_eq!(
            refusal::<SessionCreated>(&by_stranger),
            Refusal::Unauthorized
        );
        let empty_pool = service
            .request(peer_of(&requester), create(policy))
            .await
            .unwrap();
        assert!(matches!(
            refusal::<SessionCreated>(&empty_pool),
            Refusal::NotReady(_)
        ));

        let get_ticket = call(CoordinatorRequest::GetTicket(TicketRequest {
            v: WIRE_VERSION,
            session: session.session,
        }));
        let refused = service
            .request(peer_of(&stranger), get_ticket.clone())
            .await
            .unwrap();
        assert_eq!(refusal::<TicketGrant>(&refused), Refusal::Unauthorized);
        assert_eq!(raw_contents(&db).unwrap(), before, "refusals wrote nothing");
        let granted = service
            .request(peer_of(&requester), get_ticket)
            .await
            .unwrap();
        let grant: Reply<TicketGrant> = wire::decode(&granted, wire::MAX_MESSAGE_BYTES).unwrap();
        let ticket: Ticket = grant
            .result
            .unwrap()
            .ticket
            .open(&coordinator.node_id())
            .unwrap();
        assert_eq!(ticket.requester, requester.node_id());
        assert_eq!(ticket.session, session.session);

        let join = call(CoordinatorRequest::Join(JoinRequest {
            token: "5a".repeat(16),
        }));
        let joined = service
            .request(peer_of(&stranger), join.clone())
            .await
            .unwrap();
        let joined: Reply<Joined> = wire::decode(&joined, wire::MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(joined.result.unwrap().region, "eu");
        assert!(service.is_enrolled(&stranger.node_id()));
        let again = service.request(peer_of(&stranger), join).await.unwrap();
        assert_eq!(refusal::<Joined>(&again), Refusal::Unauthorized);

        let verdict = service.gossip(peer::node::STATUS_TOPIC, None, b"unsigned");
        assert!(matches!(verdict, GossipVerdict::Reject));
    }

    /// Every ticket request is checked against the database: a ticket lives `ticket_ttl_s` at
    /// most and is audited; a removed requester (even one only named by the session) and a
    /// revoked session are refused, and the refusals leave no audit entry.
    #[tokio::test]
    async fn tickets_are_short_lived_audited_and_refused_after_a_removal_or_a_revocation() {
        let (dir, db) = fresh_db();
        let (coordinator, creator, named) = (
            NodeKey::from_secret_bytes(&[1; 32]),
            NodeKey::from_secret_bytes(&[2; 32]),
            NodeKey::from_secret_bytes(&[3; 32]),
        );
        db.add_requester(&creator.node_id()).unwrap();
        let mut session = session_writer_record(0);
        session.creator = creator.node_id();
        session.policy.requesters = vec![named.node_id()];
        db.put_session(&session).unwrap();
        let mut config = CoordinatorConfig::new(dir.path().to_path_buf(), Vec::new());
        config.ticket_ttl_s = 60;
        let mut service =
            DetachedService::start(config, NodeKey::from_secret_bytes(&[1; 32]), db.clone())
                .await
                .unwrap();
        let get_ticket = call(CoordinatorRequest::GetTicket(TicketRequest {
            v: WIRE_VERSION,
            session: session.session,
        }));

        let before = crate::os::now_ms();
        let granted = service
            .request(peer_of(&named), get_ticket.clone())
            .await
            .unwrap();
        let grant: Reply<TicketGrant> = wire::decode(&granted, wire::MAX_MESSAGE_BYTES).unwrap();
        let ticket: Ticket = grant
            .result
            .unwrap()
            .ticket
            .open(&coordinator.node_id())
            .unwrap();
        assert!(ticket.expires_at_ms <= crate::os::now_ms() + 60_000);
        assert!(ticket.expires_at_ms >= before + 60_000);
        assert!(ticket.expires_at_ms < session.expires_at_ms);
        let trail = db.audit_since(0).unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].action, "ticket");
        assert_eq!(
            trail[0].actor,
            format!("requester {}", crate::admin::peer_text(&named.node_id()))
        );

        db.revoke_requester(&named.node_id()).unwrap();
        let refused = service
            .request(peer_of(&named), get_ticket.clone())
            .await
            .unwrap();
        assert_eq!(refusal::<TicketGrant>(&refused), Refusal::Unauthorized);
        let granted = service
            .request(peer_of(&creator), get_ticket.clone())
            .await
            .unwrap();
        assert!(
            wire::decode::<Reply<TicketGrant>>(&granted, wire::MAX_MESSAGE_BYTES)
                .unwrap()
                .result
                .is_ok()
        );

        db.revoke_session(&session.session).unwrap().unwrap();
        let refused = service
            .request(peer_of(&creator), get_ticket.clone())
            .await
            .unwrap();
        assert_eq!(refusal::<TicketGrant>(&refused), Refusal::NotFound);
        let actions: Vec<String> = db
            .audit_since(0)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["ticket", "ticket"], "a refusal was audited");
    }
}
