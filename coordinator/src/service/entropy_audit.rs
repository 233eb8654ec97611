//! Entropy audits carried out (docs/protocol/entropy-audit.md): the core (`core::entropy_audits`)
//! says which source to ask and judges the answer; this sends the request, assesses the window
//! on a blocking thread (one at a time) and hands the outcome back to settle.

use super::errors::AuditError;
use super::{Ctx, Internal, State, now_ms};
use crate::core::entropy_audits;
use crate::intake::sources::AuditResult;
use peer::node::Protocol;
use protocols::ids::NodeId;
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
    let timeout = std::time::Duration::from_secs_f64(ctx.config.attestation_answer_s + 10.0);
    let request = entropy_audits::request(source, samples);
    let sent = ctx.node.request(Protocol::Audit, peer_id, addrs, request);
    let bytes = match tokio::time::timeout(timeout, sent).await {
        Ok(answer) => answer?,
        Err(_) => return Err(AuditError::NoAnswer),
    };
    let window = entropy_audits::check_reply(&bytes, Protocol::Audit.limits().1, source, samples)?;
    let _slot = ctx
        .assessing
        .acquire()
        .await
        .map_err(|_| AuditError::NotRun("shutting down".into()))?;
    tokio::task::spawn_blocking(move || entropy_audits::assess_window(&window, now_ms))
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
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let counts = state.settle_entropy_audit(node, &source, outcome, now_ms(), &mut rng);
    ctx.metrics.count(counts);
}

/// Starts the audits that are due and fails the ones under way for too long.
pub(super) fn tick(ctx: &Arc<Ctx>, state: &mut State, internal: &mpsc::Sender<Internal>) {
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let (due, counts) = state.entropy_audit_tick(now_ms(), &mut rng);
    ctx.metrics.count(counts);
    for (node, source) in due {
        start(ctx, state, internal, node, source);
    }
}
