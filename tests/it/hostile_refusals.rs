//! Refusals by name, with real processes on loopback: a ticket presented to a holder by its own
//! requester after it expired is refused as `Expired` and counted in the holder's `/metrics`
//! (`ticket_expired`); an enrolled node that answers attestation with evidence of a binary not on
//! the allowlist is quarantined, and its contributions are refused as `quarantined` and counted in
//! the coordinator's `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cluster::*;
use common::*;
use libp2p::Multiaddr;
use peer::node::{
    CONTRIBUTIONS_TOPIC, NodeEvent, NodeHandle, Protocol, RequestFrame, STATUS_TOPIC,
};
use protocols::attestation::{Challenge, Evidence, HealthCounters};
use protocols::identity::NodeKey;
use protocols::ticket::{Ticket, TicketRefusal};
use protocols::wire::{
    self, Contribution, PowerState, Refusal, Reply, SessionPolicy, SignedEnvelope, StatusHeartbeat,
    WIRE_VERSION,
};
use rand::RngExt;
use std::time::Duration;
use tokio::time::Instant;

const REGIONS: [&str; 3] = ["r0", "r1", "r2"];

fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `/metrics` at `addr` until `series` reaches `at_least`, doing `meanwhile` between polls.
async fn wait_metric<F: std::future::Future<Output = ()>>(
    addr: &str,
    series: &str,
    at_least: f64,
    mut meanwhile: impl FnMut() -> F,
) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let a = addr.to_string();
        let text = tokio::task::spawn_blocking(move || http_get(&a, "/metrics"))
            .await
            .unwrap();
        if metric_sum(&text, series) >= at_least {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {at_least}:\n{text}"
        );
        meanwhile().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn fetch_raw(
    node: &NodeHandle,
    holder: libp2p::PeerId,
    addr: &Multiaddr,
    ticket: &SignedEnvelope,
) -> Result<protocols::wire::FetchedShare, Refusal> {
    let reply_key = protocols::share_box::BoxSecret::generate(&mut rand::rng()).public();
    let request = wire::encode(&protocols::wire::BoxedFetch {
        v: protocols::wire::WIRE_VERSION_2,
        ticket: ticket.clone(),
        reply_key,
    });
    let raw = node
        .request(Protocol::Fetch, holder, vec![addr.clone()], request)
        .await
        .expect("the holder answers");
    let reply: protocols::wire::BoxedFetchReply =
        wire::decode(&raw, 256 * 1024).expect("a reply of ours");
    reply.result
}

