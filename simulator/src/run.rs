//! One simulation run: set up the coordinator and the fleet, warm up until the pool can key a
//! session, then run the workload and the fault timeline for the scenario's duration while the
//! observer samples; finally build the report.

use crate::Scenario;
use crate::faults::Timeline;
use crate::fleet::{Fleet, FleetContext, derive, memory_addr};
use crate::observe::{Observer, rss_mib};
use crate::report::{self, AppliedEvent, Report, RunFacts};
use crate::workload::Workload;
use coordinator::config::CoordinatorConfig;
use coordinator::db::{CoordinatorDb, CoordinatorSecrets, Enrolment};
use coordinator::service;
use peer::node::NodeConfig;
use protocols::identity::NodeKey;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

mod events;
use events::apply;

/// Run failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// Building a part failed.
    #[error("setup: {0}")]
    Setup(String),
    /// The pool never held enough entropy to key a session.
    #[error("no session could be created within the warm-up: {0}")]
    NeverReady(String),
    /// Writing the report failed.
    #[error("report: {0}")]
    Report(String),
}

/// How to run.
pub struct Options {
    /// The scenario (peers and seed already overridden by the caller).
    pub scenario: Scenario,
    /// Where the report goes.
    pub out: PathBuf,
    /// Where share stores and the coordinator database go (a temporary directory, on tmpfs
    /// when `/dev/shm` exists, when `None`).
    pub work_dir: Option<PathBuf>,
    /// Write SVG and PNG plots.
    pub plots: bool,
}

/// What the progress display shows.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Phase name.
    pub phase: &'static str,
    /// Units done in the phase (devices started, seconds run).
    pub done: u64,
    /// Units in the phase.
    pub total: u64,
    /// Devices running.
    pub live_peers: usize,
    /// Fetches that succeeded.
    pub fetch_ok: u64,
    /// Fetches that failed.
    pub fetch_failed: u64,
    /// Sessions alive.
    pub sessions: usize,
    /// Devices quarantined.
    pub quarantined: usize,
    /// Process RSS.
    pub rss_mib: f64,
}

