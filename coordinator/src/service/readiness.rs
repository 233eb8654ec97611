//! Whether the coordinator could create a session now, for `GET /ready` and
//! `entroshard_pool_ready`, decided by the core (`core::sessions::readiness`) at each upkeep
//! tick and published here.

use super::{Ctx, State, sessions};

/// Recomputes the verdict from the loop's state and publishes it to `/ready` and the gauges.
pub(super) fn refresh(ctx: &Ctx, state: &State, now_ms: u64) {
    let (eligible, verdict) = sessions::readiness(ctx, state, now_ms);
    ctx.metrics.pool_ready.set(u64::from(verdict.is_ok()));
    ctx.metrics.holders_eligible.set(eligible as u64);
    ctx.readiness.set(verdict);
}
