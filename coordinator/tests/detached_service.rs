//! The coordinator's network entry points (`DetachedService`: the very handlers its loop runs,
//! over a real database, without a loop) answer each kind of request as the daemon does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coordinator::config::CoordinatorConfig;
use coordinator::db::CoordinatorDb;
use coordinator::db::{
    CoordinatorSecrets, JoinToken, fuzzing::raw_contents, session_writer_record,
};
use coordinator::service::DetachedService;
use peer::node::{GossipVerdict, RequestFrame};
use protocols::identity::NodeKey;
use protocols::ticket::{Ticket, TicketGrant};
use protocols::wire::{
    self, CoordinatorCall, CoordinatorRequest, JoinRequest, Joined, Refusal, Reply, SessionCreate,
    SessionCreated, SessionPolicy, TicketRequest, WIRE_VERSION,
};
use std::sync::Arc;

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
    coordinator::master_key::create(&dir.path().join("master.key")).unwrap();
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

    let before = coordinator::service::now_ms();
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
    assert!(ticket.expires_at_ms <= coordinator::service::now_ms() + 60_000);
    assert!(ticket.expires_at_ms >= before + 60_000);
    assert!(ticket.expires_at_ms < session.expires_at_ms);
    let trail = db.audit_since(0).unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].action, "ticket");
    assert_eq!(
        trail[0].actor,
        format!(
            "requester {}",
            coordinator::admin::peer_text(&named.node_id())
        )
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
