//! The simulated devices: identities, labels and roles drawn from the seed, share stores on disk,
//! and starting and stopping the real embedded agents as faults come and go.

use crate::byzantine;
use crate::scenario::{Scenario, Weighted};
use crate::{ByzantineKind, Role};
use libp2p::Multiaddr;
use peer::agent::embedded::{self, EmbeddedAgent, EmbeddedConfig};
use peer::agent::harvest::{HealthSnapshot, ReadyBlock};
use peer::agent::measure::Measurement;
use peer::agent::metrics::PeerMetrics;
use peer::config::SimulatedSourceConfig;
use peer::node::NodeConfig;
use peer::pipeline::{PipelineOutput, SourcePipeline};
use peer::store::ShareStore;
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::wire::PowerState;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Samples a pipeline may consume per blocking call.
const SAMPLE_BUDGET: u64 = 100_000;

/// Next in-memory port; shared by every fleet of the process so that runs never collide.
static NEXT_PORT: AtomicU64 = AtomicU64::new(0);

/// A fresh `/memory/<port>` address.
pub fn memory_addr() -> Multiaddr {
    let base = u64::from(std::process::id()) << 24;
    let port = base + NEXT_PORT.fetch_add(1, Ordering::Relaxed) + 1;
    Multiaddr::empty().with(libp2p::multiaddr::Protocol::Memory(port))
}

/// 32 bytes derived from the run seed and a label (identities, source seeds).
pub fn derive(seed: u64, label: &str, index: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"entroshard-simulator");
    h.update(seed.to_le_bytes());
    h.update(label.as_bytes());
    h.update(index.to_le_bytes());
    h.finalize().into()
}

/// Why a device is not running now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Down {
    /// Left with churn (maybe for good).
    Churn,
    /// Cut off by a partition.
    Partition,
    /// Its region is out.
    Outage,
}

struct Running {
    agent: EmbeddedAgent,
    tasks: Vec<JoinHandle<()>>,
}

/// One simulated device.
pub struct SimPeer {
    /// Position in the fleet.
    pub index: usize,
    secret: [u8; 32],
    /// Its id.
    pub node: NodeId,
    /// Enrolled region.
    pub region: String,
    /// Enrolled operator.
    pub operator: String,
    /// Power supply.
    pub power: PowerState,
    /// Honest or how it misbehaves.
    pub role: Role,
    /// Subscribes to the gossip topics and relays them.
    pub relay: bool,
    /// For a cloned device: the device whose blocks it sends.
    pub clone_of: Option<usize>,
    /// Where copies of this device's published blocks go (set while a clone of it runs).
    copies: Arc<Mutex<Option<mpsc::Sender<Copied>>>>,
    store: Arc<ShareStore>,
    boots: u32,
    running: Option<Running>,
    /// Why it is down (empty: it should run).
    pub down: BTreeSet<Down>,
    /// Left with churn and never comes back.
    pub gone: bool,
    /// When it first started.
    pub first_started: Option<Instant>,
    /// When its misbehaviour first became observable (a tampered share, say).
    pub misbehaving_since: Arc<Mutex<Option<Instant>>>,
}

impl SimPeer {
    /// Whether its agent runs now.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The device's signing key.
    pub fn key(&self) -> NodeKey {
        NodeKey::from_secret_bytes(&self.secret)
    }
}

/// Settings every device start needs.
#[derive(Clone)]
pub struct FleetContext {
    /// The coordinator's address with `/p2p/`.
    pub coordinator: Multiaddr,
    /// The coordinator's public Noise static key (byzantine publishers seal with it).
    pub coordinator_static: [u8; 32],
    /// SHA-256 of the running binary (allowed by the coordinator).
    pub binary_sha256: [u8; 32],
    /// The scenario.
    pub scenario: Arc<Scenario>,
}

/// Every device of the run.
pub struct Fleet {
    /// The devices, by index.
    pub peers: Vec<SimPeer>,
    ctx: FleetContext,
    store_dir: PathBuf,
    rng: StdRng,
}

fn pick<'a>(rng: &mut StdRng, items: &'a [Weighted]) -> &'a str {
    let total: f64 = items.iter().map(|w| w.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for w in items {
        if x < w.weight {
            return &w.name;
        }
        x -= w.weight;
    }
    items.last().map(|w| w.name.as_str()).unwrap_or("none")
}

impl Fleet {
    /// Draws `count` devices (labels, power, roles) from the seed and opens their stores.
    pub fn create(
        ctx: FleetContext,
        store_dir: PathBuf,
        count: usize,
    ) -> Result<Self, crate::SimError> {
        let mut fleet = Self {
            peers: Vec::with_capacity(count),
            rng: StdRng::seed_from_u64(ctx.scenario.seed),
            ctx,
            store_dir,
        };
        let roles = fleet.draw_roles(count);
        for role in roles {
            fleet.add(role)?;
        }
        fleet.pair_clones();
        Ok(fleet)
    }

