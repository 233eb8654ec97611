//! The NAT testbed (scripts/testbed/testbed.sh): its namespaces and the peers placed in them.
//! What the NAT tests read from a fetch is in `fetch_report.rs` (re-exported here), the mesh that
//! runs in the testbed in `mesh.rs`.

pub use super::fetch_report::*;
use super::*;
use std::path::PathBuf;

/// `testbed.sh` for this thread's testbed (its namespaces' prefix in `TESTBED_PREFIX`).
fn testbed_script() -> Command {
    let mut cmd =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed/testbed.sh"));
    cmd.env("TESTBED_PREFIX", PREFIX.with_borrow(|p| p.clone()));
    cmd
}

/// Testbeds that may be up at once on this machine, and the prefixes of their namespaces'
/// names: the names in this file and the tests (`es-h1-p1`, …) are the first's, and
/// [`netns`] maps them to the testbed of the thread that calls it.
const INSTANCES: [&str; 2] = ["es-", "et-"];

thread_local! {
    /// The prefix of the namespaces of the testbed this test thread brought up (tests run each
    /// on a thread of their own, and a testbed test drives its namespaces from that thread).
    static PREFIX: std::cell::RefCell<String> = std::cell::RefCell::new(INSTANCES[0].into());
}

/// The name of namespace `ns` (`es-h1-p1`, …) in this thread's testbed.
pub fn netns(ns: &str) -> String {
    match ns.strip_prefix(INSTANCES[0]) {
        Some(rest) => PREFIX.with_borrow(|p| format!("{p}{rest}")),
        None => ns.to_string(),
    }
}

/// `ip netns exec` into namespace `ns` (`es-h1-rt`, …) of this thread's testbed ([`netns`]):
/// add the program to run and its arguments.
pub fn netns_exec(ns: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &netns(ns)]);
    cmd
}

/// Why the testbed cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
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

/// `true` when the testbed can run; otherwise says why and returns `false`, except under `CI=1`,
/// where it fails the test.
pub fn testbed_runs_here() -> bool {
    match unavailable() {
        None => true,
        Some(reason) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("1"),
                "the NAT testbed must run in CI: {reason}"
            );
            eprintln!("skipped: {reason}");
            false
        }
    }
}

/// The namespaces, up while this lives; torn down (every process in them killed) when dropped.
/// Holds the machine-wide lock of its instance ([`INSTANCES`], `/tmp/entroshard-testbed-N.lock`)
/// meanwhile: the namespaces' names are the machine's, not the build's, so a testbed brought up
/// by another checkout's tests (another build, a CI clone) under the same names would be torn
/// down or rebuilt under this one — the [`FleetSlot`] locks live in the build's own directory.
/// Sets this thread's namespace prefix ([`netns`]).
pub struct Testbed {
    _machine_wide: std::fs::File,
}

