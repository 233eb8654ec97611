//! A coordinator and peers as child processes of this executable on loopback, each in its own
//! temporary directory, killed with SIGKILL and removed on drop: the network that `entroshard
//! demo` narrates and `entroshard bench` measures (each says how its peers are laid out).

use anyhow::{Context, bail, ensure};
use coordinator::admin::{self, AdminAnswer, AdminCall, PeerLine};
use libp2p::{Multiaddr, PeerId};
use protocols::ids::NodeId;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How the coordinator is initialised.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoordinatorSettings {
    /// Credited bits the pool must hold before a session key is derived.
    pub min_credited_bits: u64,
    /// Distinct contributors the pool must have heard from.
    pub min_contributors: usize,
    /// Samples in each entropy audit (`--entropy-audit-samples`); the coordinator's default
    /// when `None`.
    pub entropy_audit_samples: Option<u32>,
}

/// How peers are placed and configured; peer i gets region `i mod R` and operator
/// `(i + i div R) mod O`, so regions and operators mix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerLayout {
    /// Regions, in turn.
    pub regions: &'static [&'static str],
    /// Operators, in turn.
    pub operators: &'static [&'static str],
    /// The machine's own sources: only these (`--only-source`; empty: every source detected),
    /// each assessed on this many samples at the peer's first start.
    pub real_sources: (&'static [&'static str], usize),
    /// Peer i listens on 127.0.0.(2+i) rather than 127.0.0.1 (gossipsub's peer scoring
    /// penalises many peers behind one IP address).
    pub address_per_peer: bool,
    /// Peers reach the coordinator over QUIC rather than TCP.
    pub coordinator_over_quic: bool,
    /// Seconds between a peer's contributions.
    pub contribution_interval_s: f64,
    /// Share fetches a peer serves per requester per second, written into its config after
    /// `peer init` (which has no flag for it); `None` keeps the default.
    pub fetch_rate_per_s: Option<f64>,
}

/// Everything a fleet is started with.
#[derive(Debug, Clone)]
pub(crate) struct FleetSettings {
    /// The coordinator.
    pub coordinator: CoordinatorSettings,
    /// The peers.
    pub peers: PeerLayout,
    /// `RUST_LOG` of every child.
    pub log_filter: String,
}

/// Seconds between a peer's heartbeats.
const HEARTBEAT_INTERVAL: &str = "0.5";

/// One peer of the fleet.
pub(crate) struct FleetPeer {
    /// `peer-<index>`, also the name of its directory.
    pub name: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its identity.
    pub node: NodeId,
    /// Its libp2p identity.
    #[cfg_attr(
        not(feature = "lab"),
        expect(dead_code, reason = "only `bench` reads it")
    )]
    pub peer_id: PeerId,
    /// Its region.
    pub region: &'static str,
    /// Its operator.
    pub operator: &'static str,
    /// The loopback address it listens on.
    pub ip: Ipv4Addr,
    /// Its TCP and UDP port, fixed as on a real device: a restarted peer is found where it was.
    pub port: u16,
    /// Its QUIC listen address (without `/p2p/`).
    #[cfg_attr(
        not(feature = "lab"),
        expect(dead_code, reason = "only `bench` reads it")
    )]
    pub quic: Multiaddr,
    child: Option<Child>,
}

/// The coordinator and peers; every child is killed with SIGKILL when this is dropped.
pub(crate) struct Fleet {
    exe: PathBuf,
    settings: FleetSettings,
    coordinator: Option<Child>,
    /// The coordinator's TCP address with `/p2p/` (what requesters are given).
    pub coordinator_addr: Multiaddr,
    /// The coordinator's QUIC address with `/p2p/`.
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

/// An admin call that fails on an `Error` answer.
pub(crate) async fn admin_call(socket: &Path, call: AdminCall) -> anyhow::Result<AdminAnswer> {
    match admin::call(socket, &call).await? {
        AdminAnswer::Error(e) => bail!("{e}"),
        answer => Ok(answer),
    }
}

impl Fleet {
    /// Initialises and starts the coordinator; returns once its admin socket exists, calling
    /// `check_deadline` (which fails once waiting is over) between looks.
    pub(crate) fn start(
        settings: FleetSettings,
        check_deadline: impl Fn(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let root = tempfile::tempdir()?;
        let dir = root.path().join("coordinator");
        let port = free_port(Ipv4Addr::LOCALHOST)?;
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
                &settings.coordinator.min_credited_bits.to_string(),
                "--min-contributors",
                &settings.coordinator.min_contributors.to_string(),
                "--attestation-interval",
                "1",
                "--credit-round",
                "1",
                "--entropy-audit-samples",
                &settings
                    .coordinator
                    .entropy_audit_samples
                    .unwrap_or(coordinator::config::DEFAULT_ENTROPY_AUDIT_SAMPLES)
                    .to_string(),
            ],
            &dir,
        )?;
        let peer_id = out
            .lines()
            .find_map(|l| l.strip_prefix("peer id "))
            .context("`coordinator init` printed no peer id")?
            .to_string();
        let mut fleet = Self {
            coordinator: None,
            coordinator_addr: format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}").parse()?,
            coordinator_quic: format!("/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{peer_id}"),
            admin_socket: dir.join("admin.sock"),
            peers: Vec::new(),
            settings,
            exe,
            root,
        };
        fleet.coordinator =
            Some(fleet.spawn_logged(&["coordinator", "run"], &dir, "coordinator.log")?);
        while !fleet.admin_socket.exists() {
            check_deadline("waiting for the coordinator's admin socket")?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(fleet)
    }

