//! Starting one simulated device: its real embedded agent, the harvest that feeds it blocks
//! from its simulated sensor (`sensors`), and the tasks of a misbehaving device (copies, lies,
//! a lying disk).

use super::sensors::Sensor;
use super::{Fleet, Running, derive, memory_addr};
use crate::byzantine;
use crate::{ByzantineKind, Role};
use peer::agent::embedded::{self, EmbeddedConfig};
use peer::agent::harvest::{HealthSnapshot, ReadyBlock};
use peer::agent::measure::Measurement;
use peer::agent::metrics::PeerMetrics;
use peer::config::SimulatedSourceConfig;
use peer::node::NodeConfig;
use peer::pipeline::{PipelineOutput, SourcePipeline};
use protocols::wire::PowerState;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Samples a pipeline may consume per blocking call.
const SAMPLE_BUDGET: u64 = 100_000;

impl Fleet {
    pub(super) async fn start(&mut self, index: usize) -> Result<(), crate::SimError> {
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
        // Each boot reads its sensor afresh: one stream for the harvest, another for audits.
        let stream_seed = |label: &str| {
            u64::from_le_bytes(
                derive(
                    ctx.scenario.seed,
                    label,
                    (index as u64) << 16 | u64::from(boot),
                )[..8]
                    .try_into()
                    .unwrap_or([0; 8]),
            )
        };
        // An honest device carries one of the sensor models; devices that misbehave otherwise
        // keep the uniform source they always had.
        let sensor = match kind {
            None => Sensor::of_device(ctx.scenario.seed, index),
            Some(_) => Sensor::Uniform,
        };
        // What the device's sensor gives an entropy audit: its real (simulated) raw samples, from
        // another instance of the same sensor; a biased liar's raw bits are as biased as what it
        // really has.
        let audits = peer::agent::audit::AuditDesk::default();
        let audit_seed = stream_seed("audit");
        let audit_source = match kind {
            Some(ByzantineKind::Biased) => SimulatedSourceConfig::Biased {
                p_one: 0.6,
                seed: audit_seed,
            },
            Some(ByzantineKind::Stuck) => SimulatedSourceConfig::Stuck { value: 1 },
            _ => sensor.config(audit_seed),
        };
        let audit_sensor = build_pipeline(audit_source)?;
        let audit_bits = audit_sensor.model().bits_per_sample;
        let audit_sensor = Arc::new(Mutex::new(audit_sensor));
        audits.register_reader(
            "sim:0",
            audit_bits,
            Arc::new(move |n| {
                audit_sensor
                    .lock()
                    .ok()
                    .and_then(|mut s| s.read_window(n, None).ok())
                    .unwrap_or_default()
            }),
        );
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
                    p.misbehaving_since.clone(),
                )));
                Some(block_rx)
            }
            _ => {
                let source = match kind {
                    Some(ByzantineKind::Stuck) => SimulatedSourceConfig::Stuck { value: 1 },
                    _ => sensor.config(stream_seed("source")),
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
                    p.share_key(),
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
            share_key: p.share_key(),
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
            audits,
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
                    failures: self.lie_failures.clone(),
                    membership: agent.membership.clone(),
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

pub(super) fn build_pipeline(
    source: SimulatedSourceConfig,
) -> Result<SourcePipeline, crate::SimError> {
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
            block: b.harvested.block.clone(),
            accounting: b.harvested.accounting.clone(),
        },
        source: b.source.clone(),
    }
}

/// Where a device's published blocks are copied to (a clone of it), and its publish counter.
struct Copies {
    sink: Arc<Mutex<Option<mpsc::Sender<Copied>>>>,
    published: Arc<PeerMetrics>,
}

/// A block its original's agent has just taken (to publish it, or to drop it).
pub struct Copied {
    /// The block.
    pub block: ReadyBlock,
    /// The original's publish counter, to check that the block really went out.
    pub published: Arc<PeerMetrics>,
    /// The counter just before the agent took the block (so before it published it).
    pub count_at_take: u64,
    /// When the agent took it.
    pub taken_at: Instant,
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
                    harvested,
                };
                let copy = copy_block(&ready);
                // The publish counter before the agent takes the previous block: read while that
                // block still fills the slot, so the count cannot include its publication yet.
                let before_take = copies.published.contributions_sent.get();
                let taken_now = match blocks.try_send(ready) {
                    // The slot was free: the previous block was taken earlier, at a count not
                    // known here, so it is not copied.
                    Ok(()) => false,
                    Err(mpsc::error::TrySendError::Full(ready)) => {
                        if blocks.send(ready).await.is_err() {
                            return;
                        }
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                };
                if let Some(taken) = previous.replace(copy)
                    && taken_now
                {
                    let sink = copies.sink.lock().ok().and_then(|s| s.clone());
                    if let Some(sink) = sink {
                        let _ = sink.try_send(Copied {
                            block: taken,
                            published: copies.published.clone(),
                            count_at_take: before_take,
                            taken_at: Instant::now(),
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
