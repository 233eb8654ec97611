//! Session upkeep carried out: each tick the core decides (`core::upkeep`) over the sessions and
//! owed deletions read here — expiries, rotations, holder audits, deliveries — is started in
//! tasks, with the gauges and `/ready` refreshed; and one-time join tokens redeemed.

use super::{Ctx, Internal, State, now_ms, rotation};
use crate::core::upkeep::{Expiry, Settlement};
use protocols::ids::NodeId;
use protocols::wire::{Refusal, Reply};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One upkeep tick: the gauges and `/ready` refreshed, then what the core plans started.
pub(super) async fn rotate_due(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
) {
    let Ok(Ok(sessions)) = ctx.on_db(move |db| db.sessions()).await else {
        return;
    };
    let now = now_ms();
    let round_trips = ctx.node.round_trips();
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let m = &ctx.metrics;
    m.set_gauges(state.gauges(&sessions, now));
    let (eligible, verdict) = state.readiness(now, &round_trips, &mut rng);
    m.pool_ready.set(u64::from(verdict.is_ok()));
    m.holders_eligible.set(eligible as u64);
    ctx.readiness.set(verdict);
    let Ok(Ok(owed)) = ctx.on_db(move |db| db.owed_deletions()).await else {
        return;
    };
    let tick = state.plan_tick(&sessions, owed, now, &round_trips, &mut rng);
    for expiry in tick.expiries {
        expire(ctx, internal, expiry);
    }
    for start in tick.rotations {
        rotation::spawn(ctx, internal, start);
    }
    for audit in tick.audits {
        super::audit::spawn(ctx, internal, audit);
    }
    if let Some(settlement) = tick.settlement {
        settle_owed(ctx, internal, settlement);
    }
    super::master_keys::erase_retired(ctx).await;
}

/// Delivers owed deletions (rolled-back, aborted or superseded epochs) of sessions the core
/// locked until the deliveries return.
fn settle_owed(ctx: &Arc<Ctx>, internal: &mpsc::Sender<Internal>, settlement: Settlement) {
    let Settlement {
        sessions,
        owed,
        addrs,
    } = settlement;
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        let faults = super::placing::deliver_owed(&ctx, &owed, &addrs).await;
        let _ = internal.send(Internal::Settled { sessions, faults }).await;
    });
}

/// Deletes an expired session everywhere: its holders first (best effort), then the record.
fn expire(ctx: &Arc<Ctx>, internal: &mpsc::Sender<Internal>, expiry: Expiry) {
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        // Best effort (holders also drop expired shares themselves): nothing is owed for an
        // expired session, so settling what is acknowledged removes nothing.
        let _ = super::placing::deliver_owed(&ctx, &expiry.deletions, &expiry.addrs).await;
        let session = expiry.record.session;
        match ctx.on_db(move |db| db.delete_session(&session)).await {
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
    let digest = match crate::core::admission::join_token_digest(token) {
        Ok(d) => d,
        Err(r) => return Reply::refused(r),
    };
    match ctx
        .on_db(move |db| db.redeem_join_token(&digest, &node, now_ms()))
        .await
    {
        Ok(Ok(Some(e))) => {
            tracing::info!(node = %node.short(), region = %e.region, operator = %e.operator, "device joined with a token");
            let entry = crate::core::audit_trail::joined(&node, &e, now_ms());
            if !matches!(ctx.on_db(move |db| db.append_audit(entry)).await, Ok(Ok(_))) {
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
