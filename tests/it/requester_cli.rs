//! End-to-end through the CLI only: requesters created with `requester init`, a session made with
//! `session create`, keys fetched in every format by two requesters, and a Noise tunnel keyed by the
//! session key (and refused with a different key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::*;
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn cli_requesters_share_a_key_and_open_a_tunnel_only_with_it() {
    let coord = spawn_coordinator(1024, 3);
    let mut peers = Vec::new();
    for i in 0..5usize {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let (tcp, quic) = loopback_listen_addrs(port);
        init_peer_with(
            dir.path(),
            &coord.addr,
            ["eu", "us", "ap"][i % 3],
            ["a", "b", "c"][(i + i / 3) % 3],
            300 + i as u64 * 10,
            &["--listen", &tcp, "--listen", &quic],
        );
        enrol_peer(
            &coord,
            dir.path(),
            ["eu", "us", "ap"][i % 3],
            ["a", "b", "c"][(i + i / 3) % 3],
        );
        let proc = spawn_peer(dir.path());
        peers.push((dir, proc));
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a_pid = requester(&coord, a_dir.path());
    let b_pid = requester(&coord, b_dir.path());
    run_ok(
        &["coordinator", "requesters", "add", &a_pid],
        &[("--data-dir", coord.dir.path())],
    );

    let a_ticket = a_dir.path().join("ticket.cbor");
    let session = create_session(
        a_dir.path(),
        &a_ticket,
        5,
        3,
        &["--requester", &b_pid, "--label", "cli"],
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&a_ticket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let shown = run_ok(&["session", "show", a_ticket.to_str().unwrap()], &[]);
    assert!(
        shown.contains("threshold  3 of 5") && shown.contains("credited bits"),
        "{shown}"
    );

    let b_ticket = b_dir.path().join("ticket.cbor");
    session_ticket(b_dir.path(), &session, &b_ticket);
    let hex_a = String::from_utf8(fetch_key(a_dir.path(), &a_ticket, "hex")).unwrap();
    let hex_b = String::from_utf8(fetch_key(b_dir.path(), &b_ticket, "hex")).unwrap();
    assert_eq!(hex_a, hex_b);
    assert_eq!(hex_a.trim().len(), 64);
    let raw = fetch_key(a_dir.path(), &a_ticket, "raw");
    assert_eq!(hex::encode(&raw), hex_a.trim());
    let wg = String::from_utf8(fetch_key(a_dir.path(), &a_ticket, "wireguard")).unwrap();
    assert!(
        wg.starts_with("PresharedKey = ") && wg.trim().len() == "PresharedKey = ".len() + 44,
        "{wg}"
    );

    // A share tampered in one holder's store is rejected and named; the key is still rebuilt.
    let holder1 = line_value(&shown, "holder #1   ");
    let victim = peers.iter_mut().find(|(dir, _)| {
        let key = peer::identity::read_key(&dir.path().join("identity.key")).unwrap();
        peer::identity::peer_id(&key.node_id()).unwrap().to_string() == holder1
    });
    let (victim_dir, victim_proc) = victim.expect("holder #1 is one of our peers");
    victim_proc.kill9();
    {
        let store =
            peer::store::ShareStore::open(&victim_dir.path().join("shares.redb"), 4096).unwrap();
        let sid = protocols::ids::SessionId(hex::decode(&session).unwrap().try_into().unwrap());
        let mut stored = store
            .get(&sid, 0)
            .unwrap()
            .expect("holder #1 holds epoch 0");
        match &mut stored.share {
            peer::store::HeldShare::Sealed(sealed) => sealed.ciphertext[0] ^= 0x01,
            // A holder that alters its share: it opens its box, changes the value and boxes it
            // to itself again, so it serves a share that opens but fails the commitments.
            peer::store::HeldShare::Boxed(b) => {
                let own = peer::share_key::read(&victim_dir.path().join("share-key.key")).unwrap();
                let context = protocols::holder_box::slot_context(&b.slot);
                let mut value = *own.open(&context, &b.boxed).unwrap();
                value[0] ^= 0x01;
                b.boxed = protocols::share_box::box_to(
                    &own.public(),
                    &context,
                    &value,
                    &mut rand_core::UnwrapErr(rand::rngs::SysRng),
                )
                .unwrap();
            }
        }
        store.delete_epoch(&sid, 0).unwrap();
        store.put_held(&stored.share, stored.expires_at_ms).unwrap();
    }
    *victim_proc = spawn_peer(victim_dir.path());
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(victim_dir.path().join("peer.toml")).unwrap())
            .unwrap();
    let port: u16 = config["listen"][0]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .and_then(|p| p.parse().ok())
        .expect("fixed tcp port in peer.toml");
    let up = Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < up, "restarted holder never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A long hedge: a restarted holder slow to answer on a loaded machine must still be asked
    // to the end (and named), not gone around.
    let out = entroshard()
        .args(["fetch"])
        .arg(&a_ticket)
        .args(["--hedge-after", "60s", "--format", "hex", "--data-dir"])
        .arg(a_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        hex_a,
        "the key is rebuilt from the honest holders"
    );
    assert!(
        stderr.contains("(share 1): bad share"),
        "the tampered holder is named: {stderr}"
    );

    // Tunnel: B listens, A connects; a message crosses; then a tunnel with another session's key fails.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut listen = tunnel("listen", &addr, &b_ticket, b_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = wait_listening(&mut listen);
    let mut connect = tunnel("connect", &addr, &a_ticket, a_dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    connect
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello over the session key\n")
        .unwrap();
    assert!(connect.wait().unwrap().success());
    let mut got = String::new();
    listen
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert!(listen.wait().unwrap().success());
    assert_eq!(got, "hello over the session key\n");

    let other_ticket = a_dir.path().join("other.cbor");
    create_session(a_dir.path(), &other_ticket, 5, 3, &[]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut listen = tunnel("listen", &addr, &b_ticket, b_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tail = StderrLines::watch(&mut listen);
    tail.wait_for(&["listening on"]);
    let out = tunnel("connect", &addr, &other_ticket, a_dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("different session key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The listener refuses that connection, says why, and keeps listening (decision 0033).
    let line = tail.wait_for(&["refused a connection", "different session key"]);
    assert!(line.contains("still listening"), "{line}");
    assert!(
        listen.try_wait().unwrap().is_none(),
        "the listener exited after a refused handshake:\n{}",
        tail.text()
    );
    listen.kill().unwrap();
    listen.wait().unwrap();
    drop(peers);
}

/// `entroshard tunnel <mode> addr --ticket ticket` as the requester in `dir`.
fn tunnel(mode: &str, addr: &str, ticket: &Path, dir: &Path) -> std::process::Command {
    let mut cmd = entroshard();
    cmd.args(["tunnel", mode, addr, "--ticket"])
        .arg(ticket)
        .arg("--data-dir")
        .arg(dir);
    cmd
}