    /// Exactly round(fraction × count) devices of each kind, at seeded random positions.
    fn draw_roles(&mut self, count: usize) -> Vec<Role> {
        let mut roles = vec![Role::Honest; count];
        let mut free: Vec<usize> = (0..count).collect();
        for (kind, fraction) in self.ctx.scenario.byzantine.kinds() {
            let want = (fraction * count as f64).round() as usize;
            for _ in 0..want {
                if free.len() <= count / 2 {
                    break;
                }
                let at = self.rng.random_range(0..free.len());
                let index = free.swap_remove(at);
                if let Some(r) = roles.get_mut(index) {
                    *r = Role::Byzantine(kind);
                }
            }
        }
        roles
    }

    /// Gives every cloned device an honest original of its own.
    fn pair_clones(&mut self) {
        let honest: Vec<usize> = self
            .peers
            .iter()
            .filter(|p| p.role == Role::Honest)
            .map(|p| p.index)
            .collect();
        let clones: Vec<usize> = self
            .peers
            .iter()
            .filter(|p| p.role == Role::Byzantine(ByzantineKind::Cloned))
            .map(|p| p.index)
            .collect();
        for (clone, original) in clones.into_iter().zip(honest) {
            if let Some(p) = self.peers.get_mut(clone) {
                p.clone_of = Some(original);
            }
        }
    }

    /// Adds one device (initial fleet or a churn join); it is not started.
    pub fn add(&mut self, role: Role) -> Result<usize, crate::SimError> {
        let index = self.peers.len();
        let scenario = self.ctx.scenario.clone();
        let secret = derive(scenario.seed, "device", index as u64);
        let node = NodeKey::from_secret_bytes(&secret).node_id();
        let region = pick(&mut self.rng, &scenario.regions).to_string();
        let operator = pick(&mut self.rng, &scenario.operators).to_string();
        let b = &scenario.battery;
        let power = if self.rng.random::<f64>() < b.mains_fraction {
            PowerState::Mains
        } else {
            PowerState::Battery {
                percent: self.rng.random_range(b.min_percent..=b.max_percent),
            }
        };
        let relay = self.rng.random::<f64>() < scenario.network.relay_fraction;
        let path = self.store_dir.join(format!("device-{index}.redb"));
        let store = Arc::new(
            ShareStore::open(&path, 4096).map_err(|e| crate::SimError::Setup(e.to_string()))?,
        );
        self.peers.push(SimPeer {
            index,
            secret,
            node,
            region,
            operator,
            power,
            role,
            relay,
            clone_of: None,
            copies: Arc::new(Mutex::new(None)),
            store,
            boots: 0,
            running: None,
            down: BTreeSet::new(),
            gone: false,
            first_started: None,
            misbehaving_since: Arc::new(Mutex::new(None)),
        });
        Ok(index)
    }

    /// The scenario the fleet was drawn from.
    pub fn scenario(&self) -> &crate::Scenario {
        &self.ctx.scenario
    }

    /// A random running device, if any.
    pub fn random_running(&mut self) -> Option<usize> {
        let running: Vec<usize> = self
            .peers
            .iter()
            .filter(|p| p.is_running())
            .map(|p| p.index)
            .collect();
        if running.is_empty() {
            return None;
        }
        running
            .get(self.rng.random_range(0..running.len()))
            .copied()
    }

    /// A number in [0, 1) from the run's generator.
    pub fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// Starts or stops device `index` so that it runs exactly when nothing holds it down.
    pub async fn reconcile(&mut self, index: usize) -> Result<(), crate::SimError> {
        let Some(p) = self.peers.get_mut(index) else {
            return Ok(());
        };
        let should_run = p.down.is_empty() && !p.gone;
        if should_run && !p.is_running() {
            self.start(index).await
        } else if !should_run {
            if let Some(running) = p.running.take() {
                stop(running).await;
            }
            Ok(())
        } else {
            Ok(())
        }
    }

    /// Stops every device (end of run).
    pub async fn stop_all(&mut self) {
        for p in &mut self.peers {
            if let Some(running) = p.running.take() {
                stop(running).await;
            }
        }
    }

