//! Device peers as processes of the binary under test: `peer init` on the machine's own jitter
//! source with short windows, and `peer run` logging to the peer's data directory.

use super::*;

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
/// Listeners on ephemeral loopback ports, a contribution every 0.5 s and a heartbeat every 0.5 s
/// unless `extra` gives `--listen`, `--contribution-interval` or `--heartbeat-interval`. Two
/// contributions a second still fill a test coordinator's per-peer cap of 1,024 credited bits
/// per one-second round; every block more was harvested (CPU jitter, each sample a timed
/// workload) only to be mixed in uncredited (decision 0072).
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
            &["--contribution-interval", "0.5"],
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
