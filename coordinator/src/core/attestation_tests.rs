//! Attestation on virtual time with real signed evidence: slices, challenges on connect,
//! verdicts, quarantines entered, changed, lifted and kept.
#![allow(clippy::unwrap_used)]

use super::*;
use protocols::attestation::HealthCounters;
use protocols::identity::NodeKey;
use protocols::wire::{WIRE_VERSION, encode};

const WINDOW: u64 = 10_000;
const VALIDITY: u64 = 600_000;
const LIMIT: usize = 64 * 1024;
const BINARY: [u8; 32] = [0xaa; 32];

/// Makes the answer bytes (or the transport error) for a challenge's nonce.
type Answerer = Box<dyn Fn([u8; 32]) -> Result<Vec<u8>, NoAnswer>>;

fn key(i: u8) -> NodeKey {
    NodeKey::from_secret_bytes(&[i; 32])
}

fn fleet(n: u8) -> PeerTable {
    let mut peers = PeerTable::default();
    for i in 1..=n {
        peers.enrol(key(i).node_id(), "eu".into(), "op".into());
    }
    peers
}

fn allowed() -> BTreeSet<[u8; 32]> {
    [BINARY].into_iter().collect()
}

/// The peer's signed answer to `nonce`, made at `at_ms`, from a binary with `binary` digest.
fn answer(peer: &NodeKey, nonce: [u8; 32], at_ms: u64, binary: [u8; 32]) -> Vec<u8> {
    answer_stating(peer, nonce, at_ms, binary, Some(share_pk(peer)))
}

/// The share key peer `peer` states.
fn share_pk(peer: &NodeKey) -> BoxPublic {
    protocols::share_box::BoxSecret::from_uniform_bytes(
        &[peer.node_id().0, [1; 32]].concat().try_into().unwrap(),
    )
    .public()
}

/// [`answer`] stating `stated` as its share key (`None`: a build from before share keys).
fn answer_stating(
    peer: &NodeKey,
    nonce: [u8; 32],
    at_ms: u64,
    binary: [u8; 32],
    stated: Option<BoxPublic>,
) -> Vec<u8> {
    let evidence = Evidence {
        v: WIRE_VERSION,
        node: peer.node_id(),
        nonce,
        binary_sha256: binary,
        config_digest: [1; 32],
        boot_id: "boot".into(),
        uptime_s: 5,
        health: HealthCounters::default(),
        at_ms,
        share_key: stated.map(|pk| protocols::attestation::share_key::sign(peer, pk)),
    };
    encode(&Reply {
        v: WIRE_VERSION,
        result: Ok(SignedEnvelope::seal(peer, &evidence)),
    })
}

/// Issues a challenge to peer `i` at `now` and judges `reply` arriving at `at`.
fn round(
    att: &mut Attestations,
    peers: &mut PeerTable,
    i: u8,
    now: u64,
    reply: impl FnOnce([u8; 32]) -> Result<Vec<u8>, NoAnswer>,
    at: u64,
) -> Option<Verdict> {
    let node = key(i).node_id();
    let nonce = [i.wrapping_add(now as u8); 32];
    att.issue(peers, node, nonce, now, Vec::new(), LIMIT);
    att.handle_answer(peers, &allowed(), node, nonce, reply(nonce), at, LIMIT, at)
}

#[test]
fn every_peer_heard_from_falls_in_exactly_one_slice() {
    let mut peers = fleet(40);
    for i in 1..=39 {
        peers.get_mut(&key(i).node_id()).unwrap().heartbeat_at_ms = Some(1);
    }
    let att = Attestations::new(WINDOW, VALIDITY);
    let mut seen: Vec<NodeId> = (0..SLICES).flat_map(|t| att.slice_due(&peers, t)).collect();
    seen.sort();
    let mut heard: Vec<NodeId> = (1..=39).map(|i| key(i).node_id()).collect();
    heard.sort();
    assert_eq!(
        seen, heard,
        "peer 40 never sent a heartbeat and is not challenged"
    );
    assert_eq!(att.slice_due(&peers, 3), att.slice_due(&peers, 3 + SLICES));
}

#[test]
fn good_evidence_attests_and_a_trusted_peer_is_not_challenged_again_on_connect() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let node = key(1).node_id();
    assert!(att.wanted_on_connect(&peers, &node, 0));
    let v = round(
        &mut att,
        &mut peers,
        1,
        1_000,
        |n| Ok(answer(&key(1), n, 1_100, BINARY)),
        1_200,
    );
    assert_eq!(
        v,
        Some(Verdict {
            label: "good",
            newly_quarantined: false,
            new_share_key: Some(share_pk(&key(1)))
        })
    );
    let p = peers.get(&node).unwrap();
    assert_eq!(p.share_key, Some(share_pk(&key(1))));
    assert_eq!(p.attested_at_ms, Some(1_200));
    assert_eq!(p.answered, (1, 1));
    assert!(!att.wanted_on_connect(&peers, &node, 1_200 + VALIDITY - 1));
    assert!(
        att.wanted_on_connect(&peers, &node, 1_200 + VALIDITY + 1),
        "expired"
    );
}

