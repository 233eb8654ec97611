//! End-to-end: `entroshard peer run` as a real process against a test coordinator and requester
//! on loopback. Contributions arrive sealed; a stored share survives SIGKILL and is served over
//! QUIC; bad requests on the real port get typed refusals while the node keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use libp2p::Multiaddr;
use peer::node::{
    CONTRIBUTIONS_TOPIC, GossipVerdict, NodeEvent, NodeHandle, Protocol, RequestFrame, STATUS_TOPIC,
};
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionSecret;
use protocols::sealing::{self, SealingMasterKey, ShareSlot};
use protocols::sharing::{self, Commitments};
use protocols::ticket::{Ticket, TicketHolder, TicketRefusal};
use protocols::wire::{
    self, Contribution, CoordinatorCall, CoordinatorRecord, CoordinatorRequest, HolderCall,
    HolderOrder, Refusal, Reply, ShareFetch, ShareFetchReply, SignedEnvelope, StatusHeartbeat,
    StoreAck, StoreShare, WIRE_VERSION,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// What the test coordinator saw on gossip.
enum Seen {
    Heartbeat(NodeId, Box<StatusHeartbeat>),
    Contribution(NodeId, usize),
}

/// Serves GetRecord and GetMembership (a certificate for whoever asks: every caller counts as
/// enrolled here) and reports every gossip message it can verify.
fn coordinator_task(
    key: NodeKey,
    static_secret: [u8; 32],
    node: NodeHandle,
    mut events: mpsc::Receiver<NodeEvent>,
    seen: mpsc::Sender<Seen>,
) {
    let record = SignedEnvelope::seal(
        &key,
        &CoordinatorRecord {
            v: WIRE_VERSION,
            noise_static: peer::contribution::static_public(&static_secret),
            issued_at_ms: 0,
        },
    );
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NodeEvent::Request {
                    protocol: Protocol::Coord,
                    peer: caller,
                    frame: RequestFrame::Bytes(b),
                    responder,
                } => {
                    let call: Result<CoordinatorCall, _> = wire::decode(&b, 4096);
                    let reply = match call.map(|c| c.request) {
                        Ok(CoordinatorRequest::GetRecord) => {
                            wire::encode(&Reply::ok(record.clone()))
                        }
                        Ok(CoordinatorRequest::GetMembership) => {
                            let caller = peer::identity::node_id(&caller).unwrap();
                            let now = coordinator::service::now_ms();
                            wire::encode(&Reply::ok(protocols::membership::issue(
                                &key, caller, now,
                            )))
                        }
                        _ => wire::encode(&Reply::<()>::refused(Refusal::Unauthorized)),
                    };
                    let _ = responder.respond(reply).await;
                }
                NodeEvent::Gossip {
                    topic,
                    id,
                    propagation_source,
                    data,
                    ..
                } => {
                    let env = SignedEnvelope::from_bytes(&data, 16 * 1024).unwrap();
                    if topic == STATUS_TOPIC {
                        let (signer, beat) = env.open_from_any_signer::<StatusHeartbeat>().unwrap();
                        let _ = seen.try_send(Seen::Heartbeat(signer, Box::new(beat)));
                    } else if topic == CONTRIBUTIONS_TOPIC {
                        let (signer, c) = env.open_from_any_signer::<Contribution>().unwrap();
                        let body =
                            peer::contribution::open(&static_secret, &signer, c.seq, &c.sealed)
                                .unwrap();
                        let _ = seen.try_send(Seen::Contribution(signer, body.conditioned.len()));
                    }
                    let _ = node
                        .report_gossip(id, propagation_source, GossipVerdict::Accept)
                        .await;
                }
                _ => {}
            }
        }
    });
}

async fn next_heartbeat(seen: &mut mpsc::Receiver<Seen>) -> (NodeId, StatusHeartbeat) {
    timeout(DEADLINE, async {
        loop {
            if let Some(Seen::Heartbeat(id, beat)) = seen.recv().await {
                return (id, *beat);
            }
        }
    })
    .await
    .expect("a heartbeat arrives")
}

fn quic_addr(beat: &StatusHeartbeat) -> Multiaddr {
    beat.listen_addrs
        .iter()
        .filter_map(|a| a.parse::<Multiaddr>().ok())
        .find(|a| a.to_string().contains("quic-v1"))
        .expect("peer listens on QUIC")
}

struct Fixture {
    coord: NodeKey,
    master: SealingMasterKey,
    secret: SessionSecret,
    commitments: Commitments,
    share_value: [u8; 32],
    session: SessionId,
}

fn ticket(
    f: &Fixture,
    signer: &NodeKey,
    requester: NodeId,
    holder: NodeId,
    expires_at_ms: u64,
) -> SignedEnvelope {
    let t = Ticket {
        v: WIRE_VERSION,
        coordinator: f.coord.node_id(),
        session: f.session,
        epoch: 0,
        requester,
        holders: vec![TicketHolder {
            node: holder,
            index: 1,
            addrs: vec![],
        }],
        commitments: f.commitments.clone(),
        policy_digest: [0; 32],
        issued_at_ms: 0,
        expires_at_ms,
        nonce: [1; 16],
    };
    SignedEnvelope::seal(signer, &t)
}

/// A share fetch request carrying `ticket`, encoded.
fn share_fetch(ticket: SignedEnvelope) -> Vec<u8> {
    wire::encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket,
    })
}