    /// The coordinator's data directory.
    pub(crate) fn coordinator_dir(&self) -> PathBuf {
        self.root.path().join("coordinator")
    }

    /// The running coordinator's process id.
    pub(crate) fn coordinator_pid(&self) -> Option<u32> {
        self.coordinator.as_ref().map(Child::id)
    }

    /// Kills the coordinator with SIGKILL and waits for it; `false` if it was not running.
    pub(crate) fn kill_coordinator(&mut self) -> anyhow::Result<bool> {
        let Some(mut child) = self.coordinator.take() else {
            return Ok(false);
        };
        child.kill()?;
        child.wait()?;
        Ok(true)
    }

    /// Starts the coordinator again from its data directory; returns once its admin socket
    /// answers, calling `check_deadline` between looks.
    pub(crate) async fn restart_coordinator(
        &mut self,
        check_deadline: impl Fn(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let dir = self.coordinator_dir();
        self.coordinator =
            Some(self.spawn_logged(&["coordinator", "run"], &dir, "coordinator.log")?);
        while self.status().await.is_err() {
            check_deadline("waiting for the restarted coordinator's admin socket")?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Initialises, enrols and starts the next peer as the layout says, on the machine's own
    /// sources and with short contribution and heartbeat intervals.
    pub(crate) async fn add_peer(&mut self) -> anyhow::Result<&FleetPeer> {
        let layout = self.settings.peers;
        let i = self.peers.len();
        let name = format!("peer-{i}");
        let dir = self.root.path().join(&name);
        let regions = layout.regions.len();
        let (region, operator) = (
            layout.regions[i % regions],
            layout.operators[(i + i / regions) % layout.operators.len()],
        );
        let ip = if layout.address_per_peer {
            own_peer_ip(i)?
        } else {
            Ipv4Addr::LOCALHOST
        };
        let port = free_port(ip)?;
        let quic = format!("/ip4/{ip}/udp/{port}/quic-v1");
        let tcp = format!("/ip4/{ip}/tcp/{port}");
        let coordinator = if layout.coordinator_over_quic {
            self.coordinator_quic.clone()
        } else {
            self.coordinator_addr.to_string()
        };
        let interval = layout.contribution_interval_s.to_string();
        let mut init = vec![
            "peer",
            "init",
            "--coordinator",
            &coordinator,
            "--region",
            region,
            "--operator",
            operator,
            "--listen",
            &tcp,
            "--listen",
            &quic,
        ];
        // No simulated source: the machine's own (jitter, interrupts, /dev/hwrng, sensors),
        // each assessed at the peer's first start.
        let assess = layout.real_sources.1.to_string();
        for only in layout.real_sources.0 {
            init.extend(["--only-source", only]);
        }
        init.extend(["--assess-samples", assess.as_str()]);
        init.extend([
            "--contribution-interval",
            &interval,
            "--heartbeat-interval",
            HEARTBEAT_INTERVAL,
        ]);
        run_to_completion(&self.exe, &init, &dir)?;
        if let Some(rate) = layout.fetch_rate_per_s {
            set_fetch_rate(&dir.join("peer.toml"), rate)?;
        }
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
        self.peers.push(FleetPeer {
            name,
            dir,
            node,
            peer_id,
            region,
            operator,
            ip,
            port,
            quic: quic.parse()?,
            child: None,
        });
        self.start_peer(i)?;
        Ok(&self.peers[i])
    }

    /// Adds peers until there are `total`, each contributing every `contribution_interval_s`
    /// seconds (the peers started before keep theirs).
    #[cfg(feature = "lab")]
    pub(crate) async fn grow_to(
        &mut self,
        total: usize,
        contribution_interval_s: f64,
    ) -> anyhow::Result<()> {
        self.settings.peers.contribution_interval_s = contribution_interval_s;
        while self.peers.len() < total {
            self.add_peer().await?;
        }
        Ok(())
    }

    /// Starts peer `index` (again, after [`Fleet::kill_peer`]).
    pub(crate) fn start_peer(&mut self, index: usize) -> anyhow::Result<()> {
        let peer = self.peers.get(index).context("no such peer")?;
        let child = self.spawn_logged(&["peer", "run"], &peer.dir, "peer.log")?;
        self.peers[index].child = Some(child);
        Ok(())
    }

    /// Kills peer `index` with SIGKILL and waits for it; `false` if it was not running.
    pub(crate) fn kill_peer(&mut self, index: usize) -> anyhow::Result<bool> {
        let peer = self.peers.get_mut(index).context("no such peer")?;
        let Some(mut child) = peer.child.take() else {
            return Ok(false);
        };
        child.kill()?;
        child.wait()?;
        Ok(true)
    }

    /// The coordinator's view of every enrolled peer.
    pub(crate) async fn status(&self) -> anyhow::Result<Vec<PeerLine>> {
        let AdminAnswer::Status(lines) = admin_call(&self.admin_socket, AdminCall::Status).await?
        else {
            bail!("the coordinator answered Status with something else");
        };
        Ok(lines)
    }

    /// The name of the peer with this identity, or its short form if it is not in the fleet.
    pub(crate) fn name_of(&self, node: &NodeId) -> String {
        self.peers
            .iter()
            .find(|p| &p.node == node)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| node.short())
    }

    /// The last `lines` lines of the coordinator's log and of every non-empty peer log.
    #[cfg(feature = "lab")]
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        let logs = std::iter::once(self.coordinator_dir().join("coordinator.log"))
            .chain(self.peers.iter().map(|p| p.dir.join("peer.log")));
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

    /// The first peer's process id.
    #[cfg(feature = "lab")]
    pub(crate) fn first_peer_pid(&self) -> Option<u32> {
        self.peers.first()?.child.as_ref().map(Child::id)
    }

    /// Starts `exe args… --data-dir dir` in the background, its log appended to `dir/log`.
    fn spawn_logged(&self, args: &[&str], dir: &Path, log: &str) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(log))?;
        Ok(Command::new(&self.exe)
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", &self.settings.log_filter)
            .env(EXIT_WITH_PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }
}

/// Set by [`Fleet`] on every process it starts, to the starting process's id: a process that finds
/// it set exits as soon as that process is gone, so an interrupted or killed `demo` or `bench`
/// (SIGINT, SIGTERM, even SIGKILL, which runs no destructor) leaves no coordinator or peer behind.
pub(crate) const EXIT_WITH_PARENT_ENV: &str = "ENTROSHARD_EXIT_WITH_PARENT";

/// How often a fleet child checks that its parent is still there.
const PARENT_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// When [`EXIT_WITH_PARENT_ENV`] names this process's parent, watches it from a thread and exits
/// (status 1) once the parent is gone (this process re-parented). Does nothing otherwise.
pub(crate) fn exit_with_parent() {
    let Some(parent) = std::env::var(EXIT_WITH_PARENT_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    let watch = move || {
        loop {
            if std::os::unix::process::parent_id() != parent {
                eprintln!("the process that started this one ({parent}) is gone; exiting");
                std::process::exit(1);
            }
            std::thread::sleep(PARENT_CHECK);
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(watch)
    {
        eprintln!("cannot watch the parent process: {e}");
    }
}

/// The loopback address of peer `index` when each peer has its own: 127.0.0.(2+index).
fn own_peer_ip(index: usize) -> anyhow::Result<Ipv4Addr> {
    let last = u8::try_from(index + 2)
        .ok()
        .filter(|b| *b < 255)
        .context("at most 252 peers on 127.0.0.0/24")?;
    Ok(Ipv4Addr::new(127, 0, 0, last))
}

fn free_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
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

/// Rewrites a freshly initialised peer's config with another share fetch rate.
fn set_fetch_rate(config_path: &Path, rate_per_s: f64) -> anyhow::Result<()> {
    let mut config = peer::config::PeerConfig::load(config_path)?;
    config.fetch_rate_per_s = rate_per_s;
    std::fs::write(config_path, toml::to_string_pretty(&config)?)
        .with_context(|| format!("rewriting {}", config_path.display()))?;
    peer::config::PeerConfig::load(config_path)?;
    Ok(())
}