fn work_dir(opts: &Options) -> Result<tempfile::TempDir, SimError> {
    let parent = match &opts.work_dir {
        Some(d) => d.clone(),
        None if std::path::Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    tempfile::Builder::new()
        .prefix("entroshard-sim-")
        .tempdir_in(&parent)
        .map_err(|e| SimError::Setup(format!("work directory in {}: {e}", parent.display())))
}

fn coordinator_config(s: &Scenario, dir: PathBuf) -> CoordinatorConfig {
    let mut c = CoordinatorConfig::new(dir, Vec::new());
    let t = &s.timing;
    c.min_credited_bits = t.min_credited_bits;
    c.min_contributors = t.min_contributors;
    c.credit_round_s = t.credit_round_s;
    c.attestation_interval_s = t.attestation_s;
    c.attestation_validity_s = t.attestation_validity_s;
    c.attestation_answer_s = t.attestation_answer_s;
    c.heartbeat_max_age_s = t.heartbeat_max_age_s;
    c.rotation_period_s = t.rotation_period_s;
    c.credit_hold_s = t.credit_hold_s;
    c.holder_audit_s = t.holder_audit_s;
    c.contribution_max_age_s = 120.0;
    // Audits on short windows (each device's sensor answers them; decision 0039): enough
    // samples to accuse an overclaim, few enough for thousands of devices.
    c.entropy_audit_samples = 4096;
    c.entropy_audit_s = t.rotation_period_s.max(10.0);
    c
}

pub(crate) fn enrolment(region: &str, operator: &str) -> Enrolment {
    Enrolment {
        region: region.to_string(),
        operator: operator.to_string(),
        enrolled_at_ms: peer::agent::now_ms(),
        share_key: None,
    }
}

/// Runs `opts.scenario` and writes the report into `opts.out`.
pub async fn run(
    opts: Options,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Report, SimError> {
    let started = Instant::now();
    let scenario = Arc::new(opts.scenario.clone());
    scenario
        .validate()
        .map_err(|e| SimError::Setup(e.to_string()))?;
    let dir = work_dir(&opts)?;
    let setup = |e: &dyn std::fmt::Display| SimError::Setup(e.to_string());
    let seed = scenario.seed;

    // The coordinator: identity, secrets and database as `coordinator init` makes them.
    let coordinator_key = NodeKey::from_secret_bytes(&derive(seed, "coordinator", 0));
    let db =
        Arc::new(CoordinatorDb::open(&dir.path().join("coordinator.redb")).map_err(|e| setup(&e))?);
    let secrets = CoordinatorSecrets {
        noise_static: rand::random(),
    };
    let coordinator_static = peer::contribution::static_public(&secrets.noise_static);
    db.init_secrets(&secrets).map_err(|e| setup(&e))?;
    let coordinator_dir = dir.path().join("coordinator");
    std::fs::create_dir_all(&coordinator_dir).map_err(|e| setup(&e))?;
    coordinator::master_key::create(&coordinator_dir.join("master.key")).map_err(|e| setup(&e))?;
    let binary_sha256 = peer::agent::measure::binary_sha256().map_err(|e| setup(&e))?;
    db.allow_binary(binary_sha256).map_err(|e| setup(&e))?;
    let requester_keys: Vec<NodeKey> = (0..scenario.sessions.requesters)
        .map(|i| NodeKey::from_secret_bytes(&derive(seed, "requester", i as u64)))
        .collect();
    let requester_ids: Vec<_> = requester_keys.iter().map(NodeKey::node_id).collect();
    for r in &requester_ids {
        db.add_requester(r).map_err(|e| setup(&e))?;
    }
    let coordinator_peer = peer::identity::peer_id(&coordinator_key.node_id())
        .ok_or_else(|| SimError::Setup("coordinator identity".into()))?;
    let coordinator_listen = memory_addr();
    let coordinator_addr = coordinator_listen
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(coordinator_peer));

    // The fleet: drawn from the seed, enrolled before the coordinator starts.
    let store_dir = dir.path().join("devices");
    std::fs::create_dir_all(&store_dir).map_err(|e| setup(&e))?;
    let ctx = FleetContext {
        coordinator: coordinator_addr.clone(),
        coordinator_static,
        binary_sha256,
        scenario: scenario.clone(),
    };
    let mut fleet = Fleet::create(ctx, store_dir, scenario.peers)?;
    for p in &fleet.peers {
        db.enrol(&p.node, &enrolment(&p.region, &p.operator))
            .map_err(|e| setup(&e))?;
    }
    let mut node = NodeConfig::memory(vec![coordinator_listen]);
    node.gossip_mesh_n = scenario.network.gossip_mesh_n;
    node.channel_capacity = 4096.max(scenario.peers);
    node.idle_timeout = Duration::from_secs(30);
    // The coordinator runs on a runtime of its own, as on a machine of its own: on one shared
    // runtime, thousands of busy device tasks would leave its loop a thousandth of the CPU.
    let coordinator_runtime = OwnRuntime::new("coordinator").map_err(|e| setup(&e))?;
    let coordinator = coordinator_runtime
        .spawn(service::spawn_with_node(
            coordinator_config(&scenario, coordinator_dir),
            coordinator_key,
            db.clone(),
            node,
        ))
        .await
        .map_err(|e| setup(&e))?
        .map_err(|e| setup(&e))?;
    let rss_baseline = rss_mib().unwrap_or(0.0);

    // Start every device.
    let total = scenario.peers as u64;
    for i in 0..scenario.peers {
        fleet.reconcile(i).await?;
        if i % 25 == 0 || i + 1 == scenario.peers {
            progress(&Progress {
                phase: "starting devices",
                done: i as u64 + 1,
                total,
                live_peers: i + 1,
                rss_mib: rss_mib().unwrap_or(0.0),
                ..Progress::default()
            });
            tokio::task::yield_now().await;
        }
    }
    let startup_s = started.elapsed().as_secs_f64();

    // Warm up: until the pool can key the first session.
    let workload = Arc::new(
        Workload::connect(
            requester_keys,
            coordinator_addr.clone(),
            scenario.sessions.clone(),
            seed,
        )
        .await?,
    );
    let warm = Instant::now();
    // Every refusal seen while waiting, counted, so a failed warm-up says what kept it back.
    let mut refusals: BTreeMap<String, u32> = BTreeMap::new();
    loop {
        let waited = warm.elapsed().as_secs_f64();
        progress(&Progress {
            phase: "warming up (pool filling)",
            done: waited as u64,
            total: scenario.warmup_max_s as u64,
            live_peers: scenario.peers,
            rss_mib: rss_mib().unwrap_or(0.0),
            ..Progress::default()
        });
        match workload.create_one(&requester_ids, "sim-1".into()).await {
            Ok(()) => break,
            Err(e) => *refusals.entry(e).or_insert(0) += 1,
        }
        if waited > scenario.warmup_max_s {
            fleet.stop_all().await;
            let seen: Vec<String> = refusals.iter().map(|(e, n)| format!("{n} × {e}")).collect();
            return Err(SimError::NeverReady(seen.join("; ")));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let warmup_s = warm.elapsed().as_secs_f64();
    let rss_after_start = rss_mib().unwrap_or(0.0);

    // The run proper.
    let t0 = Instant::now();
    let mut observer = Observer::new(t0);
    let mut timeline = Timeline::from_scenario(&scenario, scenario.peers);
    let runner = tokio::spawn(workload.clone().run(requester_ids.clone(), t0));
    let sample_every = Duration::from_secs_f64(if scenario.peers > 3000 { 3.0 } else { 1.0 });
    let mut sample_tick = tokio::time::interval(sample_every);
    sample_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events: Vec<AppliedEvent> = Vec::new();
    let nk = (
        usize::from(scenario.sessions.n),
        usize::from(scenario.sessions.k),
    );
    let mut facts = RunFacts::default();
    loop {
        let now_s = observer.now_s();
        if now_s >= scenario.duration_s {
            break;
        }
        while let Some((at_s, event)) = timeline.pop_due(now_s) {
            let what = apply(
                &mut fleet,
                &mut timeline,
                &coordinator,
                &db,
                &event,
                at_s,
                &mut facts,
            )
            .await?;
            if let Some(what) = what {
                events.push(AppliedEvent { t_s: now_s, what });
            }
        }
        let next_event = timeline
            .next_at()
            .map(|at| Duration::from_secs_f64((at - now_s).max(0.0)))
            .unwrap_or(Duration::from_secs(3600))
            .min(Duration::from_secs_f64(
                (scenario.duration_s - now_s).max(0.0),
            ));
        tokio::select! {
            _ = sample_tick.tick() => {
                observer.sample(&fleet, &coordinator, &db, &workload.stats, nk).await;
                if let Some(s) = observer.samples.last() {
                    progress(&Progress {
                        phase: "running",
                        done: s.t_s.max(0.0) as u64,
                        total: scenario.duration_s as u64,
                        live_peers: s.live_peers,
                        fetch_ok: s.fetch_ok,
                        fetch_failed: s.fetch_failed,
                        sessions: s.sessions,
                        quarantined: s.quarantined,
                        rss_mib: s.rss_mib,
                    });
                }
            }
            () = tokio::time::sleep(next_event) => {}
        }
    }
    runner.abort();
    // Let fetches in flight finish (they are bounded by their timeouts) and the coordinator
    // audit the shares placed last, so every holder that held a share has been checked.
    let settle_s = 3.0 + scenario.timing.holder_audit_s.max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(settle_s)).await;
    // Then every live session's holders are audited once more, so a holder away for its audit
    // and first retries (a region down) is checked now that it is back, however slow the machine.
    crate::observe::audit_every_holder(&coordinator.admin).await;
    crate::observe::settle_proven_deletions(&db).await;
    observer
        .sample(&fleet, &coordinator, &db, &workload.stats, nk)
        .await;
    let run_s = t0.elapsed().as_secs_f64();
    facts.coordinator_dropped.add(&coordinator.node.dropped());
    facts.devices_dropped = fleet.dropped_events();
    let coordinator_peers: std::collections::HashSet<_> = coordinator
        .node
        .connected_peers()
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    for p in fleet
        .peers
        .iter()
        .filter(|p| matches!(p.role, crate::Role::Byzantine(_)))
    {
        if let Some(view) = fleet
            .device_view(p.index, &coordinator.node, &coordinator_peers)
            .await
        {
            facts.device_views.insert(p.index, view);
        }
    }
    facts.rss_baseline_mib = rss_baseline;
    facts.rss_after_start_mib = rss_after_start;
    facts.startup_s = startup_s;
    facts.warmup_s = warmup_s;
    facts.run_s = run_s;
    facts.events = events;
    let report = report::build(&scenario, &fleet, &observer, &workload.stats, facts);
    std::fs::create_dir_all(&opts.out).map_err(|e| SimError::Report(e.to_string()))?;
    report::write(&report, &opts.out, opts.plots).map_err(SimError::Report)?;
    progress(&Progress {
        phase: "stopping devices",
        ..Progress::default()
    });
    fleet.stop_all().await;
    coordinator.node.shutdown().await;
    Ok(report)
}

/// A tokio runtime with one worker thread, shut down in the background when dropped (a runtime
/// may not be dropped from async code otherwise).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn new(name: &str) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    /// Runs `future` on this runtime (tasks it spawns stay here).
    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(runtime) => runtime.spawn(future),
            None => tokio::spawn(future),
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
