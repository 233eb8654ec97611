//! A mesh running in the NAT testbed: a coordinator and two relay peers on public addresses,
//! peers in three homes behind nftables NAT (one symmetric-like), a requester behind the third
//! home's NAT. Shared by the NAT scenario tests; everything is torn down when the [`Mesh`] is
//! dropped. What the mesh's logs tell (log tails, reachability, hole punches, dumps) is in
//! `mesh_logs.rs`.

use super::testbed::*;
use super::*;
use protocols::ticket::Ticket;
use std::path::PathBuf;
use std::time::Instant;

/// A started peer.
pub struct MeshPeer {
    pub spec: &'static PeerSpec,
    pub dir: tempfile::TempDir,
    pub proc: Option<Proc>,
    pub node: protocols::ids::NodeId,
    pub pid: PeerId,
}

/// The mesh in the testbed. Dropping it kills every process and tears the namespaces down.
pub struct Mesh {
    pub coord: Option<Proc>,
    pub coord_dir: tempfile::TempDir,
    pub coord_log: PathBuf,
    pub coord_addr: Multiaddr,
    pub coord_pid: PeerId,
    pub peers: Vec<MeshPeer>,
    pub req_dir: tempfile::TempDir,
    /// The requester's PeerId.
    pub req_pid: PeerId,
    pub started: Instant,
    testbed: Option<Testbed>,
    _fleet: FleetSlot,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if let Some(mut p) = self.coord.take() {
            p.kill9();
        }
        for p in &mut self.peers {
            if let Some(mut proc) = p.proc.take() {
                proc.kill9();
            }
        }
        self.testbed.take();
    }
}

impl Mesh {
    /// Builds the testbed and starts the coordinator, the peers (NATed ones reserving on the
    /// coordinator and the two relay peers, `peer_extra` added to every NATed peer's `peer init`)
    /// and initialises the requester.
    pub fn start(peer_extra: &[&str]) -> Self {
        Self::start_with(peer_extra, || {})
    }

    /// [`Self::start`], running `setup` once the namespaces are up, before any process starts
    /// (to [`cut`] a path, say).
    pub fn start_with(peer_extra: &[&str], setup: impl FnOnce()) -> Self {
        Self::start_tuned(peer_extra, setup, &[])
    }

    /// [`Self::start_with`], with `settings` (`key`, TOML value) replacing the coordinator's
    /// config keys before it runs.
    pub fn start_tuned(
        peer_extra: &[&str],
        setup: impl FnOnce(),
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_peers(peer_extra, setup, settings, &[])
    }

    /// [`Self::start`] with every peer namespace of the testbed running a peer: the two relays
    /// and twelve peers behind NAT ([`MORE_HOME_PEERS`] too).
    pub fn start_all() -> Self {
        Self::start_peers(&[], || {}, &[], &MORE_HOME_PEERS)
    }

