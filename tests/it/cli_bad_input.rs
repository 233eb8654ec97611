//! Bad input an operator types at the CLI, without starting any daemon: each is refused with a
//! message naming the problem, and a refused command writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::{assert_refused, stderr};
use common::entroshard;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const COORDINATOR: &str =
    "/ip4/127.0.0.1/tcp/7400/p2p/12D3KooWLbwY9UYf7ZXkU9NxYW7reLkwtWfk3PUY4q88fXQZBB5X";

/// Runs `entroshard args…` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    entroshard().current_dir(dir).args(args).output().unwrap()
}

fn peer_init<'a>(data_dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "peer",
        "init",
        "--region",
        "r1",
        "--operator",
        "o1",
        // The machine's own jitter source, as every test peer (`peer init` only writes it down).
        "--only-source",
        "jitter",
        "--data-dir",
        data_dir,
    ];
    args.extend_from_slice(extra);
    args
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `args` in a fresh directory and fails unless it is refused with every one of `parts`
/// and leaves the directory empty.
fn assert_refused_writing_nothing(args: &[&str], parts: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), args);
    assert_refused(&out, parts);
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

#[test]
fn peer_init_with_a_bad_coordinator_address_names_it_writes_nothing_and_the_retry_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &peer_init(
            "p",
            &["--coordinator", "/ip4/127.0.0.1/tcp/7400/p2p/garbage"],
        ),
    );
    assert_refused(
        &out,
        &[
            "coordinator address \"/ip4/127.0.0.1/tcp/7400/p2p/garbage\" is not a multiaddr",
            "expected /ip4/<address>/tcp/<port>/p2p/<PeerId>",
        ],
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    let out = run_in(tmp.path(), &peer_init("p", &["--coordinator", COORDINATOR]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        entries(&tmp.path().join("p")),
        ["identity.key", "peer.toml", "share-key.key"]
    );

    // `peer id` prints the same PeerId `init` did, later, from the data directory.
    let peer_id_line = |out: &Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("peer id 12D3KooW"))
            .map(str::to_owned)
    };
    let at_init = peer_id_line(&out).expect("init prints the peer id");
    let id = run_in(tmp.path(), &["peer", "id", "--data-dir", "p"]);
    assert!(id.status.success(), "{}", stderr(&id));
    assert_eq!(peer_id_line(&id), Some(at_init));
    assert_refused(
        &run_in(tmp.path(), &["peer", "id", "--data-dir", "nowhere"]),
        &["loading the peer config"],
    );
}

#[test]
fn peer_init_with_a_host_port_listen_address_shows_the_multiaddr_form_and_writes_nothing() {
    assert_refused_writing_nothing(
        &peer_init(
            "p",
            &["--coordinator", COORDINATOR, "--listen", "0.0.0.0:7401"],
        ),
        &[
            "listen address \"0.0.0.0:7401\" is not a multiaddr",
            "write it as /ip4/0.0.0.0/tcp/7401 (TCP) or /ip4/0.0.0.0/udp/7401/quic-v1 (QUIC)",
        ],
    );
}

#[test]
fn requester_init_with_a_coordinator_address_lacking_its_peer_id_writes_nothing() {
    assert_refused_writing_nothing(
        &[
            "requester",
            "init",
            "--coordinator",
            "/ip4/127.0.0.1/tcp/7400",
            "--data-dir",
            "r",
        ],
        &["coordinator address \"/ip4/127.0.0.1/tcp/7400\" does not end in /p2p/<PeerId>"],
    );
}

#[test]
fn coordinator_init_with_a_host_port_listen_address_shows_the_multiaddr_form_and_writes_nothing() {
    assert_refused_writing_nothing(
        &[
            "coordinator",
            "init",
            "--listen",
            "0.0.0.0:7400",
            "--data-dir",
            "c",
        ],
        &[
            "listen address \"0.0.0.0:7400\" is not a multiaddr",
            "/ip4/0.0.0.0/tcp/7400",
        ],
    );
}

/// `coordinator init` in `tmp/c` on a loopback port nobody dials (the daemon is never run).
fn init_coordinator(tmp: &Path) -> std::path::PathBuf {
    let out = run_in(
        tmp,
        &[
            "coordinator",
            "init",
            "--listen",
            "/ip4/127.0.0.1/tcp/1",
            "--data-dir",
            "c",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    tmp.join("c")
}

/// Rewrites one setting of a TOML config file.
fn set_key(path: &Path, key: &str, value: toml::Value) {
    let mut table: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    table.insert(key.into(), value);
    std::fs::write(path, toml::to_string(&table).unwrap()).unwrap();
}

#[test]
fn coordinator_run_on_a_config_that_would_listen_on_nothing_fails_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_coordinator(tmp.path());
    let config = dir.join("coordinator.toml");
    set_key(
        &config,
        "listen",
        toml::Value::Array(vec!["0.0.0.0:7400".into()]),
    );
    let out = run_in(tmp.path(), &["coordinator", "run", "--data-dir", "c"]);
    assert_refused(
        &out,
        &["listen address \"0.0.0.0:7400\"", "/ip4/0.0.0.0/tcp/7400"],
    );
    set_key(&config, "listen", toml::Value::Array(Vec::new()));
    let out = run_in(tmp.path(), &["coordinator", "run", "--data-dir", "c"]);
    assert_refused(
        &out,
        &["no listen address; the coordinator would listen on nothing"],
    );
}

#[test]
fn a_misspelt_key_in_peer_toml_or_coordinator_toml_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_coordinator(tmp.path());
    set_key(
        &dir.join("coordinator.toml"),
        "metrcs",
        "127.0.0.1:9400".into(),
    );
    let out = run_in(tmp.path(), &["coordinator", "run", "--data-dir", "c"]);
    assert_refused(&out, &["unknown field `metrcs`"]);

    let out = run_in(tmp.path(), &peer_init("p", &["--coordinator", COORDINATOR]));
    assert!(out.status.success(), "{}", stderr(&out));
    set_key(
        &tmp.path().join("p/peer.toml"),
        "metrcs",
        "127.0.0.1:9401".into(),
    );
    let out = run_in(tmp.path(), &["peer", "run", "--data-dir", "p"]);
    assert_refused(&out, &["unknown field `metrcs`"]);
}

