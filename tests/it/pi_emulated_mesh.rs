//! ARM peers under qemu-user in the real loopback mesh: an aarch64 and an armv7 `entroshard peer`
//! (cross-built release binaries) run next to three native peers and a native coordinator; the
//! emulated peers harvest, pass their health tests, contribute credited entropy, are attested,
//! hold a share each and serve it, and the requester rebuilds the key from a set of shares that
//! must include both of theirs (two native holders are killed before the second fetch).
//!
//! Opt-in (about 3–6 minutes on a loaded 2-core machine, most of it under emulation):
//! `scripts/pi-emulated-mesh.sh` cross-builds, installs qemu-user and runs this test with
//! `ENTROSHARD_AARCH64_BIN` and `ENTROSHARD_ARMV7_BIN` set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use coordinator::admin::{self, AdminAnswer, AdminCall, PeerLine};
use protocols::wire::SourceState;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Emulation is slow: every wait that involves an emulated peer gets this much.
const EMULATED_DEADLINE: Duration = Duration::from_secs(300);

/// An emulated architecture: the qemu-user runner, its sysroot and the binary under test.
struct Emulated {
    label: &'static str,
    qemu: &'static str,
    sysroot: &'static str,
    binary: PathBuf,
}

impl Emulated {
    fn from_env(label: &'static str, var: &str, qemu: &'static str, sysroot: &'static str) -> Self {
        let binary = PathBuf::from(
            std::env::var(var).unwrap_or_else(|_| panic!("{var} must name the {label} binary")),
        );
        assert!(binary.is_file(), "{} does not exist", binary.display());
        Emulated {
            label,
            qemu,
            sysroot,
            binary,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.qemu);
        cmd.arg("-L").arg(self.sysroot).arg(&self.binary);
        cmd
    }

    fn sha256_hex(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&self.binary).unwrap()))
    }
}

/// `peer init` through `cmd` (native or emulated) on the machine's jitter source (short windows,
/// `common::init_peer_via`) and a fixed port.
fn init_peer_via(
    cmd: Command,
    dir: &Path,
    coord: &CoordinatorProc,
    region: &str,
    operator: &str,
    seed: u64,
) {
    let port = free_port();
    let (tcp, quic) = loopback_listen_addrs(port);
    common::init_peer_via(
        cmd,
        dir,
        &coord.addr,
        region,
        operator,
        seed,
        &[
            "--listen",
            &tcp,
            "--listen",
            &quic,
            "--low-memory",
            "--contribution-interval",
            "0.5",
            "--heartbeat-interval",
            "1",
        ],
    );
}