    async fn start(&mut self, index: usize) -> Result<(), crate::SimError> {
        let ctx = self.ctx.clone();
        let interval = ctx.scenario.timing.contribution_s;
        // The original's copy channel, when this device is a clone.
        let original_copies = self
            .peers
            .get(index)
            .and_then(|p| p.clone_of)
            .and_then(|o| self.peers.get(o))
            .map(|o| o.copies.clone());
        let Some(p) = self.peers.get_mut(index) else {
            return Ok(());
        };
        p.boots += 1;
        let boot = p.boots;
        let health = Arc::new(Mutex::new(HealthSnapshot::default()));
        let mut tasks = Vec::new();
        let kind = match p.role {
            Role::Byzantine(k) => Some(k),
            Role::Honest => None,
        };
        let mut binary = ctx.binary_sha256;
        let (mut region, mut operator, mut power) = (p.region.clone(), p.operator.clone(), p.power);
        // Blocks the agent contributes: honest harvest, cloned copies, or none (the byzantine
        // publisher sends instead).
        let (block_tx, block_rx) = mpsc::channel::<ReadyBlock>(1);
        let mut harvest_with = None;
        let blocks = match kind {
            Some(ByzantineKind::Biased | ByzantineKind::Replayed) => None,
            Some(ByzantineKind::Cloned) => {
                let (copy_tx, copy_rx) = mpsc::channel(4);
                if let Some(slot) = &original_copies
                    && let Ok(mut s) = slot.lock()
                {
                    *s = Some(copy_tx);
                }
                tasks.push(tokio::spawn(byzantine::relay_copies(
                    copy_rx,
                    block_tx,
                    Duration::from_secs_f64(interval * 0.3),
                )));
                Some(block_rx)
            }
            _ => {
                let source = match kind {
                    Some(ByzantineKind::Stuck) => SimulatedSourceConfig::Stuck { value: 1 },
                    _ => SimulatedSourceConfig::Correlated {
                        bits: 8,
                        p_repeat: 0.0,
                        seed: u64::from_le_bytes(
                            derive(
                                ctx.scenario.seed,
                                "source",
                                (index as u64) << 16 | u64::from(boot),
                            )[..8]
                                .try_into()
                                .unwrap_or([0; 8]),
                        ),
                    },
                };
                harvest_with = Some((build_pipeline(source)?, block_tx));
                Some(block_rx)
            }
        };
        match kind {
            Some(ByzantineKind::FailingAttestation) => {
                binary = Sha256::digest(b"an unapproved firmware build").into();
            }
            Some(ByzantineKind::FalseHeartbeats) => {
                region = format!("{region}-claimed-elsewhere");
                operator = format!("{operator}-claimed-other");
                power = PowerState::Mains;
            }
            Some(ByzantineKind::TamperedShares) => {
                tasks.push(tokio::spawn(byzantine::tamper_store(
                    p.store.clone(),
                    p.misbehaving_since.clone(),
                )));
            }
            _ => {}
        }
        let mut node = NodeConfig::memory(vec![memory_addr()]);
        node.gossip_subscribe = p.relay;
        node.gossip_mesh_n = ctx.scenario.network.gossip_mesh_n;
        node.channel_capacity = 32;
        node.idle_timeout = Duration::from_secs(30);
        let measurement = Measurement {
            binary_sha256: binary,
            config_digest: Sha256::digest(format!("{region}/{operator}/{index}")).into(),
            boot_id: format!("sim-{index}-{boot}"),
        };
        let timing = &ctx.scenario.timing;
        let agent = embedded::start(EmbeddedConfig {
            key: p.key(),
            coordinator: ctx.coordinator.clone(),
            region,
            operator,
            power,
            node,
            store: p.store.clone(),
            measurement,
            contribution_interval_s: timing.contribution_s,
            heartbeat_interval_s: timing.heartbeat_s,
            fetch_rate_per_s: 50.0,
            blocks,
            health: health.clone(),
            withhold_shares: kind == Some(ByzantineKind::Withholding),
        })
        .await
        .map_err(|e| crate::SimError::Setup(e.to_string()))?;
        if let Some((pipeline, block_tx)) = harvest_with {
            tasks.push(tokio::spawn(harvest(
                pipeline,
                block_tx,
                health,
                Copies {
                    sink: p.copies.clone(),
                    published: agent.metrics.clone(),
                },
            )));
        }
        if let Some(lie @ (ByzantineKind::Replayed | ByzantineKind::Biased)) = kind {
            tasks.push(tokio::spawn(byzantine::publish_lies(
                lie,
                byzantine::Publisher {
                    node: agent.node.clone(),
                    key: p.key(),
                    coordinator_static: ctx.coordinator_static,
                    interval: Duration::from_secs_f64(interval),
                    since: p.misbehaving_since.clone(),
                    seed: derive(
                        ctx.scenario.seed,
                        "lies",
                        (index as u64) << 16 | u64::from(boot),
                    ),
                },
            )));
        }
        p.first_started.get_or_insert_with(Instant::now);
        p.running = Some(Running { agent, tasks });
        Ok(())
    }
}

async fn stop(running: Running) {
    for t in &running.tasks {
        t.abort();
    }
    running.agent.stop().await;
}

