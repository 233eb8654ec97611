//! Session upkeep run from the coordinator loop: the expiry sweep, due and requested rotations,
//! and redemption of one-time join tokens.

use super::{Ctx, Internal, State, now_ms, rotation};
use crate::core::schedule;
use protocols::ids::NodeId;
use protocols::wire::{Refusal, Reply};
use std::sync::Arc;
use tokio::sync::mpsc;

pub(super) async fn rotate_due(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
) {
    let db = ctx.db.clone();
    let Ok(Ok(sessions)) = tokio::task::spawn_blocking(move || db.sessions()).await else {
        return;
    };
    let now = now_ms();
    record_gauges(ctx, state, &sessions, now);
    let requested = state.ledger.requested();
    let mut plan = schedule::plan(
        &sessions,
        state.ledger.busy(),
        &requested,
        |node| rotation::standing(ctx, state, node, now),
        now,
        (ctx.config.rotation_period_s * 1000.0) as u64,
    );
    let db = ctx.db.clone();
    let Ok(Ok(owed)) = tokio::task::spawn_blocking(move || db.owed_deletions()).await else {
        return;
    };
    schedule::settle_before_rotating(&mut plan, &sessions, &owed, |node| {
        rotation::standing(ctx, state, node, now)
    });
    for session in &plan.forget_requests {
        state.ledger.forget_request(session);
    }
    for session in plan.expire {
        if let Some(record) = sessions.iter().find(|s| s.session == session) {
            expire(ctx, state, internal, record.clone());
        }
    }
    for (session, cause) in plan.rotate {
        if let Some(record) = sessions.iter().find(|s| s.session == session) {
            rotation::start(ctx, state, internal, record.clone(), cause);
        }
    }
    // After rotations: an audit waits for a session that is rotating now.
    super::audit::start_due(ctx, state, internal, &sessions);
    // After rotations start: settling locks a session, and an unreachable holder's deliveries
    // can take a request timeout; settling first would starve that session's rotations.
    settle_owed(ctx, state, internal, owed);
    super::master_keys::erase_retired(ctx).await;
}

/// Delivers owed deletions (rolled-back, aborted or superseded epochs) of sessions that are not
/// rotating; each such session is locked in `State::rotating` until its deliveries return.
fn settle_owed(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    owed: Vec<crate::db::OwedDeletion>,
) {
    let owed: Vec<_> = owed
        .into_iter()
        .filter(|d| !state.ledger.is_busy(&d.session))
        .collect();
    if owed.is_empty() {
        return;
    }
    let mut sessions: Vec<_> = owed.iter().map(|d| d.session).collect();
    sessions.dedup();
    for session in &sessions {
        state.ledger.lock(*session);
    }
    let mut nodes: Vec<NodeId> = owed.iter().map(|d| d.node).collect();
    nodes.sort();
    nodes.dedup();
    let addrs = state.peers.addrs_of(nodes.into_iter());
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        let faults = super::placing::deliver_owed(&ctx, &owed, &addrs).await;
        let _ = internal.send(Internal::Settled { sessions, faults }).await;
    });
}

/// Refreshes the gauges the loop owns: live sessions, enrolled and quarantined peers, pool bits.
fn record_gauges(ctx: &Ctx, state: &State, sessions: &[crate::db::SessionRecord], now: u64) {
    let m = &ctx.metrics;
    let live = sessions.iter().filter(|s| s.expires_at_ms > now).count();
    m.sessions_live.set(live as u64);
    let (enrolled, quarantined) = state.peers.iter().fold((0u64, 0u64), |(e, q), (_, p)| {
        (e + 1, q + u64::from(p.quarantine.is_some()))
    });
    m.peers_enrolled.set(enrolled);
    m.peers_quarantined.set(quarantined);
    m.pool_pending_bits.set(state.intake.pending_bits());
    super::readiness::refresh(ctx, state, now);
}

/// Deletes an expired session everywhere: its holders first (best effort), then the record.
fn expire(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    record: crate::db::SessionRecord,
) {
    if !state.ledger.lock(record.session) {
        return;
    }
    state.ledger.dropped(record.holders.iter().map(|h| h.node));
    let addrs: Vec<_> = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        // Best effort (holders also drop expired shares themselves): nothing is owed for an
        // expired session, so settling what is acknowledged removes nothing.
        let deletions: Vec<crate::db::OwedDeletion> = record
            .holders
            .iter()
            .map(|h| crate::db::OwedDeletion {
                session: record.session,
                epoch: record.epoch,
                node: h.node,
                prove: None,
            })
            .collect();
        // Plain deletions: nothing to prove, no fault to find.
        let _ = super::placing::deliver_owed(&ctx, &deletions, &addrs).await;
        let db = ctx.db.clone();
        let session = record.session;
        match tokio::task::spawn_blocking(move || db.delete_session(&session)).await {
            Ok(Ok(_)) => {
                ctx.metrics.sessions_expired.inc();
                tracing::info!(%session, "expired session deleted")
            }
            _ => {
                tracing::warn!(%session, "expired session could not be deleted; retried next sweep")
            }
        }
        let _ = internal.send(Internal::ExpiryDone { session }).await;
    });
}

/// Redeems a join token for `node`: one transaction deletes the token and enrols the node.
pub(super) async fn redeem(
    ctx: &Arc<Ctx>,
    state: &mut State,
    node: NodeId,
    token: &str,
) -> Reply<protocols::wire::Joined> {
    let Some(raw) = hex_decode(token.trim()) else {
        return Reply::refused(Refusal::Malformed("join token must be hex".into()));
    };
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&raw).into();
    let db = ctx.db.clone();
    match tokio::task::spawn_blocking(move || db.redeem_join_token(&digest, &node, now_ms())).await
    {
        Ok(Ok(Some(e))) => {
            tracing::info!(node = %node.short(), region = %e.region, operator = %e.operator, "device joined with a token");
            let who = crate::admin::peer_text(&node);
            let entry = crate::db::AuditEntry::new(
                now_ms(),
                format!("peer {who}"),
                "join",
                who,
                format!(
                    "join token redeemed: region {}, operator {}",
                    e.region, e.operator
                ),
            );
            let db = ctx.db.clone();
            if !matches!(
                tokio::task::spawn_blocking(move || db.append_audit(entry)).await,
                Ok(Ok(_))
            ) {
                tracing::error!(node = %node.short(), "audit entry of a join not recorded");
            }
            state
                .peers
                .enrol(node, e.region.clone(), e.operator.clone());
            Reply::ok(protocols::wire::Joined {
                region: e.region,
                operator: e.operator,
            })
        }
        Ok(Ok(None)) => {
            tracing::info!(node = %node.short(), "unknown, used or expired join token refused");
            Reply::refused(Refusal::Unauthorized)
        }
        _ => Reply::refused(Refusal::Internal),
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}
