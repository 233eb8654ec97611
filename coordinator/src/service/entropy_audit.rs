//! Entropy audits from the coordinator's side (docs/protocol/entropy-audit.md): ask a device for a
//! window of raw samples of a named source, assess it with the ten SP 800-90B §6.3 estimators on
//! a blocking thread (one at a time), and settle the source's standing and waiting blocks.

use super::errors::AuditError;
use super::{Ctx, Internal, State, gossip, now_ms, os_random};
use crate::intake::sources::AuditResult;
use peer::node::Protocol;
use protocols::entropy::assess::{MIN_SAMPLES, assess};
use protocols::ids::NodeId;
use protocols::wire::{self, AuditRequest, AuditWindow, Reply, WIRE_VERSION};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Asks `node` for a window of `source` and reports the outcome as [`Internal::EntropyAudited`].
pub(super) fn start(
    ctx: &Arc<Ctx>,
    state: &State,
    internal: &mpsc::Sender<Internal>,
    node: NodeId,
    source: String,
) {
    let Some(peer_id) = peer::identity::peer_id(&node) else {
        return;
    };
    let addrs = state
        .peers
        .get(&node)
        .map(|p| p.addrs())
        .unwrap_or_default();
    let (ctx, internal) = (ctx.clone(), internal.clone());
    let samples = ctx.config.entropy_audit_samples;
    tokio::spawn(async move {
        let outcome = run(&ctx, peer_id, addrs, &source, samples).await;
        let _ = internal
            .send(Internal::EntropyAudited {
                node,
                source,
                outcome,
            })
            .await;
    });
}

async fn run(
    ctx: &Ctx,
    peer_id: libp2p::PeerId,
    addrs: Vec<libp2p::Multiaddr>,
    source: &str,
    samples: u32,
) -> Result<AuditResult, AuditError> {
    let request = AuditRequest {
        v: WIRE_VERSION,
        source: source.to_string(),
        samples,
    };
    let timeout = std::time::Duration::from_secs_f64(ctx.config.attestation_answer_s + 10.0);
    let sent = ctx
        .node
        .request(Protocol::Audit, peer_id, addrs, wire::encode(&request));
    let bytes = match tokio::time::timeout(timeout, sent).await {
        Ok(answer) => answer?,
        Err(_) => return Err(AuditError::NoAnswer),
    };
    let reply: Reply<AuditWindow> = wire::decode(&bytes, Protocol::Audit.limits().1)?;
    let window = reply.result.map_err(AuditError::Refused)?;
    if window.source != source || !(1..=8).contains(&window.bits_per_sample) {
        return Err(AuditError::WrongWindow);
    }
    if window.samples.len() > samples as usize {
        return Err(AuditError::TooManySamples {
            got: window.samples.len(),
            asked: samples,
        });
    }
    if window.samples.len() < MIN_SAMPLES {
        return Err(AuditError::TooFewSamples {
            got: window.samples.len(),
            min: MIN_SAMPLES,
        });
    }
    let _slot = ctx
        .assessing
        .acquire()
        .await
        .map_err(|_| AuditError::NotRun("shutting down".into()))?;
    let bits = window.bits_per_sample;
    let count = window.samples.len();
    tokio::task::spawn_blocking(move || {
        let assessment = assess(&window.samples, bits)?;
        let lowest = assessment.estimates.iter().min_by(|a, b| {
            a.min_entropy_per_sample
                .total_cmp(&b.min_entropy_per_sample)
        });
        Ok(AuditResult {
            h: assessment.min_entropy_per_sample,
            samples: count,
            estimator: lowest.map_or("none".into(), |e| e.name.to_string()),
            at_ms: now_ms(),
        })
    })
    .await
    .map_err(|e| AuditError::NotRun(e.to_string()))?
}

/// Settles an audit's outcome in the core: the source's cap, its waiting blocks, a quarantine.
pub(super) fn settle(
    ctx: &Ctx,
    state: &mut State,
    node: NodeId,
    source: String,
    outcome: Result<AuditResult, AuditError>,
) {
    let uniform = f64::from(u32::from_le_bytes(os_random())) / f64::from(u32::MAX);
    let mut counts = Vec::new();
    state
        .books()
        .settle_audit(node, &source, outcome, uniform, now_ms(), &mut counts);
    gossip::count(ctx, counts);
}

/// Starts the audits that are due and fails the ones under way for too long.
pub(super) fn tick(ctx: &Arc<Ctx>, state: &mut State, internal: &mpsc::Sender<Internal>) {
    let now = now_ms();
    let timeout_ms = ((ctx.config.attestation_answer_s + 60.0) * 1000.0) as u64;
    for (node, source) in state.sources.expire_pending(now, timeout_ms) {
        settle(
            ctx,
            state,
            node,
            source,
            Err(AuditError::NotRun("audit task lost".into())),
        );
    }
    for (node, source) in state.sources.audits_due(now) {
        start(ctx, state, internal, node, source);
    }
}
