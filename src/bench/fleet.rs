//! The bench's network: a coordinator and peers as child processes of the current executable on
//! loopback (as `entroshard demo` starts them), killed and their directories removed on drop.
//!
//! The coordinator listens on 127.0.0.1 and peer i on 127.0.0.(2+i), and peers reach the
//! coordinator over QUIC (sent from their own listening address): gossipsub's peer scoring
//! penalises many peers behind one IP address, and past about a dozen of them on 127.0.0.1 the
//! coordinator greylists them all and no heartbeat gets through.

use super::stats::Deadline;
use anyhow::{Context, bail, ensure};
use coordinator::admin::{self, AdminAnswer, AdminCall};
use libp2p::{Multiaddr, PeerId};
use protocols::wire::SourceState;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Four regions, not three: a (16,11) quorum allows at most n−k = 5 holders per region, so three
/// regions could place only 15 shares.
pub(crate) const REGIONS: [&str; 4] = ["eu-west", "us-east", "ap-south", "sa-east"];
pub(crate) const OPERATORS: [&str; 3] = ["alpha", "bravo", "charlie"];

/// Simulated sources per peer. Each healthy source still fails a continuous health test with
/// probability about 2^-20 per sample and is then cut off for good, so a peer stops contributing
/// once all of them are; four keep the pool filling through a long run.
pub(crate) const SOURCES_PER_PEER: usize = 4;

/// Seconds between a peer's contributions: short, so the pool fills fast.
pub(crate) const CONTRIBUTION_INTERVAL_S: f64 = 0.3;

/// Pause once every peer is eligible, before anything is measured.
const SETTLE_AFTER_START: Duration = Duration::from_secs(2);

/// Peers answer this many share fetches per requester per second: far above what the bench
/// sends, so every sample measures a served fetch rather than the rate limiter.
pub(crate) const PEER_FETCH_RATE_PER_S: f64 = 1_000_000.0;

/// How the coordinator is initialised.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoordinatorSettings {
    /// Credited bits the pool must hold before a session key is derived.
    pub min_credited_bits: u64,
    /// Distinct contributors the pool must have heard from.
    pub min_contributors: usize,
}

/// One peer of the fleet.
pub(crate) struct FleetPeer {
    /// Its libp2p identity.
    pub peer_id: PeerId,
    /// Its QUIC listen address (without `/p2p/`).
    pub quic: Multiaddr,
    child: Option<Child>,
}

