//! The daemons speak systemd's notify protocol: with `NOTIFY_SOCKET` set (as systemd sets it for
//! `Type=notify`), `coordinator run` and `peer run` send `READY=1` once they serve, then
//! `WATCHDOG=1` at half of `WATCHDOG_USEC`, and `STOPPING=1` on SIGTERM. The socket here is a
//! plain Unix datagram socket in a temporary directory, standing in for the service manager's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Receives notify datagrams until one holds `line`; returns every line seen.
fn wait_for(socket: &UnixDatagram, line: &str, what: &str, log: &Path) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{what}: no {line:?} (saw {seen:?}); log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.extend(text.lines().map(str::to_owned));
            if text.lines().any(|l| l == line) {
                return seen;
            }
        }
    }
}

fn notify_env(cmd: &mut Command, socket: &Path) {
    cmd.env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID");
}

fn sigterm(child: &std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

#[test]
fn coordinator_and_peer_notify_ready_feed_the_watchdog_and_announce_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let coordinator_socket_path = tmp.path().join("coordinator.notify");
    let coordinator_socket = UnixDatagram::bind(&coordinator_socket_path).unwrap();

    // Coordinator, with its config written to a separate path (as the package does).
    let cdir = tmp.path().join("coordinator");
    let config = tmp.path().join("coordinator.toml");
    let port = free_port();
    let out = run_ok(
        &[
            "coordinator",
            "init",
            "--listen",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("--data-dir", &cdir)],
    );
    let coordinator_pid = line_value(&out, "peer id ");
    let clog = tmp.path().join("coordinator.log");
    let mut cmd = entroshard();
    cmd.args(["coordinator", "run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&clog).unwrap());
    notify_env(&mut cmd, &coordinator_socket_path);
    let mut coordinator = Proc(cmd.spawn().unwrap());
    let seen = wait_for(&coordinator_socket, "READY=1", "coordinator", &clog);
    assert!(
        tmp.path().join("coordinator/admin.sock").exists(),
        "READY before the admin socket: {seen:?}"
    );
    wait_for(&coordinator_socket, "WATCHDOG=1", "coordinator", &clog);
    wait_for(&coordinator_socket, "WATCHDOG=1", "coordinator", &clog);

    // A peer pinned to it.
    let peer_socket_path = tmp.path().join("peer.notify");
    let peer_socket = UnixDatagram::bind(&peer_socket_path).unwrap();
    let pdir = tmp.path().join("peer");
    std::fs::create_dir_all(&pdir).unwrap();
    let coord_addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{coordinator_pid}")
        .parse()
        .unwrap();
    init_peer_with(&pdir, &coord_addr, "eu", "a", 42, &["--low-memory"]);
    let plog = pdir.join("peer.log");
    let mut cmd = entroshard();
    cmd.args(["peer", "run", "--data-dir"])
        .arg(&pdir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&plog).unwrap());
    notify_env(&mut cmd, &peer_socket_path);
    let peer = Proc(cmd.spawn().unwrap());
    wait_for(&peer_socket, "READY=1", "peer", &plog);
    wait_for(&peer_socket, "WATCHDOG=1", "peer", &plog);

    sigterm(&peer.0);
    wait_for(&peer_socket, "STOPPING=1", "peer", &plog);
    sigterm(&coordinator.0);
    wait_for(&coordinator_socket, "STOPPING=1", "coordinator", &clog);
    let deadline = Instant::now() + DEADLINE;
    while coordinator.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "coordinator did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    coordinator.kill9();
}

#[test]
fn peer_config_in_a_separate_file_fills_a_template_and_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let template = "# packaged documentation\n# region = \"home\"\n";
    let config = tmp.path().join("peer.toml");
    std::fs::write(&config, template).unwrap();
    let coordinator =
        "/ip4/127.0.0.1/tcp/7400/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let data = tmp.path().join("state");
    let init = |region: &str| {
        entroshard()
            .args([
                "peer",
                "init",
                "--coordinator",
                coordinator,
                "--operator",
                "o",
            ])
            .args(["--region", region, "--low-memory"])
            .args([
                "--only-source",
                "jitter",
                "--assess-samples",
                "200000",
                "--data-dir",
            ])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let first = init("r1");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("region = \"r1\""), "{text}");
    assert!(text.contains("profile = \"low-memory\""), "{text}");
    assert!(
        text.ends_with(template),
        "the template's comments are kept: {text}"
    );
    let identity = std::fs::read(data.join("identity.key")).unwrap();

    let second = init("r2");
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("never overwritten"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    assert_eq!(std::fs::read(data.join("identity.key")).unwrap(), identity);
}
