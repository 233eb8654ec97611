//! The simulated devices: identities, labels and roles drawn from the seed, share stores on disk,
//! and starting and stopping them as churn and faults come and go (one device's start-up is in
//! `startup`).

mod sensors;
mod startup;

pub use startup::Copied;

use crate::scenario::{Scenario, Weighted};
use crate::{ByzantineKind, Role};
use libp2p::Multiaddr;
use peer::agent::embedded::EmbeddedAgent;
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
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

    /// The device's share key: the same at every start, so the shares it stored stay its own.
    pub fn share_key(&self) -> protocols::share_box::BoxSecret {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&Sha256::digest(
            [b"share-key".as_slice(), &self.secret].concat(),
        ));
        wide[32..].copy_from_slice(&self.secret);
        protocols::share_box::BoxSecret::from_uniform_bytes(&wide)
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
    /// Why lying devices' publications failed, counted by error.
    pub lie_failures: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
    /// Events the nodes of stopped devices had dropped (their owner was behind).
    dropped_by_stopped: crate::report::DroppedCounts,
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
            lie_failures: Arc::default(),
            dropped_by_stopped: crate::report::DroppedCounts::default(),
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
                stop(running, &mut self.dropped_by_stopped).await;
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
                stop(running, &mut self.dropped_by_stopped).await;
            }
        }
    }

    /// Events dropped by every device's node so far, stopped or running.
    pub fn dropped_events(&self) -> crate::report::DroppedCounts {
        let mut total = self.dropped_by_stopped.clone();
        for running in self.peers.iter().filter_map(|p| p.running.as_ref()) {
            total.add(&running.agent.node.dropped());
        }
        total
    }

    /// What device `index` sees now, if it runs: its connections, contributions sent and the
    /// events its node dropped, with what the coordinator's node (`coordinator`, whose open
    /// connections are `coordinator_peers`) knows of it — to tell why the coordinator never
    /// heard a device.
    pub async fn device_view(
        &self,
        index: usize,
        coordinator: &peer::node::NodeHandle,
        coordinator_peers: &std::collections::HashSet<libp2p::PeerId>,
    ) -> Option<crate::report::DeviceView> {
        let running = self.peers.get(index)?.running.as_ref()?;
        let node = &running.agent.node;
        let mut dropped = crate::report::DroppedCounts::default();
        dropped.add(&node.dropped());
        let connected = node.connected_peers().await.ok()?;
        let coordinator_id = self.ctx.coordinator.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        });
        Some(crate::report::DeviceView {
            connections: connected.len(),
            connected_to_coordinator: coordinator_id.is_some_and(|c| connected.contains(&c)),
            contributions_sent: running.agent.metrics.contributions_sent.get(),
            dropped,
            coordinator_connected: coordinator_peers.contains(&node.peer_id()),
            coordinator_gossip_score: coordinator
                .gossip_score(node.peer_id())
                .await
                .ok()
                .flatten(),
        })
    }
}

async fn stop(running: Running, dropped: &mut crate::report::DroppedCounts) {
    for t in &running.tasks {
        t.abort();
    }
    dropped.add(&running.agent.node.dropped());
    running.agent.stop().await;
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