/// Answers every attestation challenge with signed evidence of a binary the coordinator does not
/// allow; drains everything else.
fn answer_with_bad_evidence(key: NodeKey, mut events: tokio::sync::mpsc::Receiver<NodeEvent>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NodeEvent::Request {
                protocol: Protocol::Attest,
                frame: RequestFrame::Bytes(bytes),
                responder,
                ..
            } = event
            else {
                continue;
            };
            let Ok(challenge) = wire::decode::<Challenge>(&bytes, Protocol::Attest.limits().0)
            else {
                continue;
            };
            let evidence = Evidence {
                v: WIRE_VERSION,
                node: key.node_id(),
                nonce: challenge.nonce,
                binary_sha256: [0xee; 32],
                config_digest: [1; 32],
                boot_id: "mallory".into(),
                uptime_s: 60,
                health: HealthCounters {
                    samples: 1_000,
                    rct_failures: 0,
                    apt_failures: 0,
                    sources_active: 1,
                    sources_cut_off: 0,
                },
                at_ms: coordinator::service::now_ms(),
                share_key: None,
            };
            let reply = Reply::ok(SignedEnvelope::seal(&key, &evidence));
            let _ = responder.respond(wire::encode(&reply)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tickets_and_quarantined_contributions_are_refused_by_name_and_counted() {
    let coord = spawn_coordinator_with(512, 2, &["--attestation-interval", "1"]);
    let peers = spawn_peers(&coord, &REGIONS).await;
    let requester_key = NodeKey::generate(&mut rand::rng());
    admin_async(
        coord.socket(),
        coordinator::admin::AdminCall::AddRequester {
            node: requester_key.node_id(),
        },
    )
    .await;
    let a = requester::Requester::connect(&requester_key, coord.addr.clone())
        .await
        .unwrap();
    wait_trusted(&coord, 3).await;

    // An expired ticket, shown by the requester it names, to a holder that holds the share.
    let policy = SessionPolicy {
        n: 3,
        k: 2,
        ttl_s: 15,
        requesters: vec![],
        label: "expiring".into(),
    };
    let (_, grant) = create(&a, &policy).await.unwrap();
    let ticket: Ticket = grant.ticket.open_from_any_signer().unwrap().1;
    let holder = &ticket.holders[0];
    let holder_quic: Multiaddr = holder
        .addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .find(|a: &Multiaddr| a.to_string().contains("quic-v1"))
        .expect("the ticket names a QUIC address");
    let holder_peer = peer::identity::peer_id(&holder.node).unwrap();
    let holder_metrics = peers
        .iter()
        .find(|p| p.node == holder.node)
        .unwrap()
        .metrics
        .clone();
    let (node, _events, _) = test_node(&requester_key).await;
    let sent_at = coordinator::service::now_ms();
    let served = fetch_raw(&node, holder_peer, &holder_quic, &grant.ticket).await;
    if sent_at + 5_000 < ticket.expires_at_ms {
        assert!(served.is_ok(), "a live ticket was refused: {served:?}");
    }
    // Mallory: enrolled, heartbeating, answering challenges with a binary not on the allowlist.
    let mallory_secret: [u8; 32] = rand::rng().random();
    let mallory = NodeKey::from_secret_bytes(&mallory_secret);
    admin_async(
        coord.socket(),
        coordinator::admin::AdminCall::Enrol {
            node: mallory.node_id(),
            region: "r0".into(),
            operator: "mallory".into(),
        },
    )
    .await;
    let (m_node, m_events, m_addr) = test_node(&mallory).await;
    answer_with_bad_evidence(NodeKey::from_secret_bytes(&mallory_secret), m_events);
    m_node.dial(coord.addr.clone()).await.unwrap();
    let seq = std::sync::atomic::AtomicU64::new(1);
    let heartbeat = || {
        let beat = StatusHeartbeat {
            v: WIRE_VERSION,
            seq: seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            at_ms: coordinator::service::now_ms(),
            power: PowerState::Mains,
            region: "r0".into(),
            operator: "mallory".into(),
            uptime_s: 60,
            free_store_slots: 100,
            shares_held: 0,
            listen_addrs: vec![m_addr.to_string()],
            sources: vec![],
            membership: None,
        };
        let bytes = SignedEnvelope::seal(&mallory, &beat).to_bytes();
        let node = m_node.clone();
        async move {
            let _ = node.publish(STATUS_TOPIC, bytes).await;
        }
    };
    wait_metric(
        &coord.metrics,
        "entroshard_quarantines_total{reason=\"bad_evidence\"}",
        1.0,
        heartbeat,
    )
    .await;
    let line = status(&coord)
        .await
        .into_iter()
        .find(|l| l.node == mallory.node_id())
        .expect("mallory is in the peer table");
    assert!(
        !line.trusted
            && line
                .quarantine
                .as_deref()
                .is_some_and(|q| q.contains("BadEvidence")),
        "{line:?}"
    );

    // Its contributions are refused as quarantined, and counted.
    let contribution_seq = std::sync::atomic::AtomicU64::new(1);
    let contribute = || {
        let c = Contribution {
            v: WIRE_VERSION,
            seq: contribution_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sent_at_ms: coordinator::service::now_ms(),
            sealed: (0..512).map(|_| rand::rng().random()).collect(),
            membership: None,
        };
        let bytes = SignedEnvelope::seal(&mallory, &c).to_bytes();
        let node = m_node.clone();
        async move {
            let _ = node.publish(CONTRIBUTIONS_TOPIC, bytes).await;
        }
    };
    wait_metric(
        &coord.metrics,
        "entroshard_intake_rejections_total{reason=\"quarantined\"}",
        1.0,
        contribute,
    )
    .await;
    // The gauge is refreshed on the coordinator's upkeep tick, so it may follow a moment later.
    let text = wait_metric(
        &coord.metrics,
        "entroshard_peers_quarantined",
        1.0,
        || async {},
    )
    .await;
    assert_eq!(
        metric(&text, "entroshard_peers_quarantined"),
        Some(1.0),
        "exactly the one node is quarantined: {text}"
    );
    m_node.shutdown().await;

    // The ticket has meanwhile (Mallory's part above takes most of its 15 s) or soon expired:
    // wait for the holder's clock to pass the expiry (same host, same clock).
    let deadline = Instant::now() + DEADLINE;
    while coordinator::service::now_ms() <= ticket.expires_at_ms {
        assert!(Instant::now() < deadline, "the clock stands still");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match fetch_raw(&node, holder_peer, &holder_quic, &grant.ticket).await {
        Err(Refusal::Ticket(TicketRefusal::Expired { expired_at_ms, .. })) => {
            assert_eq!(expired_at_ms, ticket.expires_at_ms)
        }
        other => panic!("an expired ticket was not refused as expired: {other:?}"),
    }
    let text = wait_metric(
        &holder_metrics,
        "entroshard_requests_refused_total{protocol=\"fetch\",reason=\"ticket_expired\"}",
        1.0,
        || async {},
    )
    .await;
    assert_eq!(
        metric_sum(
            &text,
            "entroshard_requests_refused_total{protocol=\"fetch\",reason=\"ticket_wrong_requester\"}"
        ),
        0.0,
        "the expired ticket was shown by its own requester:\n{text}"
    );
    node.shutdown().await;
    drop(peers);
}