/// The coordinator and peers; every child is killed with SIGKILL when this is dropped.
pub(crate) struct Fleet {
    exe: PathBuf,
    coordinator: Option<Child>,
    /// The coordinator's TCP address with `/p2p/` (what requesters are given, as in the demo).
    pub coordinator_addr: Multiaddr,
    /// The coordinator's QUIC address with `/p2p/` (what peers are given).
    coordinator_quic: String,
    /// The coordinator's admin socket.
    pub admin_socket: PathBuf,
    /// Peers, in start order.
    pub peers: Vec<FleetPeer>,
    // Declared last: the directories are removed only after the children are gone.
    root: tempfile::TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self
            .peers
            .iter_mut()
            .filter_map(|p| p.child.as_mut())
            .chain(self.coordinator.as_mut())
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The loopback address of peer `index`.
fn peer_ip(index: usize) -> anyhow::Result<std::net::Ipv4Addr> {
    let last = u8::try_from(index + 2)
        .ok()
        .filter(|b| *b < 255)
        .context("at most 252 peers on 127.0.0.0/24")?;
    Ok(std::net::Ipv4Addr::new(127, 0, 0, last))
}

fn free_port(ip: std::net::Ipv4Addr) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// Runs `exe args… --data-dir dir` to completion; returns its stdout.
fn run_to_completion(exe: &Path, args: &[&str], dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(exe)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .with_context(|| format!("running {args:?}"))?;
    ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts `exe args… --data-dir dir` in the background, its log in `dir/log` (warnings only, or
/// `$ENTROSHARD_BENCH_LOG`: per-request log lines would be part of what is measured).
fn spawn_logged(exe: &Path, args: &[&str], dir: &Path, log: &str) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(log))?;
    Ok(Command::new(exe)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env(
            "RUST_LOG",
            std::env::var("ENTROSHARD_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// An admin call that fails on an `Error` answer.
pub(crate) async fn admin_call(socket: &Path, call: AdminCall) -> anyhow::Result<AdminAnswer> {
    match admin::call(socket, &call).await? {
        AdminAnswer::Error(e) => bail!("{e}"),
        answer => Ok(answer),
    }
}

/// Resident set size of a process in KiB, from `/proc/PID/status`.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

impl Fleet {
    /// Initialises and starts the coordinator; returns once its admin socket exists.
    pub(crate) fn start(
        settings: CoordinatorSettings,
        deadline: &Deadline,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let root = tempfile::tempdir()?;
        let dir = root.path().join("coordinator");
        let port = free_port(std::net::Ipv4Addr::LOCALHOST)?;
        let out = run_to_completion(
            &exe,
            &[
                "coordinator",
                "init",
                "--listen",
                &format!("/ip4/127.0.0.1/tcp/{port}"),
                "--listen",
                &format!("/ip4/127.0.0.1/udp/{port}/quic-v1"),
                "--min-credited-bits",
                &settings.min_credited_bits.to_string(),
                "--min-contributors",
                &settings.min_contributors.to_string(),
                "--attestation-interval",
                "1",
                "--credit-round",
                "1",
            ],
            &dir,
        )?;
        let peer_id = out
            .lines()
            .find_map(|l| l.strip_prefix("peer id "))
            .context("`coordinator init` printed no peer id")?
            .to_string();
        let admin_socket = dir.join("admin.sock");
        let mut fleet = Self {
            coordinator: None,
            coordinator_addr: format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}").parse()?,
            coordinator_quic: format!("/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{peer_id}"),
            admin_socket,
            peers: Vec::new(),
            exe,
            root,
        };
        fleet.coordinator = Some(spawn_logged(
            &fleet.exe,
            &["coordinator", "run"],
            &dir,
            "coordinator.log",
        )?);
        while !fleet.admin_socket.exists() {
            deadline.check("waiting for the coordinator's admin socket")?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(fleet)
    }

    /// Initialises, enrols and starts peers until there are `total`; each on its own fixed port,
    /// with simulated sources and short contribution and heartbeat intervals.
    pub(crate) async fn grow_to(&mut self, total: usize) -> anyhow::Result<()> {
        for i in self.peers.len()..total {
            let dir = self.root.path().join(format!("peer-{i}"));
            let (region, operator) = (
                REGIONS[i % REGIONS.len()],
                OPERATORS[(i + i / REGIONS.len()) % OPERATORS.len()],
            );
            let seed = 1000 + i as u64 * 11;
            let ip = peer_ip(i)?;
            let port = free_port(ip)?;
            let quic = format!("/ip4/{ip}/udp/{port}/quic-v1");
            let tcp = format!("/ip4/{ip}/tcp/{port}");
            let interval = CONTRIBUTION_INTERVAL_S.to_string();
            let mut init = vec![
                "peer",
                "init",
                "--coordinator",
                &self.coordinator_quic,
                "--region",
                region,
                "--operator",
                operator,
                "--listen",
                &tcp,
                "--listen",
                &quic,
                "--no-hardware",
                "--contribution-interval",
                &interval,
                "--heartbeat-interval",
                "0.5",
            ];
            let sources = simulated_sources(seed);
            for source in &sources {
                init.extend(["--simulated-source", source.as_str()]);
            }
            run_to_completion(&self.exe, &init, &dir)?;
            raise_fetch_rate_limit(&dir.join("peer.toml"))?;
            let node = peer::identity::read_key(&dir.join("identity.key"))?.node_id();
            let peer_id = peer::identity::peer_id(&node).context("peer id of a node id")?;
            admin_call(
                &self.admin_socket,
                AdminCall::Enrol {
                    node,
                    region: region.into(),
                    operator: operator.into(),
                },
            )
            .await?;
            let child = spawn_logged(&self.exe, &["peer", "run"], &dir, "peer.log")?;
            self.peers.push(FleetPeer {
                peer_id,
                quic: quic.parse()?,
                child: Some(child),
            });
        }
        Ok(())
    }

    /// Waits until every peer is attested, trusted and heartbeating, then [`SETTLE_AFTER_START`].
    pub(crate) async fn wait_until_all_eligible(&self, deadline: &Deadline) -> anyhow::Result<()> {
        loop {
            let AdminAnswer::Status(lines) =
                admin_call(&self.admin_socket, AdminCall::Status).await?
            else {
                bail!("the coordinator answered Status with something else");
            };
            let eligible = lines
                .iter()
                .filter(|l| l.trusted && l.heartbeat_age_s.is_some())
                .count();
            if eligible >= self.peers.len() {
                // Start-up work (health tests, first contributions) would otherwise be measured.
                tokio::time::sleep(SETTLE_AFTER_START).await;
                return Ok(());
            }
            let waiting_for: Vec<String> = lines
                .iter()
                .filter(|l| !(l.trusted && l.heartbeat_age_s.is_some()))
                .map(|l| {
                    format!(
                        "{} (quarantine {:?}, heartbeat age {:?} s, {} shares)",
                        l.node.short(),
                        l.quarantine,
                        l.heartbeat_age_s,
                        l.shares_held
                    )
                })
                .collect();
            deadline.check(&format!(
                "waiting for peers to attest ({eligible} of {} so far; not yet: {})",
                self.peers.len(),
                waiting_for.join(", ")
            ))?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of the coordinator's log and of every non-empty peer log.
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        let logs = std::iter::once(self.root.path().join("coordinator/coordinator.log")).chain(
            (0..self.peers.len()).map(|i| self.root.path().join(format!("peer-{i}/peer.log"))),
        );
        let mut out = String::new();
        for path in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            if all.is_empty() {
                continue;
            }
            out.push_str(&format!("--- {}\n", path.display()));
            for line in &all[all.len().saturating_sub(lines)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// (sources cut off by a health test, sources) over every peer, from the coordinator's view.
    pub(crate) async fn source_health(&self) -> anyhow::Result<(usize, usize)> {
        let AdminAnswer::Status(lines) = admin_call(&self.admin_socket, AdminCall::Status).await?
        else {
            bail!("the coordinator answered Status with something else");
        };
        let sources = lines.iter().flat_map(|l| &l.sources);
        let cut_off = sources
            .clone()
            .filter(|s| s.state == SourceState::CutOff)
            .count();
        Ok((cut_off, sources.count()))
    }

    /// The coordinator's process id.
    pub(crate) fn coordinator_pid(&self) -> Option<u32> {
        self.coordinator.as_ref().map(Child::id)
    }

    /// The first peer's process id.
    pub(crate) fn first_peer_pid(&self) -> Option<u32> {
        self.peers.first()?.child.as_ref().map(Child::id)
    }
}

/// The simulated sources of the peer with this seed (as `peer init --simulated-source` takes them).
fn simulated_sources(seed: u64) -> [String; SOURCES_PER_PEER] {
    [
        format!("biased:0.6:{seed}"),
        format!("correlated:4:0.01:{}", seed + 1),
        format!("biased:0.55:{}", seed + 2),
        format!("correlated:4:0.02:{}", seed + 3),
    ]
}

/// Rewrites a freshly initialised peer's config with [`PEER_FETCH_RATE_PER_S`] (`peer init` has
/// no flag for it; the default of 20 per second would refuse most of the bench's fetches).
fn raise_fetch_rate_limit(config_path: &Path) -> anyhow::Result<()> {
    let mut config = peer::config::PeerConfig::load(config_path)?;
    config.fetch_rate_per_s = PEER_FETCH_RATE_PER_S;
    std::fs::write(config_path, toml::to_string_pretty(&config)?)
        .with_context(|| format!("rewriting {}", config_path.display()))?;
    peer::config::PeerConfig::load(config_path)?;
    Ok(())
}
