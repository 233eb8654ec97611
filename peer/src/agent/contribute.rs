//! The contribution task: seals blocks to the coordinator and publishes them at a jittered, limited rate.

use super::coordinator_call::CallError;
use super::harvest::ReadyBlock;
use super::{Shared, now_ms};
use crate::node::{CONTRIBUTIONS_TOPIC, NodeHandle};
use libp2p::{Multiaddr, PeerId};
use protocols::wire::{
    Contribution, ContributionBody, CoordinatorRecord, CoordinatorRequest, Reply, SignedEnvelope,
    WIRE_VERSION,
};
use rand::RngExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Fraction of the interval used as random jitter either way.
const JITTER: f64 = 0.2;

/// Runs until the block channel closes.
pub async fn run(
    shared: Arc<Shared>,
    node: NodeHandle,
    coordinator: PeerId,
    coordinator_addr: Multiaddr,
    interval_s: f64,
    mut blocks: mpsc::Receiver<ReadyBlock>,
) {
    let mut seq = now_ms().saturating_mul(1000);
    let mut noise_static: Option<[u8; 32]> = None;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_rng(&mut rand::rng());
    while let Some(block) = blocks.recv().await {
        if noise_static.is_none() {
            noise_static = fetch_record(&shared, &node, coordinator, &coordinator_addr).await;
            if noise_static.is_none() {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        }
        let Some(key) = noise_static else { continue };
        // Other devices forward what carries a membership certificate at once; without one they
        // ask the coordinator about this device first (docs/protocol/gossip-admission.md).
        let membership = shared.membership.current(now_ms());
        seq += 1;
        match publish(&shared, &node, &key, seq, &block, membership).await {
            Ok(()) => {
                shared.metrics.contributions_sent.inc();
                tracing::debug!(seq, source = %block.source, "contribution published");
            }
            Err(e) => tracing::debug!(error = %e, "contribution not published"),
        }
        let jitter = 1.0 + rng.random_range(-JITTER..=JITTER);
        tokio::time::sleep(Duration::from_secs_f64((interval_s * jitter).max(0.01))).await;
    }
}

async fn publish(
    shared: &Shared,
    node: &NodeHandle,
    coordinator_static: &[u8; 32],
    seq: u64,
    block: &ReadyBlock,
    membership: Option<SignedEnvelope>,
) -> Result<(), String> {
    let body = ContributionBody {
        v: WIRE_VERSION,
        conditioned: block.harvested.block.as_bytes().to_vec(),
        accounting: block.harvested.accounting.clone(),
    };
    let sealed = crate::contribution::seal(coordinator_static, &shared.key.node_id(), seq, &body)
        .map_err(|e| e.to_string())?;
    let contribution = Contribution {
        v: WIRE_VERSION,
        seq,
        sent_at_ms: now_ms(),
        sealed,
        membership,
    };
    node.publish(
        CONTRIBUTIONS_TOPIC,
        SignedEnvelope::seal(&shared.key, &contribution).to_bytes(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Asks the pinned coordinator for its signed Noise record.
async fn fetch_record(
    shared: &Shared,
    node: &NodeHandle,
    coordinator: PeerId,
    addr: &Multiaddr,
) -> Option<[u8; 32]> {
    let reply: Reply<SignedEnvelope> =
        match super::coordinator_call::ask(node, coordinator, addr, CoordinatorRequest::GetRecord)
            .await
        {
            Ok(reply) => reply,
            Err(CallError::Unreachable(e)) => {
                tracing::info!(error = %e, "coordinator not reachable yet");
                return None;
            }
            Err(CallError::Undecodable(_)) => return None,
        };
    let envelope = match reply.result {
        Ok(e) => e,
        Err(refusal) => {
            tracing::warn!(%refusal, "coordinator refused its record");
            return None;
        }
    };
    match envelope.open::<CoordinatorRecord>(&shared.coordinator) {
        Ok(record) => Some(record.noise_static),
        Err(e) => {
            tracing::warn!(error = %e, "coordinator record does not verify against the pinned identity");
            None
        }
    }
}

/// Redeems the configured join token with the coordinator once (a `joined` marker in the data
/// directory records success). Retries while the coordinator is unreachable.
pub async fn redeem_join_token(
    node: &NodeHandle,
    coordinator: PeerId,
    addr: &Multiaddr,
    token: &str,
    marker: &std::path::Path,
) {
    if marker.exists() {
        return;
    }
    for _ in 0..30 {
        let request = CoordinatorRequest::Join(protocols::wire::JoinRequest {
            token: token.to_string(),
        });
        let answer: Result<Reply<protocols::wire::Joined>, _> =
            super::coordinator_call::ask(node, coordinator, addr, request).await;
        match answer.map(|r| r.result) {
            Ok(Ok(joined)) => {
                tracing::info!(region = %joined.region, operator = %joined.operator, "joined the coordinator with a token");
                if let Err(e) = std::fs::write(marker, b"joined\n") {
                    tracing::warn!(error = %e, "could not record the join");
                }
            }
            Ok(Err(refusal)) => tracing::error!(%refusal, "join token refused"),
            Err(CallError::Undecodable(e)) => tracing::warn!(error = %e, "join answer undecodable"),
            Err(CallError::Unreachable(e)) => {
                tracing::info!(error = %e, "coordinator not reachable yet for the join");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        return;
    }
}
