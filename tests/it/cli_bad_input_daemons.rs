//! Bad input that only a running coordinator shows: a listen port already in use (TCP and
//! QUIC) fails `coordinator run` with the OS's reason, and `coordinator rotate` of an unknown
//! session is refused by name. Each test holds the fleet slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::path::Path;
use std::process::Output;

/// `coordinator init` in `dir` listening on `listen`.
fn init(dir: &Path, listen: &[String]) {
    let mut cmd = entroshard();
    cmd.args(["coordinator", "init", "--data-dir"]).arg(dir);
    for l in listen {
        cmd.args(["--listen", l]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `coordinator run` on `dir`, to completion (it fails at start-up in these tests); its stderr
/// is a pipe, as when a service manager or `2> file` takes it.
fn run_to_exit(dir: &Path) -> Output {
    entroshard()
        .args(["coordinator", "run", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn a_second_coordinator_on_a_taken_tcp_port_fails_with_the_os_reason_and_logs_without_colour() {
    let first = spawn_coordinator(1, 1);
    let port = first.addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
        _ => None,
    });
    let tcp = format!("/ip4/127.0.0.1/tcp/{}", port.unwrap());
    let second = tempfile::tempdir().unwrap();
    init(second.path(), std::slice::from_ref(&tcp));
    let out = run_to_exit(second.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "listen on {tcp}: Address already in use (os error 98)"
        )),
        "{err}"
    );
    assert!(
        err.contains(" INFO "),
        "no log line before the failure: {err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "ANSI codes in a non-terminal log: {err:?}"
    );
}

#[test]
fn a_quic_port_in_use_fails_with_the_os_reason_not_an_empty_one() {
    let _fleet = fleet_slot();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let quic = format!(
        "/ip4/127.0.0.1/udp/{}/quic-v1",
        taken.local_addr().unwrap().port()
    );
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), std::slice::from_ref(&quic));
    let out = run_to_exit(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "listen on {quic}: Address already in use (os error 98)"
        )),
        "{err}"
    );
}

#[test]
fn rotating_an_unknown_session_says_not_found_and_fails() {
    let coord = spawn_coordinator(1, 1);
    let session = "00112233445566778899aabbccddeeff";
    let out = entroshard()
        .args(["coordinator", "rotate", session, "--data-dir"])
        .arg(coord.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("session {session} not found")),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