impl Testbed {
    pub fn up() -> Self {
        let (lock, prefix) = loop {
            let free = INSTANCES.iter().enumerate().find_map(|(i, prefix)| {
                let lock = lock_file_at(format!("/tmp/entroshard-testbed-{i}.lock"));
                lock.try_lock().is_ok().then_some((lock, prefix))
            });
            if let Some(free) = free {
                break free;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        PREFIX.set(prefix.to_string());
        let out = testbed_script().arg("up").output().unwrap();
        assert!(
            out.status.success(),
            "testbed up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Testbed {
            _machine_wide: lock,
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = testbed_script().arg("down").status();
    }
}

/// Drops, on home router `router` (`es-h1-rt`, …), every packet from `from` to `to` (IPv4
/// addresses), established connections included: a device cut off from one address. The rule
/// counts what it drops ([`dropped_by_cut`]).
pub fn cut(router: &str, from: &str, to: &str) {
    let out = netns_exec(router)
        .args(["nft", "insert", "rule", "inet", "filter", "forward"])
        .args(["ip", "saddr", from, "ip", "daddr", to, "counter", "drop"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nft insert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packets the [`cut`] rules on `router` dropped so far.
pub fn dropped_by_cut(router: &str) -> u64 {
    let out = netns_exec(router)
        .args(["nft", "list", "chain", "inet", "filter", "forward"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("drop") && l.contains("counter packets"))
        .filter_map(|l| {
            l.split("counter packets ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Homes or public hosts (`h1`, `relay`, …) cut off the internet router (`testbed.sh cut`):
/// every packet through their links dropped, established connections included, until
/// [`RegionCut::heal`] or drop.
pub struct RegionCut(Vec<&'static str>);

impl RegionCut {
    pub fn new(names: &[&'static str]) -> Self {
        let out = testbed_script().arg("cut").args(names).output().unwrap();
        assert!(
            out.status.success(),
            "testbed cut failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        RegionCut(names.to_vec())
    }

    /// Lifts the cut; returns the packets it dropped.
    pub fn heal(mut self) -> u64 {
        let names = std::mem::take(&mut self.0);
        let out = testbed_script().arg("heal").args(&names).output().unwrap();
        assert!(
            out.status.success(),
            "testbed heal failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split("dropped ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }
}

impl Drop for RegionCut {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = testbed_script().arg("heal").args(&self.0).output();
        }
    }
}

/// Under `NAT_MESH_DUMP=<dir>`, writes `text` to `<dir>/<name>-<n>.log` (n counts the files).
pub fn keep_for_diagnosis(name: &str, text: &str) {
    let Some(dir) = std::env::var_os("NAT_MESH_DUMP") else {
        return;
    };
    let _ = std::fs::create_dir_all(&dir);
    let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    let _ = std::fs::write(Path::new(&dir).join(format!("{name}-{n}.log")), text);
}

/// Under `NAT_MESH_DUMP`: each router's nftables ruleset (with its counters) and conntrack
/// table, for a diagnosis.
pub fn dump_routers() {
    if std::env::var_os("NAT_MESH_DUMP").is_none() {
        return;
    }
    for rt in ["es-h1-rt", "es-h2-rt", "es-h3-rt", "es-inet"] {
        for (what, args) in [
            ("nft", &["nft", "list", "ruleset"][..]),
            ("ct", &["conntrack", "-L"]),
        ] {
            if let Ok(out) = netns_exec(rt).args(args).output() {
                let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
                keep_for_diagnosis(&format!("{rt}.{what}"), &text);
            }
        }
    }
}

/// The binary under test, or the one `NAT_MESH_BIN` names (a baseline measurement).
pub fn bin() -> PathBuf {
    std::env::var_os("NAT_MESH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_entroshard")))
}

/// Whether another build runs (`NAT_MESH_BIN`): it knows no relay flags.
pub fn baseline() -> bool {
    std::env::var_os("NAT_MESH_BIN").is_some()
}

/// `entroshard` in namespace `ns`.
pub fn in_ns(ns: &str) -> Command {
    let mut cmd = exits_with_this_test(netns_exec(ns));
    cmd.arg(bin());
    cmd
}

pub fn spawn_in(ns: &str, args: &[&str], dir: &Path, log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Proc(
        in_ns(ns)
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env(
                "RUST_LOG",
                std::env::var("NAT_MESH_PEER_LOG")
                    .unwrap_or_else(|_| "info,libp2p_relay=info,libp2p_dcutr=info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// A peer of the testbed: namespace, address, region, operator, whether it is behind NAT.
pub struct PeerSpec {
    pub ns: &'static str,
    pub ip: &'static str,
    pub region: &'static str,
    pub operator: &'static str,
    pub natted: bool,
}

impl PeerSpec {
    /// The TCP and UDP port it listens on: 4001 for a public peer and the first of a home
    /// (`10.H.0.11`), 4002 for the second (`10.H.0.12`), and so on.
    pub fn port(&self) -> u16 {
        let last: u16 = self
            .ip
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(11);
        if self.natted { 3990 + last } else { 4001 }
    }
}

/// The peers: the two public relays first, then the homes.
pub const PEERS: [PeerSpec; 7] = [
    PeerSpec {
        ns: "es-relay",
        ip: "100.64.2.2",
        region: "us",
        operator: "r",
        natted: false,
    },
    PeerSpec {
        ns: "es-relay2",
        ip: "100.64.3.2",
        region: "ap",
        operator: "s",
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

/// The other seven peer namespaces behind NAT: with [`PEERS`], twelve NATed peers, each home's
/// four (issue 19's testbed). Only `nat_mesh` under `NAT_MESH_ALL_PEERS=1` starts them
/// ([`super::mesh::Mesh::start_all`]); CI's tests run on [`PEERS`], a fleet a loaded 2-core
/// machine carries (fifteen debug daemons made fetches 20 times slower there).
pub const MORE_HOME_PEERS: [PeerSpec; 7] = [
    PeerSpec {
        ns: "es-h1-p3",
        ip: "10.1.0.13",
        region: "eu",
        operator: "f",
        natted: true,
    },
    PeerSpec {
        ns: "es-h1-p4",
        ip: "10.1.0.14",
        region: "eu",
        operator: "g",
        natted: true,
    },
    PeerSpec {
        ns: "es-h2-p3",
        ip: "10.2.0.13",
        region: "us",
        operator: "h",
        natted: true,
    },
    PeerSpec {
        ns: "es-h2-p4",
        ip: "10.2.0.14",
        region: "us",
        operator: "i",
        natted: true,
    },
    PeerSpec {
        ns: "es-h3-p2",
        ip: "10.3.0.12",
        region: "ap",
        operator: "j",
        natted: true,
    },
    PeerSpec {
        ns: "es-h3-p3",
        ip: "10.3.0.13",
        region: "ap",
        operator: "k",
        natted: true,
    },
    PeerSpec {
        ns: "es-h3-p4",
        ip: "10.3.0.14",
        region: "ap",
        operator: "l",
        natted: true,
    },
];

/// The requester's namespace (behind the third home's NAT).
pub const REQUESTER_NS: &str = "es-h3-req";
