//! A coordinator as a process of the binary under test (init, run, restart on the same port, the
//! fleet slot held while it runs), and devices enrolled on it through the CLI.

use super::*;

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
    set_config(
        &dir.path().join("coordinator.toml"),
        &with_test_credit_hold(&[]),
    );
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

/// Seconds a test coordinator holds a contribution's credit (`credit_hold_s`; the default 5 s is
/// the window in which the same block from another peer cancels both credits, decision 0013).
/// Test fleets run honest peers only, whose blocks never repeat, so the window only delays every
/// fleet's first session; 1 s keeps the hold in the path. The window itself (duplicates within
/// it, after it, clones) is tested in `coordinator::intake`'s unit tests.
pub const TEST_CREDIT_HOLD_S: &str = "1.0";

/// `settings` with `credit_hold_s` = [`TEST_CREDIT_HOLD_S`] added unless they name it.
pub fn with_test_credit_hold<'a>(settings: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = settings.to_vec();
    if !all.iter().any(|(key, _)| *key == "credit_hold_s") {
        all.push(("credit_hold_s", TEST_CREDIT_HOLD_S));
    }
    all
}

/// Replaces each `key = …` line of the TOML file at `path` with `key = value`.
pub fn set_config(path: &Path, settings: &[(&str, &str)]) {
    if settings.is_empty() {
        return;
    }
    let mut text = std::fs::read_to_string(path).unwrap();
    for (key, value) in settings {
        let prefix = format!("{key} = ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| {
                panic!("no {key} in {}", path.display());
            });
        text = text.replacen(line, &format!("{prefix}{value}"), 1);
    }
    std::fs::write(path, text).unwrap();
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