fn spawn_peer_via(mut cmd: Command, dir: &Path) -> Proc {
    let log = std::fs::File::create(dir.join("peer.log")).unwrap();
    Proc(
        cmd.args(["peer", "run", "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn status(coord: &CoordinatorProc) -> Vec<PeerLine> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match runtime
        .block_on(admin::call(
            &coord.dir.path().join("admin.sock"),
            &AdminCall::Status,
        ))
        .unwrap()
    {
        AdminAnswer::Status(lines) => lines,
        other => panic!("status answered {other:?}"),
    }
}

fn logs(dirs: &[&Path]) -> String {
    dirs.iter()
        .map(|d| {
            let log = std::fs::read_to_string(d.join("peer.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            format!(
                "--- {}\n{}",
                d.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn fetch_hex(dir: &Path, ticket: &Path) -> String {
    String::from_utf8(fetch_key(dir, ticket, "hex"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
#[ignore = "needs cross-built ARM binaries and qemu-user: run scripts/pi-emulated-mesh.sh"]
fn emulated_arm_peers_contribute_hold_and_serve_shares_that_rebuild_the_key() {
    let started = Instant::now();
    let arm = [
        Emulated::from_env(
            "aarch64",
            "ENTROSHARD_AARCH64_BIN",
            "qemu-aarch64",
            "/usr/aarch64-linux-gnu",
        ),
        Emulated::from_env(
            "armv7",
            "ENTROSHARD_ARMV7_BIN",
            "qemu-arm",
            "/usr/arm-linux-gnueabihf",
        ),
    ];
    // Five contributors required: no key before both emulated peers have given credited entropy.
    let coord = spawn_coordinator(1024, 5);
    for e in &arm {
        run_ok(
            &["coordinator", "allow", &e.sha256_hex()],
            &[("--data-dir", coord.dir.path())],
        );
    }
    // Regions and operators keep every quorum rule satisfiable with all five as holders.
    let placement = [
        ("eu", "a"),
        ("us", "b"),
        ("ap", "c"),
        ("eu", "b"),
        ("us", "c"),
    ];
    let mut peers = Vec::new();
    for (i, (region, operator)) in placement.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let emulated = i.checked_sub(3).and_then(|j| arm.get(j));
        let cmd = || emulated.map(Emulated::command).unwrap_or_else(entroshard);
        init_peer_via(
            cmd(),
            dir.path(),
            &coord,
            region,
            operator,
            700 + 10 * i as u64,
        );
        let node = enrol_peer(&coord, dir.path(), region, operator);
        let proc = spawn_peer_via(cmd(), dir.path());
        peers.push((dir, proc, node, emulated.map(|e| e.label)));
    }
    let dirs: Vec<&Path> = peers.iter().map(|p| p.0.path()).collect();

    // The emulated peers are attested, report healthy sources and have credited entropy.
    let deadline = Instant::now() + EMULATED_DEADLINE;
    loop {
        let lines = status(&coord);
        let ready = peers
            .iter()
            .filter(|p| p.3.is_some())
            .all(|(_, _, node, _)| {
                lines.iter().any(|l| {
                    l.node == *node
                        && l.trusted
                        && l.credited_bits > 0
                        && !l.sources.is_empty()
                        && l.sources.iter().all(|s| s.state == SourceState::Healthy)
                })
            });
        if ready {
            for l in &lines {
                eprintln!(
                    "{} trusted={} credited={} sources={:?}",
                    l.node.short(),
                    l.trusted,
                    l.credited_bits,
                    l.sources
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "emulated peers never contributed: {lines:#?}\n{}",
            logs(&dirs)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "emulated peers attested and credited after {:?}",
        started.elapsed()
    );

    // A session over all five; both emulated peers must be holders.
    let req = tempfile::tempdir().unwrap();
    let out = run_ok(
        &[
            "requester",
            "init",
            "--coordinator",
            &coord.addr.to_string(),
        ],
        &[("--data-dir", req.path())],
    );
    let req_pid = line_value(&out, "peer id ");
    run_ok(
        &["coordinator", "requesters", "add", &req_pid],
        &[("--data-dir", coord.dir.path())],
    );
    let ticket = req.path().join("ticket.cbor");
    let deadline = Instant::now() + EMULATED_DEADLINE;
    loop {
        let out = entroshard()
            .args([
                "session", "create", "--n", "5", "--k", "3", "--ttl", "10m", "-o",
            ])
            .arg(&ticket)
            .arg("--data-dir")
            .arg(req.path())
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            Instant::now() < deadline && (err.contains("not ready") || err.contains("timed out")),
            "session create failed: {err}\n{}",
            logs(&dirs)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let shown = run_ok(&["session", "show", ticket.to_str().unwrap()], &[]);
    for (_, _, node, label) in peers.iter().filter(|p| p.3.is_some()) {
        let pid = peer::identity::peer_id(node).unwrap().to_string();
        assert!(
            shown.contains(&pid),
            "{label:?} peer {pid} is not a holder:\n{shown}"
        );
    }
    let key_all = fetch_hex(req.path(), &ticket);
    assert_eq!(key_all.len(), 64);

    // Kill two native holders: the three left (one native, two emulated) are exactly k, so the
    // key can only be rebuilt from shares that the emulated peers serve.
    for (_, proc, _, _) in peers.iter_mut().filter(|p| p.3.is_none()).take(2) {
        proc.kill9();
    }
    let key_from_emulated = fetch_hex(req.path(), &ticket);
    assert_eq!(
        key_from_emulated, key_all,
        "the key rebuilt with the emulated holders' shares differs"
    );
    eprintln!(
        "key rebuilt from shares served by the aarch64 and armv7 peers; whole test took {:?}",
        started.elapsed()
    );
}
