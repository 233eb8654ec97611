//! The NAT testbed (scripts/testbed/testbed.sh): a coordinator and a relay peer on public
//! addresses, peers in three homes behind nftables NAT (one symmetric-like), and a requester
//! behind the third home's NAT. A session is placed on NATed holders only, and the requester
//! fetches its key several times: every fetch succeeds, and the shares are counted by the path
//! they came over (direct, hole-punched, relayed).
//!
//! Needs root and `ip netns` (CI runs as root); without them it says why and passes, except under
//! `CI=1`, where it fails. Run it alone, under the fleet lock:
//! `flock /tmp/entroshard-fleet.lock cargo test --test nat_mesh -- --nocapture`.
//! `NAT_MESH_BIN` runs another build of `entroshard` (a baseline measurement) and
//! `NAT_MESH_EXPECT_ALL=0` then reports the fetches without requiring them to succeed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use libp2p::Multiaddr;
use protocols::ticket::{Ticket, TicketGrant};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FETCHES: usize = 5;

fn testbed_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed/testbed.sh")
}

/// Why the testbed cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: network namespaces need root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns` unavailable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("`ip` (iproute2) missing: {e}")),
    }
}

/// The namespaces, up while this lives; torn down (every process in them killed) when dropped.
struct Testbed;

impl Testbed {
    fn up() -> Self {
        let out = Command::new(testbed_script()).arg("up").output().unwrap();
        assert!(
            out.status.success(),
            "testbed up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Testbed
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new(testbed_script()).arg("down").status();
    }
}

/// The binary under test, or the one `NAT_MESH_BIN` names.
fn bin() -> PathBuf {
    std::env::var_os("NAT_MESH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_entroshard")))
}

/// `entroshard` in namespace `ns`.
fn in_ns(ns: &str) -> Command {
    let mut cmd = exits_with_this_test(Command::new("ip"));
    cmd.args(["netns", "exec", ns]).arg(bin());
    cmd
}