#[test]
fn a_challenge_out_is_not_doubled_on_connect_and_a_superseded_answer_is_ignored() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let node = key(1).node_id();
    att.issue(&mut peers, node, [1; 32], 0, Vec::new(), LIMIT);
    assert!(!att.wanted_on_connect(&peers, &node, 10));
    att.issue(&mut peers, node, [2; 32], 20, Vec::new(), LIMIT);
    let old = answer(&key(1), [1; 32], 30, BINARY);
    let ignored = att.handle_answer(
        &mut peers,
        &allowed(),
        node,
        [1; 32],
        Ok(old),
        40,
        LIMIT,
        40,
    );
    assert_eq!(ignored, None);
    let new = answer(&key(1), [2; 32], 30, BINARY);
    let judged = att.handle_answer(
        &mut peers,
        &allowed(),
        node,
        [2; 32],
        Ok(new),
        40,
        LIMIT,
        40,
    );
    assert_eq!(judged.map(|v| v.label), Some("good"));
    assert_eq!(peers.get(&node).unwrap().answered, (1, 2));
}

#[test]
fn a_late_answer_a_foreign_binary_a_wrong_signer_or_garbage_is_bad_evidence() {
    let cases: Vec<(&str, Answerer, u64)> = vec![
        (
            "late",
            Box::new(|n| Ok(answer(&key(1), n, 1_100, BINARY))),
            1_000 + WINDOW + 1,
        ),
        (
            "binary",
            Box::new(|n| Ok(answer(&key(1), n, 1_100, [0xbb; 32]))),
            1_200,
        ),
        (
            "signer",
            Box::new(|n| Ok(answer(&key(9), n, 1_100, BINARY))),
            1_200,
        ),
        ("garbage", Box::new(|_| Ok(vec![0xff; 40])), 1_200),
        ("oversized", Box::new(|_| Ok(vec![0; LIMIT + 1])), 1_200),
    ];
    for (what, reply, at) in cases {
        let mut peers = fleet(1);
        let mut att = Attestations::new(WINDOW, VALIDITY);
        let v = round(&mut att, &mut peers, 1, 1_000, reply, at);
        assert_eq!(
            v,
            Some(Verdict {
                label: "bad_evidence",
                newly_quarantined: true,
                new_share_key: None
            }),
            "{what}"
        );
        let p = peers.get(&key(1).node_id()).unwrap();
        assert!(
            matches!(p.quarantine, Some(Quarantine::BadEvidence(_))),
            "{what}"
        );
        assert_eq!(p.attested_at_ms, None, "{what}");
    }
}

#[test]
fn silence_or_a_busy_reply_is_a_missing_answer_counted_once_until_its_reason_changes() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let busy = |_| {
        Ok(encode(&Reply::<SignedEnvelope> {
            v: WIRE_VERSION,
            result: Err(Refusal::RateLimited),
        }))
    };
    let first = round(&mut att, &mut peers, 1, 0, |_| Err(NoAnswer::Timeout), 10);
    assert_eq!(
        first,
        Some(Verdict {
            label: "no_answer",
            newly_quarantined: true,
            new_share_key: None
        })
    );
    let second = round(&mut att, &mut peers, 1, 100, busy, 110);
    assert_eq!(
        second,
        Some(Verdict {
            label: "no_answer",
            newly_quarantined: false,
            new_share_key: None
        })
    );
    let third = round(&mut att, &mut peers, 1, 200, |_| Ok(vec![1, 2, 3]), 210);
    assert_eq!(
        third,
        Some(Verdict {
            label: "bad_evidence",
            newly_quarantined: true,
            new_share_key: None
        })
    );
}

#[test]
fn good_evidence_lifts_an_attestation_quarantine_but_never_a_sticky_one() {
    let mut peers = fleet(2);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    round(
        &mut att,
        &mut peers,
        1,
        0,
        |_| Err(NoAnswer::Request(peer::node::NodeError::Closed)),
        10,
    );
    let good = |n| Ok(answer(&key(1), n, 150, BINARY));
    round(&mut att, &mut peers, 1, 100, good, 200);
    assert_eq!(peers.get(&key(1).node_id()).unwrap().quarantine, None);

    let sticky = Quarantine::BadShare("tampered".into());
    peers.get_mut(&key(2).node_id()).unwrap().quarantine = Some(sticky.clone());
    let bad = round(
        &mut att,
        &mut peers,
        2,
        0,
        |_| Err(NoAnswer::Request(peer::node::NodeError::Closed)),
        10,
    );
    assert_eq!(
        bad,
        Some(Verdict {
            label: "no_answer",
            newly_quarantined: false,
            new_share_key: None
        })
    );
    let good2 = |n| Ok(answer(&key(2), n, 150, BINARY));
    round(&mut att, &mut peers, 2, 100, good2, 200);
    assert_eq!(
        peers.get(&key(2).node_id()).unwrap().quarantine,
        Some(sticky)
    );
}

