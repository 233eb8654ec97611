//! Quarantine end to end, with real processes on loopback: a holder restarted on a binary that is
//! not on the allowlist fails attestation, is quarantined, loses its shares to a rotation (cause
//! `quarantine`) that keeps the key fetchable, and never receives a share of a new session; its
//! contributions are refused. Counted in the coordinator's `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cluster::*;
use common::*;
use protocols::ids::NodeId;
use protocols::wire::SessionPolicy;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Six peers in three regions: with one quarantined, a (5,3) quorum must take the other five.
const REGIONS: [&str; 6] = [
    "eu-west", "us-east", "ap-south", "eu-west", "us-east", "ap-south",
];

fn holders_of(grant: &protocols::ticket::TicketGrant) -> (u32, Vec<NodeId>) {
    let ticket: protocols::ticket::Ticket = grant.ticket.open_from_any_signer().unwrap().1;
    (
        ticket.epoch,
        ticket.holders.iter().map(|h| h.node).collect(),
    )
}

/// A copy of the binary with one byte appended: it runs the same, but its SHA-256 is not allowed.
fn tampered_binary(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("entroshard-tampered");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_entroshard")).unwrap();
    bytes.push(0);
    std::fs::write(&path, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

async fn wait_until(what: &str, coord: &CoordinatorProc, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: timed out\n{}",
            std::fs::read_to_string(coord.dir.path().join("coordinator.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_holder_loses_its_shares_and_never_receives_new_ones() {
    let coord = spawn_coordinator_with(1024, 3, &["--attestation-interval", "1"]);
    let mut peers = spawn_peers(&coord, &REGIONS).await;
    let a = authorised_requester(&coord).await;
    let policy = SessionPolicy {
        n: 5,
        k: 3,
        ttl_s: 600,
        requesters: vec![],
        label: "quarantine".into(),
    };
    let (first, first_grant) = create(&a, &policy).await.unwrap();
    let key = a.fetch(&first_grant).await.unwrap();
    let (_, holders) = holders_of(&first_grant);

    // Restart one holder on a binary whose hash the coordinator does not allow.
    let bad = peers
        .iter_mut()
        .find(|p| holders.contains(&p.node))
        .unwrap();
    let bad_node = bad.node;
    let bad_metrics = bad.metrics.clone();
    bad.proc.kill9();
    let exe = tampered_binary(bad.dir.path());
    bad.proc = spawn_peer_exe(&exe, bad.dir.path());

    wait_until("quarantine counted", &coord, || {
        metric(
            &http_get(&coord.metrics, "/metrics"),
            "entroshard_quarantines_total{reason=\"bad_evidence\"}",
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;

    // Within one rotation the session moves off the quarantined holder and keeps its key.
    let deadline = Instant::now() + DEADLINE;
    let moved = loop {
        let grant = a.ticket(first).await.unwrap();
        let (epoch, now_holders) = holders_of(&grant);
        if epoch >= 1 && !now_holders.contains(&bad_node) {
            break grant;
        }
        assert!(
            Instant::now() < deadline,
            "session never moved off the quarantined holder"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        a.fetch(&moved).await.unwrap(),
        key,
        "same key after the move"
    );
    // Counted once the rotation task reports back (after the commit the ticket already shows).
    wait_until("rotation counted by cause", &coord, || {
        metric(
            &http_get(&coord.metrics, "/metrics"),
            "entroshard_rotations_total{cause=\"quarantine\"}",
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    // Its epoch-0 share is deleted after the commit.
    wait_until("quarantined holder emptied", &coord, || {
        metric(
            &http_get(&bad_metrics, "/metrics"),
            "entroshard_shares_held",
        ) == Some(0.0)
    })
    .await;

    // Six peers, one quarantined, n = 5: a quorum that ignored quarantine would pick it 5 times in 6.
    for _ in 0..3 {
        let (_, grant) = create(&a, &policy).await.unwrap();
        let (_, holders) = holders_of(&grant);
        assert!(
            !holders.contains(&bad_node),
            "a quarantined peer was given a share"
        );
        assert_eq!(holders.len(), 5);
    }
    assert_eq!(
        metric(
            &http_get(&bad_metrics, "/metrics"),
            "entroshard_shares_held"
        ),
        Some(0.0)
    );
    // Its contributions are refused and counted.
    wait_until("quarantined contributions refused", &coord, || {
        metric(
            &http_get(&coord.metrics, "/metrics"),
            "entroshard_intake_rejections_total{reason=\"quarantined\"}",
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    // Counted when the loop takes the stored session's report, which may trail the reply.
    wait_until("sessions counted", &coord, || {
        metric(
            &http_get(&coord.metrics, "/metrics"),
            "entroshard_sessions_created_total",
        )
        .is_some_and(|n| n >= 4.0)
    })
    .await;
    let text = http_get(&coord.metrics, "/metrics");
    assert_eq!(metric(&text, "entroshard_peers_quarantined"), Some(1.0));
    drop(peers);
}
