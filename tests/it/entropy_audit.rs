//! Entropy audits against a lying device, with a real coordinator process and real bytes on
//! loopback: an enrolled, attested node sends contributions whose accounting claims 8 bits per
//! sample while the raw samples it gives the audit are stuck (its source is quarantined and
//! never credited), and a second source answers the audit with garbage (the audit fails and is
//! counted, the source is not credited); the coordinator keeps serving throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cluster::{admin_async, status};
use common::*;
use libp2p::PeerId;
use peer::node::{
    CONTRIBUTIONS_TOPIC, NodeEvent, NodeHandle, Protocol, RequestFrame, STATUS_TOPIC,
};
use protocols::attestation::{Challenge, Evidence, HealthCounters};
use protocols::identity::NodeKey;
use protocols::wire::{
    self, AuditRequest, AuditWindow, Contribution, ContributionBody, CoordinatorCall,
    CoordinatorRecord, CoordinatorRequest, PowerState, Reply, SignedEnvelope, SourceAccounting,
    StatusHeartbeat, WIRE_VERSION,
};
use rand::RngExt;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::time::Instant;

/// Answers attestation with true evidence of the entroshard binary (so the node is trusted), and
/// audits: stuck samples for `prng`, undecodable bytes for `garbage`.
fn answer(key: NodeKey, mut events: tokio::sync::mpsc::Receiver<NodeEvent>) {
    let binary: [u8; 32] =
        Sha256::digest(std::fs::read(env!("CARGO_BIN_EXE_entroshard")).unwrap()).into();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NodeEvent::Request {
                protocol,
                frame: RequestFrame::Bytes(bytes),
                responder,
                ..
            } = event
            else {
                continue;
            };
            let reply = match protocol {
                Protocol::Attest => {
                    let Ok(challenge) = wire::decode::<Challenge>(&bytes, 64 * 1024) else {
                        continue;
                    };
                    let evidence = Evidence {
                        v: WIRE_VERSION,
                        node: key.node_id(),
                        nonce: challenge.nonce,
                        binary_sha256: binary,
                        config_digest: [1; 32],
                        boot_id: "liar".into(),
                        uptime_s: 60,
                        health: HealthCounters {
                            samples: 1_000_000,
                            rct_failures: 0,
                            apt_failures: 0,
                            sources_active: 2,
                            sources_cut_off: 0,
                        },
                        at_ms: coordinator::service::now_ms(),
                        share_key: None,
                    };
                    wire::encode(&Reply::ok(SignedEnvelope::seal(&key, &evidence)))
                }
                Protocol::Audit => {
                    let Ok(request) = wire::decode::<AuditRequest>(&bytes, 1024) else {
                        continue;
                    };
                    if request.source == "garbage" {
                        vec![0xff; 4096]
                    } else {
                        wire::encode(&Reply::ok(AuditWindow {
                            v: WIRE_VERSION,
                            source: request.source,
                            bits_per_sample: 8,
                            samples: vec![1; request.samples as usize],
                        }))
                    }
                }
                _ => continue,
            };
            let _ = responder.respond(reply).await;
        }
    });
}

async fn coordinator_static(node: &NodeHandle, coord: &CoordinatorProc) -> [u8; 32] {
    let peer: PeerId = match coord.addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => panic!("no /p2p/ in {}", coord.addr),
    };
    let call = CoordinatorCall {
        v: WIRE_VERSION,
        request: CoordinatorRequest::GetRecord,
    };
    let bytes = node
        .request(
            Protocol::Coord,
            peer,
            vec![coord.addr.clone()],
            wire::encode(&call),
        )
        .await
        .unwrap();
    let reply: Reply<SignedEnvelope> = wire::decode(&bytes, 1 << 20).unwrap();
    let node_id = peer::identity::node_id(&peer).unwrap();
    reply
        .result
        .unwrap()
        .open::<CoordinatorRecord>(&node_id)
        .unwrap()
        .noise_static
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_claiming_more_entropy_than_its_raw_samples_hold_is_quarantined_per_source() {
    let coord = spawn_coordinator(2048, 3);
    let liar = NodeKey::generate(&mut rand::rng());
    admin_async(
        coord.socket(),
        coordinator::admin::AdminCall::Enrol {
            node: liar.node_id(),
            region: "r0".into(),
            operator: "liar".into(),
        },
    )
    .await;
    let (node, events, addr) = test_node(&liar).await;
    answer(NodeKey::from_secret_bytes(liar.secret_bytes()), events);
    node.dial(coord.addr.clone()).await.unwrap();
    let noise = coordinator_static(&node, &coord).await;

    let metrics = |coord: &CoordinatorProc| {
        let a = coord.metrics.clone();
        async move {
            tokio::task::spawn_blocking(move || http_get(&a, "/metrics"))
                .await
                .unwrap()
        }
    };
    let (mut seq, mut beat) = (coordinator::service::now_ms() * 1000, 0u64);
    let deadline = Instant::now() + DEADLINE;
    let text = loop {
        beat += 1;
        let heartbeat = StatusHeartbeat {
            v: WIRE_VERSION,
            seq: beat,
            at_ms: coordinator::service::now_ms(),
            power: PowerState::Mains,
            region: "r0".into(),
            operator: "liar".into(),
            uptime_s: 60,
            free_store_slots: 100,
            shares_held: 0,
            listen_addrs: vec![addr.to_string()],
            sources: vec![],
            membership: None,
        };
        let _ = node
            .publish(
                STATUS_TOPIC,
                SignedEnvelope::seal(&liar, &heartbeat).to_bytes(),
            )
            .await;
        for source in ["prng", "garbage"] {
            seq += 1;
            let conditioned: Vec<u8> = (0..128).map(|_| rand::rng().random()).collect();
            let body = ContributionBody {
                v: WIRE_VERSION,
                conditioned,
                accounting: SourceAccounting {
                    source: source.into(),
                    bits_per_sample: 8,
                    raw_samples: 160,
                    h_millibits: 8000,
                    estimator: "declared".into(),
                },
            };
            let c = Contribution {
                v: WIRE_VERSION,
                seq,
                sent_at_ms: coordinator::service::now_ms(),
                sealed: peer::contribution::seal(&noise, &liar.node_id(), seq, &body).unwrap(),
                membership: None,
            };
            let _ = node
                .publish(
                    CONTRIBUTIONS_TOPIC,
                    SignedEnvelope::seal(&liar, &c).to_bytes(),
                )
                .await;
        }
        let text = metrics(&coord).await;
        let count = |series: &str| metric(&text, series).unwrap_or(0.0);
        if count("entroshard_entropy_audits_total{outcome=\"overclaim\"}") >= 1.0
            && count("entroshard_entropy_audits_total{outcome=\"failed\"}") >= 1.0
            && count("entroshard_intake_rejections_total{reason=\"source_quarantined\"}") >= 1.0
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the liar was not caught:\n{text}\n{}",
            cluster::log_tail(&coord.log_path())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Nothing it sent was credited, and the coordinator still answers.
    let pid = peer_id(&liar).to_string();
    assert_eq!(
        metric(
            &text,
            &format!("entroshard_credited_entropy_total{{peer=\"{pid}\"}}")
        ),
        None,
        "{text}"
    );
    let line = status(&coord)
        .await
        .into_iter()
        .find(|l| l.node == liar.node_id())
        .expect("the liar is in the peer table");
    assert!(
        line.trusted,
        "attested: only its sources are refused: {line:?}"
    );
    assert!(line.refusals.contains_key("source_quarantined"), "{line:?}");
    node.shutdown().await;
}