fn run_in(ns: &str, args: &[&str], dir: &Path) -> std::process::Output {
    in_ns(ns)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// A daemon in `ns`, logging to `log`.
fn spawn_in(ns: &str, args: &[&str], dir: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(
        in_ns(ns)
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "info,libp2p_relay=info,libp2p_dcutr=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// A peer of the testbed: namespace, address, region, operator, whether it is behind NAT.
struct PeerSpec {
    ns: &'static str,
    ip: &'static str,
    region: &'static str,
    operator: &'static str,
    natted: bool,
}

const PEERS: [PeerSpec; 6] = [
    PeerSpec {
        ns: "es-relay",
        ip: "100.64.2.2",
        region: "us",
        operator: "r",
        natted: false,
    },
    PeerSpec {
        ns: "es-h1-p1",
        ip: "10.1.0.11",
        region: "eu",
        operator: "a",
        natted: true,
    },
    PeerSpec {
        ns: "es-h1-p2",
        ip: "10.1.0.12",
        region: "eu",
        operator: "b",
        natted: true,
    },
    PeerSpec {
        ns: "es-h2-p1",
        ip: "10.2.0.11",
        region: "us",
        operator: "c",
        natted: true,
    },
    PeerSpec {
        ns: "es-h2-p2",
        ip: "10.2.0.12",
        region: "us",
        operator: "d",
        natted: true,
    },
    PeerSpec {
        ns: "es-h3-p1",
        ip: "10.3.0.11",
        region: "ap",
        operator: "e",
        natted: true,
    },
];

/// The ticket inside a ticket file (the CLI's `TicketFile`, read field by field).
fn read_ticket(path: &Path) -> Ticket {
    #[derive(serde::Deserialize)]
    struct TicketFile {
        #[allow(dead_code)]
        v: u16,
        #[allow(dead_code)]
        coordinator: String,
        grant: TicketGrant,
    }
    let file: TicketFile =
        protocols::wire::decode_bounded(&std::fs::read(path).unwrap(), 1 << 20).unwrap();
    file.grant.ticket.open_from_any_signer().unwrap().1
}

/// `(direct, hole-punched, relayed)` from each of the fetch's "shares by path: …" lines.
fn paths(stderr: &str) -> Vec<(u32, u32, u32)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("shares by path: "))
        .map(|line| {
            let count = |name: &str| -> u32 {
                line.split(", ")
                    .find_map(|part| part.strip_prefix(name)?.trim().parse().ok())
                    .unwrap_or(0)
            };
            (count("direct "), count("hole-punched "), count("relayed "))
        })
        .collect()
}

#[test]
fn a_requester_behind_nat_fetches_every_time_from_holders_behind_nat() {
    if let Some(reason) = unavailable() {
        assert!(
            std::env::var("CI").as_deref() != Ok("1"),
            "the NAT testbed must run in CI: {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let expect_all = std::env::var("NAT_MESH_EXPECT_ALL").as_deref() != Ok("0");
    let started = Instant::now();
    let _fleet = fleet_slot();
    let _testbed = Testbed::up();

    // The coordinator on its public address (also a relay for NATed peers).
    let coord_dir = tempfile::tempdir().unwrap();
    let init = Command::new(bin())
        .args(["coordinator", "init", "--data-dir"])
        .arg(coord_dir.path())
        .args([
            "--listen",
            "/ip4/100.64.1.2/tcp/4001",
            "--listen",
            "/ip4/100.64.1.2/udp/4001/quic-v1",
            "--min-credited-bits",
            "1024",
            "--min-contributors",
            "3",
            "--attestation-interval",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let coord_id = line_value(&String::from_utf8_lossy(&init.stdout), "peer id ");
    let coord_addr: Multiaddr = format!("/ip4/100.64.1.2/tcp/4001/p2p/{coord_id}")
        .parse()
        .unwrap();
    let coord_log = coord_dir.path().join("coordinator.log");
    let coord_proc = spawn_in(
        "es-coord",
        &["coordinator", "run"],
        coord_dir.path(),
        &coord_log,
    );
    let socket = coord_dir.path().join("admin.sock");
    let deadline = Instant::now() + DEADLINE;
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "coordinator did not start: {}",
            std::fs::read_to_string(&coord_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _coord_proc = coord_proc;

    // Peers: the relay on its public address, the others at home behind NAT.
    let mut peers = Vec::new();
    let mut relay_addr = String::new();
    for (i, spec) in PEERS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let tcp = format!("/ip4/{}/tcp/4001", spec.ip);
        let quic = format!("/ip4/{}/udp/4001/quic-v1", spec.ip);
        let mut extra = vec![
            "--listen",
            &tcp,
            "--listen",
            &quic,
            "--contribution-interval",
            "0.5",
            "--heartbeat-interval",
            "1",
        ];
        let baseline = std::env::var_os("NAT_MESH_BIN").is_some();
        if !spec.natted && !baseline {
            extra.push("--relay-server");
        }
        // NATed peers reserve on the relay peer too (the coordinator is their first relay).
        if spec.natted && !baseline {
            extra.extend(["--relay", relay_addr.as_str()]);
        }
        init_peer_via(
            exits_with_this_test(Command::new(bin())),
            dir.path(),
            &coord_addr,
            spec.region,
            spec.operator,
            900 + i as u64,
            &extra,
        );
        let node = enrol_in(coord_dir.path(), dir.path(), spec.region, spec.operator);
        if !spec.natted {
            relay_addr = format!(
                "/ip4/{}/tcp/4001/p2p/{}",
                spec.ip,
                peer::identity::peer_id(&node).unwrap()
            );
        }
        let log = dir.path().join("peer.log");
        let proc = spawn_in(spec.ns, &["peer", "run"], dir.path(), &log);
        peers.push((dir, proc, node));
    }
    let relay_node = peers[0].2;
    let logs = || {
        let mut text = String::new();
        for ((dir, _, _), spec) in peers.iter().zip(PEERS.iter()) {
            let log = std::fs::read_to_string(dir.path().join("peer.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            text += &format!(
                "--- {}\n{}\n",
                spec.ns,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let log = std::fs::read_to_string(&coord_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        text + "--- coordinator\n" + &tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    };

    // The requester, at home behind the third NAT.
    let req_dir = tempfile::tempdir().unwrap();
    let out = run_in(
        "es-h3-req",
        &[
            "requester",
            "init",
            "--coordinator",
            &coord_addr.to_string(),
        ],
        req_dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req_pid = line_value(&String::from_utf8_lossy(&out.stdout), "peer id ");
    run_ok(
        &["coordinator", "requesters", "add", &req_pid],
        &[("--data-dir", coord_dir.path())],
    );

    // A session whose holders are all behind NAT, on tickets that carry a way to reach them (a
    // relayed address; the baseline build has none to offer and takes the first NATed quorum).
    let ticket_path = req_dir.path().join("ticket.cbor");
    let deadline = Instant::now() + DEADLINE;
    let mut attempts = 0;
    let ticket = loop {
        let out = in_ns("es-h3-req")
            .args([
                "session", "create", "--n", "3", "--k", "2", "--ttl", "10m", "-o",
            ])
            .arg(&ticket_path)
            .arg("--data-dir")
            .arg(req_dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() || err.contains("not ready"),
            "session create failed: {err}\n{}",
            logs()
        );
        assert!(
            Instant::now() < deadline,
            "no session on NATed, relay-reachable holders after {attempts} sessions: {err}\n{}",
            logs()
        );
        if out.status.success() {
            attempts += 1;
            let ticket = read_ticket(&ticket_path);
            let natted = ticket.holders.iter().all(|h| h.node != relay_node);
            let reachable = !expect_all
                || ticket
                    .holders
                    .iter()
                    .all(|h| h.addrs.iter().any(|a| a.contains("p2p-circuit")));
            if natted && reachable {
                break ticket;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for h in &ticket.holders {
        eprintln!("holder #{} at {:?}", h.index, h.addrs);
    }

    // Fetches from behind NAT.
    let mut ok = 0;
    let mut total = (0, 0, 0);
    let mut keys = std::collections::BTreeSet::new();
    for i in 0..FETCHES {
        let t0 = Instant::now();
        let out = in_ns("es-h3-req")
            .arg("fetch")
            .arg(&ticket_path)
            .args(["--format", "hex", "--data-dir"])
            .arg(req_dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let by_path = paths(&err).first().copied().unwrap_or_default();
        eprintln!(
            "fetch {}: {} in {:.2} s; shares by path (direct, hole-punched, relayed) {:?}{}",
            i + 1,
            if out.status.success() { "ok" } else { "FAILED" },
            t0.elapsed().as_secs_f64(),
            by_path,
            if out.status.success() {
                String::new()
            } else {
                format!(": {}", err.trim())
            }
        );
        if out.status.success() {
            ok += 1;
            keys.insert(String::from_utf8_lossy(&out.stdout).trim().to_string());
            total = (
                total.0 + by_path.0,
                total.1 + by_path.1,
                total.2 + by_path.2,
            );
        }
    }
    eprintln!(
        "NAT mesh: {ok} of {FETCHES} fetches succeeded; shares by path: direct {}, hole-punched {}, relayed {} ({} sessions created, {:.0} s in all)",
        total.0,
        total.1,
        total.2,
        attempts,
        started.elapsed().as_secs_f64()
    );
    // Warm: one requester process fetching again and again keeps its connections, so a relayed
    // one DCUtR upgraded carries the later fetches.
    let mut warm = (0, 0, 0);
    let mut warm_ok = 0;
    if expect_all {
        let out = in_ns("es-h3-req")
            .arg("fetch")
            .arg(&ticket_path)
            .args([
                "--format",
                "hex",
                "--repeat",
                &FETCHES.to_string(),
                "--data-dir",
            ])
            .arg(req_dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "repeated fetch failed: {err}\n{}",
            logs()
        );
        keys.insert(String::from_utf8_lossy(&out.stdout).trim().to_string());
        for (i, p) in paths(&err).into_iter().enumerate() {
            eprintln!(
                "warm fetch {}: shares by path (direct, hole-punched, relayed) {p:?}",
                i + 1
            );
            warm_ok += 1;
            warm = (warm.0 + p.0, warm.1 + p.1, warm.2 + p.2);
        }
        eprintln!(
            "NAT mesh, one requester fetching {FETCHES} times: {warm_ok} fetches; shares by path: direct {}, hole-punched {}, relayed {}",
            warm.0, warm.1, warm.2
        );
    }

    // DCUtR's outcome as the holders logged it (a hole punch completes after the relayed fetch it
    // upgrades; each fetch is a new process, so later fetches do not reuse it).
    let (mut punched, mut punch_failed) = (0, 0);
    for (dir, _, _) in &peers {
        let log = std::fs::read_to_string(dir.path().join("peer.log")).unwrap_or_default();
        punched += log.matches("hole punched: direct connection").count();
        punch_failed += log.matches("hole punch failed").count();
    }
    eprintln!(
        "NAT mesh: hole punches logged by holders: {punched} succeeded, {punch_failed} failed"
    );
    if expect_all {
        assert_eq!(ok, FETCHES, "not every fetch succeeded\n{}", logs());
        assert_eq!(
            warm_ok, FETCHES,
            "the repeated fetch did not report every fetch"
        );
        assert_eq!(keys.len(), 1, "fetches rebuilt different keys: {keys:?}");
    }
}
