//! End-to-end: a device joins with a one-time token instead of enrolment by PeerId; the token
//! cannot be used twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use coordinator::admin::{AdminAnswer, AdminCall};
use std::time::{Duration, Instant};

fn status(socket: &std::path::Path) -> Vec<coordinator::admin::PeerLine> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match rt
        .block_on(coordinator::admin::call(socket, &AdminCall::Status))
        .unwrap()
    {
        AdminAnswer::Status(lines) => lines,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_join_token_enrols_one_device_once() {
    let coord = spawn_coordinator(1024, 3);
    let token = run_ok(
        &[
            "coordinator",
            "join-token",
            "--region",
            "eu-west",
            "--operator",
            "alpha",
            "--ttl",
            "600",
        ],
        &[("--data-dir", coord.dir.path())],
    );
    let token = token.trim().to_string();
    let first = tempfile::tempdir().unwrap();
    init_peer_with(
        first.path(),
        &coord.addr,
        "eu-west",
        "alpha",
        1,
        &["--join-token", &token],
    );
    let _first_proc = spawn_peer(first.path());
    let first_id = peer::identity::read_key(&first.path().join("identity.key"))
        .unwrap()
        .node_id();
    let socket = coord.dir.path().join("admin.sock");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if status(&socket)
            .iter()
            .any(|l| l.node == first_id && l.trusted && l.region == "eu-west")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the device never joined");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(first.path().join("joined").exists());

    // The same token again: refused, and the second device is never enrolled.
    let second = tempfile::tempdir().unwrap();
    init_peer_with(
        second.path(),
        &coord.addr,
        "eu-west",
        "alpha",
        2,
        &["--join-token", &token],
    );
    let _second_proc = spawn_peer(second.path());
    let deadline = Instant::now() + DEADLINE;
    while !std::fs::read_to_string(second.path().join("peer.log"))
        .unwrap_or_default()
        .contains("join token refused")
    {
        assert!(
            Instant::now() < deadline,
            "the reused token was not refused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second_id = peer::identity::read_key(&second.path().join("identity.key"))
        .unwrap()
        .node_id();
    assert!(status(&socket).iter().all(|l| l.node != second_id));
    assert!(!second.path().join("joined").exists());
}