fn build_pipeline(source: SimulatedSourceConfig) -> Result<SourcePipeline, crate::SimError> {
    let config = peer::config::SourcesConfig {
        detect_hardware: false,
        simulated: vec![source],
        ..Default::default()
    };
    peer::sources::build(&config)
        .map_err(crate::SimError::Setup)?
        .pop()
        .ok_or_else(|| crate::SimError::Setup("no simulated source".into()))
}

fn copy_block(b: &ReadyBlock) -> ReadyBlock {
    ReadyBlock {
        harvested: peer::pipeline::HarvestedBlock {
            source_index: b.harvested.source_index,
            block: protocols::entropy::DebiasedBlock::from_bytes(*b.harvested.block.as_bytes()),
            claim: b.harvested.claim,
        },
        source: b.source.clone(),
        measured_per_sample: b.measured_per_sample,
    }
}

/// Where a device's published blocks are copied to (a clone of it), and its publish counter.
struct Copies {
    sink: Arc<Mutex<Option<mpsc::Sender<Copied>>>>,
    published: Arc<PeerMetrics>,
}

/// A block its original has published (as far as the original's counter tells).
pub struct Copied {
    /// The block.
    pub block: ReadyBlock,
    /// The original's publish counter, to check that the block really went out.
    pub published: Arc<PeerMetrics>,
}

/// Drives one device's pipeline on the blocking pool (no thread of its own) and hands blocks to
/// its agent through a one-slot channel. When a send completes the agent has just taken the
/// previous block to publish it: that block's copy goes to a clone of this device, if one runs.
async fn harvest(
    mut pipeline: SourcePipeline,
    blocks: mpsc::Sender<ReadyBlock>,
    health: Arc<Mutex<HealthSnapshot>>,
    copies: Copies,
) {
    let mut previous: Option<ReadyBlock> = None;
    loop {
        let step = tokio::task::spawn_blocking(move || {
            let out = pipeline.next_block(0, SAMPLE_BUDGET);
            (pipeline, out)
        })
        .await;
        let Ok((p, out)) = step else { return };
        pipeline = p;
        peer::agent::harvest::refresh_all(std::slice::from_ref(&pipeline), &health);
        match out {
            Ok(PipelineOutput::Block(harvested)) => {
                let ready = ReadyBlock {
                    source: pipeline.name().to_string(),
                    measured_per_sample: pipeline.measured_min_entropy(),
                    harvested,
                };
                let copy = copy_block(&ready);
                if blocks.send(ready).await.is_err() {
                    return;
                }
                if let Some(taken) = previous.replace(copy) {
                    let sink = copies.sink.lock().ok().and_then(|s| s.clone());
                    if let Some(sink) = sink {
                        let _ = sink.try_send(Copied {
                            block: taken,
                            published: copies.published.clone(),
                        });
                    }
                }
            }
            // A cut-off source produces nothing more; the agent keeps heartbeating its state.
            Ok(PipelineOutput::CutOff) => {
                std::future::pending::<()>().await;
            }
            Ok(PipelineOutput::Pending) => {}
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fleet(seed: u64, dir: &std::path::Path) -> Fleet {
        let mut scenario = Scenario {
            seed,
            ..Scenario::default()
        };
        scenario.byzantine.cloned = 0.1;
        scenario.byzantine.biased = 0.1;
        let ctx = FleetContext {
            coordinator: memory_addr(),
            coordinator_static: [0; 32],
            binary_sha256: [0; 32],
            scenario: Arc::new(scenario),
        };
        Fleet::create(ctx, dir.to_path_buf(), 40).unwrap()
    }

    fn shape(f: &Fleet) -> Vec<(NodeId, String, String, Role, bool, Option<usize>)> {
        f.peers
            .iter()
            .map(|p| {
                (
                    p.node,
                    p.region.clone(),
                    p.operator.clone(),
                    p.role,
                    p.relay,
                    p.clone_of,
                )
            })
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_fleet_and_another_seed_another() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let first = shape(&fleet(11, a.path()));
        assert_eq!(first, shape(&fleet(11, b.path())));
        assert_ne!(first, shape(&fleet(12, c.path())));
    }

    #[test]
    fn byzantine_fractions_are_exact_and_every_clone_has_an_honest_original() {
        let dir = tempfile::tempdir().unwrap();
        let f = fleet(3, dir.path());
        let clones: Vec<_> = f
            .peers
            .iter()
            .filter(|p| p.role == Role::Byzantine(ByzantineKind::Cloned))
            .collect();
        assert_eq!(clones.len(), 4);
        for c in clones {
            let original = f.peers.get(c.clone_of.unwrap()).unwrap();
            assert_eq!(original.role, Role::Honest);
        }
    }
}
