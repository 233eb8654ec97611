//! Hostile input on the tunnel port (`entroshard tunnel listen`): a connection that sends nothing
//! (held past the handshake timeout), random bytes, an oversized length prefix, a truncated
//! handshake, a connection closed at once and a Noise handshake with the wrong pre-shared key.
//! Each is refused with a log line naming the connection and the reason, while the listener keeps
//! listening (decision 0033); afterwards a real `tunnel connect` with the session's ticket still
//! carries a message, and a second listener with `--idle-timeout` closes a quiet channel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::*;
use common::cluster::spawn_peers;
use common::*;
use rand::RngExt;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// The listener's handshake timeout in this test, in seconds.
const HANDSHAKE_TIMEOUT_S: &str = "3";

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// The listener's log line for the connection from `s`, once it has refused it.
fn refusal_of(log: &StderrLines, s: &TcpStream, reason: &str) -> String {
    let from = format!("refused a connection from {}", s.local_addr().unwrap());
    let line = log.wait_for(&[&from, reason]);
    assert!(line.contains("still listening"), "{line}");
    line
}

fn listen(addr: &str, ticket: &Path, dir: &Path, extra: &[&str]) -> Child {
    entroshard()
        .args(["tunnel", "listen", addr, "--ticket"])
        .arg(ticket)
        .args(["--handshake-timeout", HANDSHAKE_TIMEOUT_S])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The initiator's first NNpsk0 message under `psk`, framed as the tunnel frames it.
fn first_message(psk: &[u8; 32]) -> Vec<u8> {
    let mut hs = snow::Builder::new("Noise_NNpsk0_25519_ChaChaPoly_SHA256".parse().unwrap())
        .prologue(b"entroshard/v1/tunnel")
        .unwrap()
        .psk(0, psk)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = hs.write_message(&[], &mut buf).unwrap();
    let mut out = u16::try_from(n).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&buf[..n]);
    out
}

#[test]
fn hostile_connections_to_a_tunnel_are_refused_by_name_and_the_listener_still_serves() {
    let coord = spawn_coordinator(512, 2);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let peers = runtime.block_on(spawn_peers(&coord, &["r0", "r1", "r2"]));
    let dir = tempfile::tempdir().unwrap();
    let requester_id = requester(&coord, dir.path());
    run_ok(
        &["coordinator", "requesters", "add", &requester_id],
        &[("--data-dir", coord.dir.path())],
    );
    let ticket = dir.path().join("ticket.cbor");
    create_session(dir.path(), &ticket, 3, 2, &["--label", "tunnel"]);

    let addr = format!("127.0.0.1:{}", free_port());
    let mut listener = Proc(listen(&addr, &ticket, dir.path(), &[]));
    let log = StderrLines::watch(&mut listener.0);
    log.wait_for(&["listening on"]);

    // Slowloris: connected, silent, held open; refused once the timeout passes, and meanwhile
    // the attempts below are handled.
    let silent = connect(&addr);

    let mut garbage = connect(&addr);
    let mut bytes: Vec<u8> = (0..4096).map(|_| rand::rng().random()).collect();
    if bytes[..2] == [0, 48] {
        bytes[1] = 49;
    }
    let announced = u16::from_be_bytes([bytes[0], bytes[1]]);
    let _ = garbage.write_all(&bytes);
    refusal_of(
        &log,
        &garbage,
        &format!("not a tunnel handshake (first frame announces {announced} bytes"),
    );

    let mut oversized = connect(&addr);
    let _ = oversized.write_all(&[0xff, 0xff]);
    let _ = oversized.write_all(&[0u8; 1000]);
    refusal_of(&log, &oversized, "first frame announces 65535 bytes");

    let mut truncated = connect(&addr);
    truncated.write_all(&first_message(&[7; 32])[..20]).unwrap();
    truncated.shutdown(Shutdown::Write).unwrap();
    refusal_of(
        &log,
        &truncated,
        "connection closed inside the first message",
    );

    let closed = connect(&addr);
    closed.shutdown(Shutdown::Write).unwrap();
    refusal_of(&log, &closed, "connection closed before it");

    let mut wrong_key = connect(&addr);
    wrong_key.write_all(&first_message(&[7; 32])).unwrap();
    refusal_of(&log, &wrong_key, "different session key");
    wrong_key
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = wrong_key.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "a wrong-key initiator got a handshake answer"
    );

    refusal_of(
        &log,
        &silent,
        &format!("not completed within {HANDSHAKE_TIMEOUT_S}s"),
    );
    assert!(
        listener.0.try_wait().unwrap().is_none(),
        "the listener exited after refused connections:\n{}",
        log.text()
    );

    // The session's own ticket still opens the channel, and a message crosses it.
    let mut connector = tunnel_connect(&addr, &ticket, dir.path());
    connector
        .stdin
        .take()
        .unwrap()
        .write_all(b"still here after the noise\n")
        .unwrap();
    let connected = connector.wait_with_output().unwrap();
    assert!(
        connected.status.success(),
        "tunnel connect failed: {}",
        String::from_utf8_lossy(&connected.stderr)
    );
    let mut got = String::new();
    listener
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    let status = listener.0.wait().unwrap();
    assert!(status.success(), "listener failed:\n{}", log.text());
    assert_eq!(got, "still here after the noise\n");
    log.wait_for(&["channel up"]);
    drop((silent, garbage, oversized, truncated, closed, wrong_key));

    // A channel that carries nothing is closed by a listener with --idle-timeout (exit status 1,
    // the reason logged); the connector, whose stdin stays open, sees its end.
    let addr = format!("127.0.0.1:{}", free_port());
    let mut quiet_listener = Proc(listen(&addr, &ticket, dir.path(), &["--idle-timeout", "1"]));
    let quiet_log = StderrLines::watch(&mut quiet_listener.0);
    quiet_log.wait_for(&["listening on"]);
    let mut quiet = Proc(tunnel_connect(&addr, &ticket, dir.path()));
    let quiet_stdin = quiet.0.stdin.take();
    quiet_log.wait_for(&["channel up"]);
    let line = quiet_log.wait_for(&["no message either way for 1s"]);
    let status = quiet_listener.0.wait().unwrap();
    assert!(!status.success(), "an idle channel ended well: {line}");
    drop(quiet_stdin);
    let status = quiet.0.wait().unwrap();
    assert!(status.success(), "the connector of a closed channel failed");
    drop(peers);
}

fn tunnel_connect(addr: &str, ticket: &Path, dir: &Path) -> Child {
    entroshard()
        .args(["tunnel", "connect", addr, "--ticket"])
        .arg(ticket)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
