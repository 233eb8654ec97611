//! Attestation carried out: the challenges the core decides on (whom, with what feedback),
//! sent over the node with a fresh nonce, and their answers handed back to the core to judge
//! (`core::attestation`); the verdicts are counted and new share keys recorded here.

use super::{Ctx, Internal, State, now_ms, os_random};
use crate::core::errors::NoAnswer;
use peer::node::Protocol;
use protocols::ids::NodeId;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Sends one challenge; the answer comes back as [`Internal::Attested`].
pub(super) fn challenge(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    node: NodeId,
) {
    let nonce = os_random();
    let max = Protocol::Attest.limits().0;
    let Some(out) = state.challenge(node, nonce, now_ms(), max) else {
        return;
    };
    let (ctx, internal) = (ctx.clone(), internal.clone());
    let timeout = std::time::Duration::from_secs_f64(ctx.config.attestation_answer_s);
    tokio::spawn(async move {
        let request = ctx
            .node
            .request(Protocol::Attest, out.peer, out.addrs, out.bytes);
        let reply = match tokio::time::timeout(timeout, request).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(NoAnswer::Request(e)),
            Err(_) => Err(NoAnswer::Timeout),
        };
        let _ = internal
            .send(Internal::Attested {
                node,
                nonce,
                reply,
                received_at_ms: now_ms(),
            })
            .await;
    });
}

/// Has the core judge an answer and counts the verdict.
pub(super) fn judge(
    ctx: &Ctx,
    state: &mut State,
    node: NodeId,
    nonce: [u8; 32],
    reply: Result<Vec<u8>, NoAnswer>,
    received_at_ms: u64,
) {
    let max = Protocol::Attest.limits().1;
    let verdict = state.judge_attestation(node, nonce, reply, received_at_ms, max, now_ms());
    let Some(v) = verdict else {
        return;
    };
    ctx.metrics.attestations.inc(v.label);
    if v.newly_quarantined {
        ctx.metrics.quarantines.inc(v.label);
    }
    if let Some(key) = v.new_share_key {
        // Recorded on a blocking thread; the peer table has the key already. A failed write
        // loses it only at a restart, after which the next attestation records it again.
        let db = ctx.db.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = db.record_share_key(&node, key) {
                tracing::error!(node = %node.short(), error = %e, "share key not recorded in the database; recorded again after a restart");
            }
        });
    }
}
