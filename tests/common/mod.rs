//! Shared helpers for end-to-end tests: child processes of the real binary, test nodes, deadlines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod cluster;
pub mod crash_loop;
pub mod mesh;
pub mod promtool;
pub mod requesters;
pub mod testbed;

use libp2p::{Multiaddr, PeerId};
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle};
use protocols::identity::NodeKey;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// Upper bound for any wait in these tests: a bound on a hang, never the expected duration (the
/// suite must pass beside other CPU-bound work on two cores).
pub const DEADLINE: Duration = Duration::from_secs(300);

/// The right to run a fleet of processes (a coordinator and its peers, a demo, a bench): one at
/// a time across every test thread and test binary of this build, since two fleets started at
/// once on two cores starve each other. Released when dropped.
pub struct FleetSlot(#[allow(dead_code)] std::fs::File);

/// Waits for the [`FleetSlot`] (an exclusive `flock` on a file in the build's test directory).
pub fn fleet_slot() -> FleetSlot {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("entroshard-fleet.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    file.lock().unwrap();
    FleetSlot(file)
}

/// The `entroshard` binary under test.
pub fn entroshard() -> Command {
    exits_with_this_test(Command::new(env!("CARGO_BIN_EXE_entroshard")))
}

/// Makes the process `command` starts exit once this test process is gone (a test binary killed
/// by a timeout leaves no daemon behind).
pub fn exits_with_this_test(mut command: Command) -> Command {
    command.env(
        "ENTROSHARD_EXIT_WITH_PARENT",
        std::process::id().to_string(),
    );
    command
}

/// A child process killed with SIGKILL when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `entroshard peer run` on `data_dir`, logs to `data_dir/peer.log`.
pub fn spawn_peer(data_dir: &Path) -> Proc {
    spawn_peer_exe(Path::new(env!("CARGO_BIN_EXE_entroshard")), data_dir)
}

/// `spawn_peer` running the binary at `exe` (a modified copy, in attestation tests).
pub fn spawn_peer_exe(exe: &Path, data_dir: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("peer.log"))
        .unwrap();
    let child = exits_with_this_test(Command::new(exe))
        .args(["peer", "run", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info,peer=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// TCP and QUIC listen addresses on 127.0.0.1 at one fixed port (a restarted peer is found where
/// it was).
pub fn loopback_listen_addrs(port: u16) -> (String, String) {
    (
        format!("/ip4/127.0.0.1/tcp/{port}"),
        format!("/ip4/127.0.0.1/udp/{port}/quic-v1"),
    )
}

/// `entroshard peer init` on the machine's own jitter source (short windows) and loopback listeners.
pub fn init_peer(
    data_dir: &Path,
    coordinator: &Multiaddr,
    region: &str,
    operator: &str,
    seed: u64,
) {
    init_peer_with(data_dir, coordinator, region, operator, seed, &[]);
}

/// `init_peer` with extra `peer init` arguments.
pub fn init_peer_with(
    data_dir: &Path,
    coordinator: &Multiaddr,
    region: &str,
    operator: &str,
    seed: u64,
    extra: &[&str],
) {
    init_peer_via(
        entroshard(),
        data_dir,
        coordinator,
        region,
        operator,
        seed,
        extra,
    );
}

/// Samples in a test peer's first-start assessment and in the coordinator's entropy audits of
/// it: enough for the ten SP 800-90B estimators to give a model (credit stays capped by the
/// source's declared rate), few enough that a debug fleet beside other work starts in seconds.
pub const TEST_WINDOW_SAMPLES: &str = "16384";

/// `init_peer_with` run through `cmd` (the binary itself, or an emulator running another build).
/// Listeners on ephemeral loopback ports, a contribution every 0.2 s and a heartbeat every 0.5 s
/// unless `extra` gives `--listen`, `--contribution-interval` or `--heartbeat-interval`.
pub fn init_peer_via(
    mut cmd: Command,
    data_dir: &Path,
    coordinator: &Multiaddr,
    region: &str,
    operator: &str,
    seed: u64,
    extra: &[&str],
) {
    let defaults: [(&str, &[&str]); 3] = [
        (
            "--listen",
            &[
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--listen",
                "/ip4/127.0.0.1/udp/0/quic-v1",
            ],
        ),
        (
            "--contribution-interval",
            &["--contribution-interval", "0.2"],
        ),
        ("--heartbeat-interval", &["--heartbeat-interval", "0.5"]),
    ];
    let out = cmd
        .args([
            "peer",
            "init",
            "--coordinator",
            &coordinator.to_string(),
            "--region",
            region,
            "--operator",
            operator,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(
            defaults
                .iter()
                .filter(|(flag, _)| !extra.contains(flag))
                .flat_map(|(_, args)| args.iter()),
        )
        .args(
            if extra.contains(&"--simulated-source")
                || extra.contains(&"--no-hardware")
                || extra.contains(&"--assess-samples")
            {
                // A test that injects a fault (or runs a device as shipped) names its own
                // sources.
                Vec::new()
            } else {
                // The machine's own CPU-jitter source, assessed on fewer samples than a device's
                // 1,000,000 so a test fleet starts in seconds even on a busy machine (the ten
                // estimators over each window are most of a debug fleet's start-up); the polled
                // sensors are left out so five debug-build peers do not keep two cores busy
                // reading /proc (`seed` is unused: real noise has none).
                let _ = seed;
                vec![
                    "--assess-samples",
                    TEST_WINDOW_SAMPLES,
                    "--only-source",
                    "jitter",
                ]
            },
        )
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "peer init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test node on loopback TCP + QUIC.
pub async fn test_node(key: &NodeKey) -> (NodeHandle, mpsc::Receiver<NodeEvent>, Multiaddr) {
    let config = NodeConfig::network(vec![
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
    ]);
    let (handle, mut events) = node::start(key, config).await.unwrap();
    let addr = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(NodeEvent::Listening(a)) = events.recv().await
                && a.iter()
                    .any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)))
            {
                return a;
            }
        }
    })
    .await
    .unwrap();
    let full = addr.with(libp2p::multiaddr::Protocol::P2p(handle.peer_id()));
    (handle, events, full)
}

/// PeerId of a key.
pub fn peer_id(key: &NodeKey) -> PeerId {
    peer::identity::peer_id(&key.node_id()).unwrap()
}

/// A loopback port that was free a moment ago (for daemons that must be dialled by others).
pub fn free_port() -> u16 {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    // Make sure the UDP port is free too, for QUIC on the same number.
    let _udp = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    port
}

/// Runs a CLI command to completion and returns its stdout, failing the test on error.
pub fn run_ok(args: &[&str], dir_args: &[(&str, &Path)]) -> String {
    let mut cmd = entroshard();
    cmd.args(args);
    for (flag, path) in dir_args {
        cmd.arg(flag).arg(path);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `coordinator enrol` (through the CLI, on the coordinator's data directory) of the peer
/// initialised in `peer_dir`; returns the peer's id.
pub fn enrol_peer(
    coord: &CoordinatorProc,
    peer_dir: &Path,
    region: &str,
    operator: &str,
) -> protocols::ids::NodeId {
    enrol_in(coord.dir.path(), peer_dir, region, operator)
}

/// `coordinator enrol --data-dir coord_dir` of the peer initialised in `peer_dir`; its id.
pub fn enrol_in(
    coord_dir: &Path,
    peer_dir: &Path,
    region: &str,
    operator: &str,
) -> protocols::ids::NodeId {
    let node = peer::identity::read_key(&peer_dir.join("identity.key"))
        .unwrap()
        .node_id();
    let pid = peer::identity::peer_id(&node).unwrap().to_string();
    run_ok(
        &[
            "coordinator",
            "enrol",
            &pid,
            "--region",
            region,
            "--operator",
            operator,
        ],
        &[("--data-dir", coord_dir)],
    );
    node
}

/// `entroshard fetch ticket --format hex` as the requester in `dir`, whatever its outcome.
pub fn fetch_output(dir: &Path, ticket: &Path) -> std::process::Output {
    entroshard()
        .arg("fetch")
        .arg(ticket)
        .args(["--format", "hex", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap()
}

/// `entroshard fetch ticket --format format` as the requester in `dir`; its stdout.
pub fn fetch_key(dir: &Path, ticket: &Path, format: &str) -> Vec<u8> {
    let out = entroshard()
        .arg("fetch")
        .arg(ticket)
        .args(["--format", format, "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The value after `prefix` on the first line that starts with it.
pub fn line_value(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
        .trim()
        .to_string()
}

/// A coordinator on a fixed loopback port: init + run as a child process.
pub struct CoordinatorProc {
    /// Data directory.
    pub dir: tempfile::TempDir,
    /// The process.
    pub proc: Proc,
    /// Its TCP multiaddress with /p2p/.
    pub addr: Multiaddr,
    /// Its `/metrics` address (`127.0.0.1:port`).
    pub metrics: String,
    /// Held while the coordinator (and the fleet around it) runs; dropped last.
    pub fleet: FleetSlot,
}

/// `coordinator init` + `coordinator run` on loopback.
pub fn spawn_coordinator(min_bits: u64, min_contributors: usize) -> CoordinatorProc {
    spawn_coordinator_with(min_bits, min_contributors, &[])
}

/// `spawn_coordinator` with extra `coordinator init` arguments (an extra
/// `--attestation-interval` replaces the default of 2 s, an extra `--credit-round` the default of
/// 1 s, an extra `--entropy-audit-samples` the default of [`TEST_WINDOW_SAMPLES`]).
pub fn spawn_coordinator_with(
    min_bits: u64,
    min_contributors: usize,
    extra: &[&str],
) -> CoordinatorProc {
    let fleet = fleet_slot();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = std::iter::repeat_with(free_port)
        .find(|p| *p != port)
        .unwrap();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut args: Vec<String> = [
        "coordinator",
        "init",
        "--metrics",
        &metrics,
        "--listen",
        &format!("/ip4/127.0.0.1/tcp/{port}"),
        "--listen",
        &format!("/ip4/127.0.0.1/udp/{port}/quic-v1"),
        "--min-credited-bits",
        &min_bits.to_string(),
        "--min-contributors",
        &min_contributors.to_string(),
    ]
    .map(String::from)
    .to_vec();
    if !extra.contains(&"--attestation-interval") {
        args.extend(["--attestation-interval".to_string(), "2".to_string()]);
    }
    // One-second crediting rounds, as the demo's fleet (src/fleet.rs): a test that creates
    // sessions back to back otherwise waits up to the default 10 s for its contributors'
    // per-round caps to reset after each key drains the pool.
    if !extra.contains(&"--credit-round") {
        args.extend(["--credit-round".to_string(), "1".to_string()]);
    }
    if !extra.contains(&"--entropy-audit-samples") {
        args.extend([
            "--entropy-audit-samples".to_string(),
            TEST_WINDOW_SAMPLES.to_string(),
        ]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&args, &[("--data-dir", dir.path())]);
    let peer_id = line_value(&out, "peer id ");
    let proc = run_coordinator(dir.path());
    let addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}")
        .parse()
        .unwrap();
    CoordinatorProc {
        dir,
        proc,
        addr,
        metrics,
        fleet,
    }
}

/// `coordinator run` on an initialised data directory; returns once its admin socket is bound.
/// Its log is appended to `coordinator.log`, so a restarted coordinator's log follows the old one.
pub fn run_coordinator(dir: &Path) -> Proc {
    let socket = dir.join("admin.sock");
    // A coordinator killed with SIGKILL leaves its socket file behind.
    let _ = std::fs::remove_file(&socket);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("coordinator.log"))
        .unwrap();
    let child = entroshard()
        .args(["coordinator", "run", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info,coordinator=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    // Ready once the admin socket exists (it is bound after the database and node are up).
    let deadline = std::time::Instant::now() + DEADLINE;
    while !socket.exists() {
        let exited = proc.0.try_wait().unwrap();
        assert!(
            exited.is_none() && std::time::Instant::now() < deadline,
            "coordinator did not start ({exited:?}): {}",
            std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}

impl CoordinatorProc {
    /// SIGKILLs the coordinator and starts it again on the same data directory and port.
    pub fn restart(&mut self) {
        self.proc.kill9();
        self.proc = run_coordinator(self.dir.path());
    }

    /// Its log file (every run of it, appended).
    pub fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("coordinator.log")
    }

    /// Its admin socket.
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("admin.sock")
    }
}

/// The value of the sample `series` (name with its labels, as printed) in a `/metrics` text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `GET path` on a local HTTP endpoint; returns the body.
pub fn http_get(addr: &str, path: &str) -> String {
    try_http_get(addr, path).unwrap()
}

/// `GET path` on a local HTTP endpoint: the body, or the I/O error.
pub fn try_http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// A response of a local HTTP endpoint: status code, content type and body.
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `content-type`, empty when absent.
    pub content_type: String,
    /// Body.
    pub body: String,
}

/// `GET path` on a local HTTP endpoint with an optional `Accept` header.
pub fn http_response(
    addr: &str,
    path: &str,
    accept: Option<&str>,
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    let accept = accept
        .map(|a| format!("accept: {a}\r\n"))
        .unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n{accept}\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    Ok(HttpResponse {
        status,
        content_type,
        body: body.to_string(),
    })
}