#[test]
fn printing_to_a_closed_pipe_ends_quietly_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 3] = [
        &[
            "coordinator",
            "init",
            "--listen",
            "/ip4/127.0.0.1/tcp/1",
            "--data-dir",
            "c",
        ],
        &peer_init("p", &["--coordinator", COORDINATOR]),
        &[
            "requester",
            "init",
            "--coordinator",
            COORDINATOR,
            "--data-dir",
            "r",
        ],
    ];
    for args in commands {
        // The reading end is closed before the command starts: its first line meets EPIPE, as
        // under `| head -0`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = entroshard()
            .current_dir(tmp.path())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// The ticket file `session create` writes (the binary's `TicketFile`, field for field).
#[derive(serde::Serialize)]
struct TicketFile {
    v: u16,
    coordinator: String,
    grant: protocols::ticket::TicketGrant,
    receipt: Option<protocols::wire::EntropyReceipt>,
}

/// A ticket file with one holder, signed by a made-up coordinator.
fn ticket_file(path: &Path) {
    use protocols::identity::NodeKey;
    use protocols::sharing::{CommitmentBytes, Commitments};
    use protocols::ticket::{Ticket, TicketGrant, TicketHolder};
    use protocols::wire::{SignedEnvelope, WIRE_VERSION};
    let coordinator = NodeKey::from_secret_bytes(&[1; 32]);
    let ticket = Ticket {
        v: WIRE_VERSION,
        coordinator: coordinator.node_id(),
        session: protocols::ids::SessionId([5; 16]),
        epoch: 0,
        requester: NodeKey::from_secret_bytes(&[2; 32]).node_id(),
        holders: vec![TicketHolder {
            node: NodeKey::from_secret_bytes(&[3; 32]).node_id(),
            index: 1,
            addrs: vec!["/ip4/127.0.0.1/udp/1/quic-v1".into()],
        }],
        commitments: Commitments(vec![CommitmentBytes([0; 32]); 1]),
        policy_digest: [8; 32],
        issued_at_ms: 1_000,
        expires_at_ms: 10_000,
        nonce: [0; 16],
    };
    let file = TicketFile {
        v: 1,
        coordinator: COORDINATOR.into(),
        grant: TicketGrant {
            v: WIRE_VERSION,
            ticket: SignedEnvelope::seal(&coordinator, &ticket),
            opening_keys: Vec::new(),
        },
        receipt: None,
    };
    std::fs::write(path, protocols::wire::encode(&file)).unwrap();
}

#[test]
fn session_show_into_a_closed_pipe_ends_quietly_instead_of_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    let ticket = tmp.path().join("t");
    ticket_file(&ticket);
    let out = run_in(tmp.path(), &["session", "show", "t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("session    05050505"));
    // `session show t | head -1` once `head` has gone: the pipe's reading end is closed before
    // the command starts, so its first write meets EPIPE every time.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = entroshard()
        .current_dir(tmp.path())
        .args(["session", "show", "t"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn an_admin_command_on_a_directory_without_a_coordinator_names_it_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let allow = ["coordinator", "allow", &"ab".repeat(32)];
    let out = run_in(tmp.path(), &[&allow[..], &["--data-dir", "typo"]].concat());
    assert_refused(&out, &["no coordinator data directory typo"]);
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let out = run_in(tmp.path(), &[&allow[..], &["--data-dir", "empty"]].concat());
    assert_refused(&out, &["empty holds no coordinator database"]);
    assert_eq!(entries(tmp.path()), ["empty"]);
    assert!(entries(&tmp.path().join("empty")).is_empty());
}

#[test]
fn peer_init_keeps_the_join_token_out_of_peer_toml_in_a_0600_file() {
    let tmp = tempfile::tempdir().unwrap();
    let token = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let out = run_in(
        tmp.path(),
        &peer_init("p", &["--coordinator", COORDINATOR, "--join-token", token]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tmp.path().join("p");
    assert!(
        !std::fs::read_to_string(dir.join("peer.toml"))
            .unwrap()
            .contains(token)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("join-token")).unwrap(),
        token
    );
    for secret in ["join-token", "identity.key", "share-key.key"] {
        let mode = std::fs::metadata(dir.join(secret))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret}");
    }
}

#[test]
fn peer_init_refuses_a_symlinked_identity_key_and_leaves_its_target_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    std::fs::create_dir(&dir).unwrap();
    let target = tmp.path().join("victim");
    std::os::unix::fs::symlink(&target, dir.join("identity.key")).unwrap();
    let out = run_in(tmp.path(), &peer_init("p", &["--coordinator", COORDINATOR]));
    assert_refused(
        &out,
        &["p/identity.key is a symlink; a secret file is never written through one"],
    );
    assert!(!target.exists(), "the symlink was followed");
    assert_eq!(entries(&dir), ["identity.key"]);
}
