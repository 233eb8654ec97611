//! The workload: real requesters create sessions and fetch their keys at the scenario's rates;
//! every fetch is recorded (outcome, latency, holders named), and every key is checked against
//! the first key fetched for its session.

use crate::scenario::Sessions;
use libp2p::Multiaddr;
use protocols::ids::{NodeId, SessionId};
use protocols::wire::SessionPolicy;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use requester::{HolderProblem, Requester, RequesterError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Attempts per fetch operation (each with a fresh ticket), as a client retrying once would.
const ATTEMPTS: usize = 2;

/// One fetch operation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchRecord {
    /// Seconds into the run when it started.
    pub at_s: f64,
    /// A key came back.
    pub ok: bool,
    /// Wall time of the whole operation (ticket and fetch, both attempts).
    pub latency_ms: f64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A holder a requester named as failing.
#[derive(Debug, Clone)]
pub struct Named {
    /// First time, seconds into the run.
    pub first_at_s: f64,
    /// Times named, by problem (`bad_share`, `not_found`, `unreachable`, other refusals).
    pub by_problem: BTreeMap<String, u64>,
}

struct SessionEntry {
    id: SessionId,
    expires: Instant,
    reference: Option<[u8; 32]>,
}

/// Everything the workload measured; shared with the observer.
#[derive(Default)]
pub struct WorkloadStats {
    /// Every fetch operation.
    pub fetches: Mutex<Vec<FetchRecord>>,
    /// Holders named by requesters.
    pub named: Mutex<BTreeMap<NodeId, Named>>,
    /// Keys that differed from their session's first key.
    pub wrong_keys: AtomicU64,
    /// Sessions created.
    pub sessions_created: AtomicU64,
    /// Creations refused or failed, by reason.
    pub create_failures: Mutex<BTreeMap<String, u64>>,
    /// Fetches not started because `max_in_flight` were running.
    pub fetches_shed: AtomicU64,
    sessions: Mutex<Vec<SessionEntry>>,
}

impl WorkloadStats {
    /// Fetches (ok, failed) so far.
    pub fn fetch_counts(&self) -> (u64, u64) {
        self.fetches
            .lock()
            .map(|f| {
                let ok = f.iter().filter(|r| r.ok).count() as u64;
                (ok, f.len() as u64 - ok)
            })
            .unwrap_or((0, 0))
    }

    /// Sessions alive now.
    pub fn live_sessions(&self) -> usize {
        let now = Instant::now();
        self.sessions
            .lock()
            .map(|s| s.iter().filter(|e| e.expires > now).count())
            .unwrap_or(0)
    }

    fn note_named(&self, node: NodeId, problem: &HolderProblem, at_s: f64) {
        let label = problem_label(problem);
        if let Ok(mut named) = self.named.lock() {
            let entry = named.entry(node).or_insert_with(|| Named {
                first_at_s: at_s,
                by_problem: BTreeMap::new(),
            });
            *entry.by_problem.entry(label).or_insert(0) += 1;
        }
    }

    fn check_key(&self, session: &SessionId, fingerprint: [u8; 32]) {
        let Ok(mut sessions) = self.sessions.lock() else {
            return;
        };
        if let Some(entry) = sessions.iter_mut().find(|e| &e.id == session) {
            match entry.reference {
                None => entry.reference = Some(fingerprint),
                Some(reference) if reference != fingerprint => {
                    self.wrong_keys.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
            }
        }
    }
}

/// The requesters and their shared counters.
pub struct Workload {
    requesters: Vec<Arc<Requester>>,
    /// What was measured.
    pub stats: Arc<WorkloadStats>,
    config: Sessions,
    seed: u64,
}

fn problem_label(problem: &HolderProblem) -> String {
    match problem {
        HolderProblem::BadShare(_) => "bad_share".to_string(),
        HolderProblem::Unreachable(_) => "unreachable".to_string(),
        HolderProblem::Refused(r) => r.label().to_string(),
    }
}

fn fingerprint(key: &protocols::keys::SessionKey) -> [u8; 32] {
    Sha256::digest(key.expose()).into()
}

impl Workload {
    /// Starts `config.requesters` requester nodes on the memory transport.
    pub async fn connect(
        keys: Vec<protocols::identity::NodeKey>,
        coordinator: Multiaddr,
        config: Sessions,
        seed: u64,
    ) -> Result<Self, crate::SimError> {
        let mut requesters = Vec::new();
        for key in &keys {
            let mut node = peer::node::NodeConfig::memory(vec![crate::fleet::memory_addr()]);
            node.gossip_subscribe = false;
            node.idle_timeout = Duration::from_secs(10);
            node.channel_capacity = 256;
            let mut r = Requester::connect_with(key, coordinator.clone(), node)
                .await
                .map_err(|e| crate::SimError::Setup(e.to_string()))?;
            r.hedge_after = Duration::from_millis(800);
            requesters.push(Arc::new(r));
        }
        Ok(Self {
            requesters,
            stats: Arc::new(WorkloadStats::default()),
            config,
            seed,
        })
    }

    /// Creates one session (the pool must be ready) and fetches its reference key.
    pub async fn create_one(&self, requesters: &[NodeId], label: String) -> Result<(), String> {
        let Some(r) = self.requesters.first() else {
            return Err("no requester".into());
        };
        let policy = SessionPolicy {
            n: self.config.n,
            k: self.config.k,
            ttl_s: self.config.ttl_s,
            requesters: requesters.to_vec(),
            label,
        };
        let created = match r.create_session(policy).await {
            Ok(c) => c,
            Err(e) => {
                let reason = match &e {
                    RequesterError::Refused(refusal) => refusal.label().to_string(),
                    _ => "error".to_string(),
                };
                if let Ok(mut f) = self.stats.create_failures.lock() {
                    *f.entry(reason).or_insert(0) += 1;
                }
                return Err(e.to_string());
            }
        };
        self.stats.sessions_created.fetch_add(1, Ordering::Relaxed);
        // The creator fetches at once: that key is the reference every later fetch must match.
        let reference = r.fetch(&created.grant).await.ok().map(|k| fingerprint(&k));
        if let Ok(mut s) = self.stats.sessions.lock() {
            s.push(SessionEntry {
                id: created.session,
                expires: Instant::now() + Duration::from_secs(self.config.ttl_s.saturating_sub(5)),
                reference,
            });
        }
        Ok(())
    }

    /// Runs session creation and fetches until aborted; `t0` is the run's time zero.
    pub async fn run(self: Arc<Self>, requester_ids: Vec<NodeId>, t0: Instant) {
        let creator = {
            let me = self.clone();
            let ids = requester_ids.clone();
            tokio::spawn(async move { me.create_loop(ids).await })
        };
        self.fetch_loop(t0).await;
        creator.abort();
    }

    async fn create_loop(&self, ids: Vec<NodeId>) {
        if self.config.create_per_min <= 0.0 {
            return;
        }
        let period = Duration::from_secs_f64(60.0 / self.config.create_per_min);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut count = 1u64;
        loop {
            tick.tick().await;
            if self.stats.live_sessions() >= self.config.max_live {
                continue;
            }
            count += 1;
            let _ = self.create_one(&ids, format!("sim-{count}")).await;
        }
    }

    async fn fetch_loop(&self, t0: Instant) {
        if self.config.fetch_per_min <= 0.0 {
            return std::future::pending().await;
        }
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x6665_7463_6800);
        let mean = 60.0 / self.config.fetch_per_min;
        let in_flight = Arc::new(Semaphore::new(self.config.max_in_flight));
        loop {
            let wait = crate::faults::exponential(rng.random::<f64>(), mean);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            let now = Instant::now();
            let live: Vec<SessionId> = self
                .stats
                .sessions
                .lock()
                .map(|s| s.iter().filter(|e| e.expires > now).map(|e| e.id).collect())
                .unwrap_or_default();
            if live.is_empty() {
                continue;
            }
            let session = live[rng.random_range(0..live.len())];
            let requester = self.requesters[rng.random_range(0..self.requesters.len())].clone();
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                self.stats.fetches_shed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let stats = self.stats.clone();
            tokio::spawn(async move {
                fetch_one(&requester, session, &stats, t0).await;
                drop(permit);
            });
        }
    }
}

async fn fetch_one(requester: &Requester, session: SessionId, stats: &WorkloadStats, t0: Instant) {
    let started = Instant::now();
    let at_s = started.duration_since(t0).as_secs_f64();
    let mut error = None;
    let mut ok = false;
    for _ in 0..ATTEMPTS {
        let grant = match requester.ticket(session).await {
            Ok(g) => g,
            Err(e) => {
                error = Some(format!("ticket: {e}"));
                continue;
            }
        };
        match requester.fetch_with_report(&grant).await {
            Ok((key, failures)) => {
                for f in &failures {
                    stats.note_named(f.node, &f.problem, t0.elapsed().as_secs_f64());
                }
                stats.check_key(&session, fingerprint(&key));
                ok = true;
                error = None;
                break;
            }
            Err(RequesterError::Fetch(
                requester::FetchError::NotEnoughShares {
                    failures,
                    got,
                    need,
                }
                | requester::FetchError::StaleTicket {
                    failures,
                    got,
                    need,
                    ..
                },
            )) => {
                let mut why: BTreeMap<String, u64> = BTreeMap::new();
                for f in &failures {
                    stats.note_named(f.node, &f.problem, t0.elapsed().as_secs_f64());
                    *why.entry(problem_label(&f.problem)).or_insert(0) += 1;
                }
                let why: Vec<String> = why.iter().map(|(k, v)| format!("{k} x{v}")).collect();
                error = Some(format!(
                    "only {got} of {need} shares; holders failed: {}",
                    why.join(", ")
                ));
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    let record = FetchRecord {
        at_s,
        ok,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        error,
    };
    if let Ok(mut f) = stats.fetches.lock() {
        f.push(record);
    }
}