#[test]
fn the_feedback_is_trimmed_to_the_peers_request_limit() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let feedback: Vec<SourceFeedback> = (0..200)
        .map(|i| SourceFeedback {
            source: format!("source-{i:04}-with-a-long-name"),
            standing: "audited".into(),
            audit_h_millibits: Some(700),
            credited_bits: 1,
            refusals: Vec::new(),
        })
        .collect();
    let bytes = att.issue(&mut peers, key(1).node_id(), [1; 32], 0, feedback, 2_048);
    assert!(bytes.len() <= 2_048, "{} bytes", bytes.len());
    let challenge: Challenge = wire::decode(&bytes, 2_048).unwrap();
    assert!(!challenge.feedback.is_empty() && challenge.feedback.len() < 200);
}

#[test]
fn every_slice_gets_a_share_of_the_fleet() {
    let mut counts = [0u32; SLICES as usize];
    for i in 0..1000u32 {
        let mut secret = [7u8; 32];
        secret[..4].copy_from_slice(&i.to_le_bytes());
        let node = NodeKey::from_secret_bytes(&secret).node_id();
        counts[slice_of(&node) as usize] += 1;
    }
    assert!(counts.iter().all(|c| (50..=150).contains(c)), "{counts:?}");
}

#[test]
fn a_share_key_is_recorded_once_and_a_changed_one_quarantines_the_peer() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let node = key(1).node_id();
    let pk = share_pk(&key(1));
    let v = round(
        &mut att,
        &mut peers,
        1,
        1_000,
        |n| Ok(answer(&key(1), n, 1_100, BINARY)),
        1_200,
    );
    assert_eq!(v.unwrap().new_share_key, Some(pk));
    // Stated again: nothing new to record.
    let v = round(
        &mut att,
        &mut peers,
        1,
        2_000,
        |n| Ok(answer(&key(1), n, 2_100, BINARY)),
        2_200,
    );
    assert_eq!(v.unwrap().label, "good");
    assert_eq!(v.unwrap().new_share_key, None);
    // Another key under the same identity: its stored shares are boxed to the old one.
    let other = share_pk(&key(2));
    let v = round(
        &mut att,
        &mut peers,
        1,
        3_000,
        |n| Ok(answer_stating(&key(1), n, 3_100, BINARY, Some(other))),
        3_200,
    );
    assert_eq!(v.unwrap().label, "bad_evidence");
    let p = peers.get(&node).unwrap();
    assert!(
        matches!(&p.quarantine, Some(Quarantine::BadEvidence(r)) if r.contains("share key changed"))
    );
    assert_eq!(p.share_key, Some(pk), "the recorded key stays");
}

#[test]
fn a_peer_stating_no_share_key_is_attested_but_never_chosen_to_hold_a_share() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let node = key(1).node_id();
    let v = round(
        &mut att,
        &mut peers,
        1,
        1_000,
        |n| Ok(answer_stating(&key(1), n, 1_100, BINARY, None)),
        1_200,
    );
    assert_eq!(v.unwrap().label, "good");
    assert_eq!(v.unwrap().new_share_key, None);
    assert!(peers.get(&node).unwrap().trusted(1_200, VALIDITY));
    assert_eq!(peers.trusted_without_share_key(1_200, VALIDITY), vec![node]);
}

#[test]
fn evidence_with_a_share_key_signed_by_another_identity_is_bad_evidence() {
    let mut peers = fleet(1);
    let mut att = Attestations::new(WINDOW, VALIDITY);
    let node = key(1).node_id();
    let v = round(
        &mut att,
        &mut peers,
        1,
        1_000,
        |n| {
            let evidence = Evidence {
                v: WIRE_VERSION,
                node: key(1).node_id(),
                nonce: n,
                binary_sha256: BINARY,
                config_digest: [1; 32],
                boot_id: "boot".into(),
                uptime_s: 5,
                health: HealthCounters::default(),
                at_ms: 1_100,
                share_key: Some(protocols::attestation::share_key::sign(
                    &key(2),
                    share_pk(&key(2)),
                )),
            };
            Ok(encode(&Reply {
                v: WIRE_VERSION,
                result: Ok(SignedEnvelope::seal(&key(1), &evidence)),
            }))
        },
        1_200,
    );
    assert_eq!(v.unwrap().label, "bad_evidence");
    assert_eq!(peers.get(&node).unwrap().share_key, None);
}