    fn start_peers(
        peer_extra: &[&str],
        setup: impl FnOnce(),
        settings: &[(&str, &str)],
        more: &'static [PeerSpec],
    ) -> Self {
        let started = Instant::now();
        // The testbed first: a test waiting for another's testbed holds no fleet slot meanwhile.
        let testbed = Testbed::up();
        let fleet = fleet_slot();
        setup();
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
                // Audits on test windows and one-second crediting rounds, as every test fleet's
                // (tests/common/coordinator_proc.rs): the default 100,000 fresh samples per device take a
                // debug fleet most of a minute, and with the default 10 s round each session
                // waits for its contributors' per-round caps to reset.
                "--entropy-audit-samples",
                TEST_WINDOW_SAMPLES,
                "--credit-round",
                "1",
            ])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let coord_id = line_value(&String::from_utf8_lossy(&init.stdout), "peer id ");
        let coord_pid: PeerId = coord_id.parse().unwrap();
        let coord_addr: Multiaddr = format!("/ip4/100.64.1.2/tcp/4001/p2p/{coord_id}")
            .parse()
            .unwrap();
        set_config(
            &coord_dir.path().join("coordinator.toml"),
            &with_test_credit_hold(settings),
        );
        let coord_log = coord_dir.path().join("coordinator.log");
        let coord = spawn_in(
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
        let mut mesh = Mesh {
            coord: Some(coord),
            coord_dir,
            coord_log,
            coord_addr,
            coord_pid,
            peers: Vec::new(),
            req_dir: tempfile::tempdir().unwrap(),
            req_pid: PeerId::random(),
            started,
            testbed: Some(testbed),
            _fleet: fleet,
        };
        let mut relay_addrs: Vec<String> = Vec::new();
        for (i, spec) in PEERS.iter().chain(more).enumerate() {
            let dir = tempfile::tempdir().unwrap();
            // Each peer of a home on its own port (4001, 4002): Linux's masquerade keeps a
            // source port only while no other LAN host holds it towards the same destination, so
            // two peers on one port made the second's mapping depend on the destination, which
            // is symmetric NAT in effect, not the endpoint-independent home meant (decision 0060).
            let port = spec.port();
            let tcp = format!("/ip4/{}/tcp/{port}", spec.ip);
            let quic = format!("/ip4/{}/udp/{port}/quic-v1", spec.ip);
            // The peers beyond the scenarios' seven ([`MORE_HOME_PEERS`]) contribute every 5 s
            // and beat every 2 s: fifteen debug daemons at the scenarios' pace overloaded two
            // cores (attestations late, holders quarantined, sessions rotated under the fetches).
            let (contribution, heartbeat) = if i < PEERS.len() {
                ("0.5", "1")
            } else {
                ("5", "2")
            };
            let mut extra: Vec<&str> = vec![
                "--listen",
                &tcp,
                "--listen",
                &quic,
                "--contribution-interval",
                contribution,
                "--heartbeat-interval",
                heartbeat,
            ];
            if !baseline() {
                if spec.natted {
                    for r in &relay_addrs {
                        extra.extend(["--relay", r.as_str()]);
                    }
                    extra.extend(peer_extra);
                } else {
                    extra.push("--relay-server");
                }
            }
            init_peer_via(
                exits_with_this_test(Command::new(bin())),
                dir.path(),
                &mesh.coord_addr,
                spec.region,
                spec.operator,
                900 + i as u64,
                &extra,
            );
            let node = enrol_in(
                mesh.coord_dir.path(),
                dir.path(),
                spec.region,
                spec.operator,
            );
            let pid = peer::identity::peer_id(&node).unwrap();
            if !spec.natted {
                relay_addrs.push(format!("/ip4/{}/tcp/{port}/p2p/{pid}", spec.ip));
            }
            let log = dir.path().join("peer.log");
            let proc = spawn_in(spec.ns, &["peer", "run"], dir.path(), &log);
            mesh.peers.push(MeshPeer {
                spec,
                dir,
                proc: Some(proc),
                node,
                pid,
            });
        }
        let out = in_ns(REQUESTER_NS)
            .args([
                "requester",
                "init",
                "--coordinator",
                &mesh.coord_addr.to_string(),
                "--data-dir",
            ])
            .arg(mesh.req_dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let req_pid = line_value(&String::from_utf8_lossy(&out.stdout), "peer id ");
        mesh.req_pid = req_pid.parse().unwrap();
        run_ok(
            &["coordinator", "requesters", "add", &req_pid],
            &[("--data-dir", mesh.coord_dir.path())],
        );
        mesh
    }

    /// The peer in namespace `ns`.
    pub fn peer(&self, ns: &str) -> &MeshPeer {
        self.peers.iter().find(|p| p.spec.ns == ns).unwrap()
    }

    /// SIGKILLs the peer in namespace `ns`.
    pub fn kill_peer(&mut self, ns: &str) {
        let p = self.peers.iter_mut().find(|p| p.spec.ns == ns).unwrap();
        if let Some(mut proc) = p.proc.take() {
            proc.kill9();
        }
    }

    /// SIGKILLs the coordinator.
    pub fn kill_coordinator(&mut self) {
        if let Some(mut p) = self.coord.take() {
            p.kill9();
        }
    }

    /// Waits (bounded by [`DEADLINE`]) until `done` holds, polling every half second; panics
    /// with `what` and the logs otherwise. Returns the seconds it took.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut(&Self) -> bool) -> f64 {
        let t0 = Instant::now();
        while !done(self) {
            assert!(
                t0.elapsed() < DEADLINE,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        t0.elapsed().as_secs_f64()
    }

    /// Creates 2-of-3 sessions from the requester until one's ticket satisfies `accept`; writes
    /// it to `ticket_path` and returns it with the number of sessions created.
    pub fn session(&self, ticket_path: &Path, accept: impl Fn(&Ticket) -> bool) -> (Ticket, u32) {
        self.session_with(ticket_path, &["--n", "3", "--k", "2"], accept)
    }

    /// [`Self::session`] with `options` for `session create` (`--n`, `--k`, `--requester`, …).
    pub fn session_with(
        &self,
        ticket_path: &Path,
        options: &[&str],
        accept: impl Fn(&Ticket) -> bool,
    ) -> (Ticket, u32) {
        let deadline = Instant::now() + DEADLINE;
        let mut attempts = 0;
        loop {
            let out = in_ns(REQUESTER_NS)
                .args(["session", "create", "--ttl", "10m"])
                .args(options)
                .arg("-o")
                .arg(ticket_path)
                .arg("--data-dir")
                .arg(self.req_dir.path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            // Not ready yet (too little entropy credited), or placing the session on holders
            // behind relays took longer than the call's timeout on a loaded machine: ask again.
            let again = err.contains("not ready") || err.contains("Timeout while waiting");
            assert!(
                out.status.success() || again,
                "session create failed: {err}\n{}",
                self.logs()
            );
            assert!(
                Instant::now() < deadline,
                "no session as wanted after {attempts} sessions: {err}\n{}",
                self.logs()
            );
            if !out.status.success() && std::env::var_os("NAT_MESH_FETCH_LOG").is_some() {
                eprintln!(
                    "{:.1} s: session create: {}",
                    self.started.elapsed().as_secs_f64(),
                    err.trim()
                );
            }
            if out.status.success() {
                fleet_started();
                attempts += 1;
                let ticket = read_ticket(ticket_path);
                if accept(&ticket) {
                    eprintln!(
                        "session as wanted after {attempts} sessions, {:.1} s after the mesh started",
                        self.started.elapsed().as_secs_f64()
                    );
                    for h in &ticket.holders {
                        eprintln!("holder #{} at {:?}", h.index, h.addrs);
                    }
                    return (ticket, attempts);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The home (1, 2, 3) of the peer whose node id is `node`, if it is behind NAT.
    pub fn home_of(&self, node: &protocols::ids::NodeId) -> Option<u8> {
        let p = self
            .peers
            .iter()
            .find(|p| p.node == *node && p.spec.natted)?;
        p.spec.ns.strip_prefix("es-h")?.get(..1)?.parse().ok()
    }

    /// Whether no holder of `ticket` is a public peer.
    pub fn natted_holders(&self, ticket: &Ticket) -> bool {
        ticket
            .holders
            .iter()
            .all(|h| self.peers.iter().any(|p| p.node == h.node && p.spec.natted))
    }

    /// The running coordinator's `status` row of `peer`, split into fields (peer id, region,
    /// operator, trusted, power, shares, heartbeat age, credited bits, sources), if it has one.
    pub fn status_row(&self, peer: &PeerId) -> Option<Vec<String>> {
        let out = entroshard()
            .args(["coordinator", "status", "--data-dir"])
            .arg(self.coord_dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let id = peer.to_string();
        text.lines()
            .find(|l| l.starts_with(&id))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
    }

    /// The running coordinator's record of `session` (`sessions show`): its epoch and holders.
    pub fn session_record(&self, session: &protocols::ids::SessionId) -> (u64, Vec<PeerId>) {
        let out = run_ok(
            &["coordinator", "sessions", "show", &session.to_string()],
            &[("--data-dir", self.coord_dir.path())],
        );
        let epoch = line_value(&out, "epoch ");
        let epoch = epoch.split_whitespace().next().unwrap().parse().unwrap();
        let holders = out
            .lines()
            .filter_map(|l| l.strip_prefix("holder #")?.split_whitespace().nth(1))
            .map(|p| p.parse().unwrap())
            .collect();
        (epoch, holders)
    }

    /// The value of `series` on the `/metrics` of the peer in `ns` (started with `--metrics
    /// 127.0.0.1:PORT`, reachable in its namespace only), if it answers.
    pub fn peer_metric(&self, ns: &str, port: u16, series: &str) -> Option<f64> {
        let get = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET /metrics HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let out = netns_exec(ns)
            .args(["timeout", "10", "bash", "-c", &get])
            .output()
            .ok()?;
        metric(&String::from_utf8_lossy(&out.stdout), series)
    }
}