async fn fetch(
    node: &NodeHandle,
    holder: &NodeId,
    addr: &Multiaddr,
    bytes: Vec<u8>,
) -> ShareFetchReply {
    let peer = peer::identity::peer_id(holder).unwrap();
    let raw = node
        .request(Protocol::Fetch, peer, vec![addr.clone()], bytes)
        .await
        .expect("holder answers");
    wire::decode(&raw, 8192).expect("a typed reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_contributes_stores_survives_sigkill_and_refuses_bad_requests_by_type() {
    let mut rng = rand::rng();
    let coord = NodeKey::generate(&mut rng);
    let (coord_node, coord_events, coord_addr) = test_node(&coord).await;
    let (seen_tx, mut seen) = mpsc::channel(256);
    coordinator_task(
        NodeKey::from_secret_bytes(coord.secret_bytes()),
        [42; 32],
        coord_node.clone(),
        coord_events,
        seen_tx,
    );

    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    init_peer_with(
        dir.path(),
        &coord_addr,
        "eu-west",
        "alpha",
        7,
        &["--metrics", &metrics],
    );
    let mut peer_proc = spawn_peer(dir.path());

    // The peer's heartbeat names it, and its contributions open with the coordinator's static key.
    let (holder, _) = next_heartbeat(&mut seen).await;
    let bits = timeout(DEADLINE, async {
        loop {
            if let Some(Seen::Contribution(id, bits)) = seen.recv().await
                && id == holder
            {
                return bits;
            }
        }
    })
    .await
    .expect("a sealed contribution arrives");
    assert_eq!(bits, 128, "four conditioned outputs");

    // Store a real Feldman share on the peer, sealed for its slot.
    let session = SessionId([9; 16]);
    let secret = SessionSecret::derive(&[1; 32], &[2; 32], &session).unwrap();
    let (shares, commitments) = sharing::split(&secret, &[1, 2, 3], 2, &mut rng).unwrap();
    let f = Fixture {
        coord,
        master: SealingMasterKey::from_bytes([5; 32]),
        secret,
        commitments,
        share_value: shares[0].value_bytes(),
        session,
    };
    let slot = ShareSlot {
        session,
        epoch: 0,
        holder,
        index: 1,
    };
    let sealed = sealing::seal(&f.master.share_key(&slot), slot, &f.share_value, [3; 12]);
    let order = SignedEnvelope::seal(
        &f.coord,
        &StoreShare {
            v: WIRE_VERSION,
            share: sealed,
            expires_at_ms: u64::MAX,
        },
    );
    let call = HolderCall {
        v: WIRE_VERSION,
        order: HolderOrder::Store(order),
    };
    let raw = coord_node
        .request(
            Protocol::Store,
            peer::identity::peer_id(&holder).unwrap(),
            vec![],
            wire::encode(&call),
        )
        .await
        .unwrap();
    let ack: Reply<StoreAck> = wire::decode(&raw, 1024).unwrap();
    assert_eq!(ack.result, Ok(StoreAck { session, epoch: 0 }));

    // SIGKILL, restart: the acknowledged share is still served.
    peer_proc.kill9();
    let _peer_proc = spawn_peer(dir.path());
    let (again, beat) = next_heartbeat(&mut seen).await;
    assert_eq!(again, holder);
    let addr = quic_addr(&beat);

    let requester = NodeKey::generate(&mut rng);
    let (req_node, _req_events, _) = test_node(&requester).await;
    let good = ticket(&f, &f.coord, requester.node_id(), holder, u64::MAX);
    let reply = fetch(&req_node, &holder, &addr, share_fetch(good.clone())).await;
    let sealed = reply
        .result
        .expect("share served after SIGKILL and restart");
    let share = sealing::open(&f.master.share_key(&slot), &slot, &sealed).unwrap();
    share
        .verify(&f.commitments)
        .expect("the served share matches the commitments");

    // Hostile requests on the real port: each gets its typed refusal.
    let refusal = |r: ShareFetchReply| r.result.expect_err("refused");
    assert!(matches!(
        refusal(fetch(&req_node, &holder, &addr, vec![0xff; 300]).await),
        Refusal::Malformed(_)
    ));
    let oversized = vec![0u8; Protocol::Fetch.limits().0 + 1];
    assert!(
        matches!(refusal(fetch(&req_node, &holder, &addr, oversized).await), Refusal::Malformed(m) if m.contains("over the limit"))
    );
    let forger = NodeKey::generate(&mut rng);
    let forged = ticket(&f, &forger, requester.node_id(), holder, u64::MAX);
    assert_eq!(
        refusal(fetch(&req_node, &holder, &addr, share_fetch(forged)).await),
        Refusal::Ticket(TicketRefusal::BadSignature)
    );
    let expired = ticket(&f, &f.coord, requester.node_id(), holder, 1);
    assert!(matches!(
        refusal(fetch(&req_node, &holder, &addr, share_fetch(expired)).await),
        Refusal::Ticket(TicketRefusal::Expired { .. })
    ));
    let someone_else = NodeKey::generate(&mut rng).node_id();
    let theirs = ticket(&f, &f.coord, someone_else, holder, u64::MAX);
    assert_eq!(
        refusal(fetch(&req_node, &holder, &addr, share_fetch(theirs)).await),
        Refusal::Ticket(TicketRefusal::WrongRequester)
    );
    let mut truncated = share_fetch(good.clone());
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        refusal(fetch(&req_node, &holder, &addr, truncated).await),
        Refusal::Malformed(_)
    ));

    // ... and it keeps serving.
    let reply = fetch(&req_node, &holder, &addr, share_fetch(good)).await;
    assert!(reply.result.is_ok());
    let _ = &f.secret;
}
