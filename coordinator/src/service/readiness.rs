//! Whether the coordinator could create a session now, for `GET /ready` and
//! `entroshard_pool_ready`: the pool holds enough credited entropy from enough peers, and enough
//! peers are eligible to hold shares. Refreshed by the loop at each upkeep tick.

use super::{Ctx, State, sessions};
use protocols::sharing::MIN_THRESHOLD;

/// Recomputes the verdict from the loop's state and publishes it to `/ready` and the gauges.
pub(super) fn refresh(ctx: &Ctx, state: &State, now_ms: u64) {
    let pool = if state
        .intake
        .ready(ctx.config.min_credited_bits, ctx.config.min_contributors)
    {
        Ok(())
    } else {
        Err(sessions::shortfall(ctx, state).to_string())
    };
    let eligible = sessions::eligible_holders(ctx, state, now_ms);
    let verdict = judge(pool, eligible);
    ctx.metrics.pool_ready.set(u64::from(verdict.is_ok()));
    ctx.metrics.holders_eligible.set(eligible as u64);
    ctx.readiness.set(verdict);
}

/// Ready when the pool is (`pool` carries its shortfall otherwise) and at least the smallest
/// quorum a session may ask for ([`MIN_THRESHOLD`] holders) is eligible; every reason otherwise.
pub(super) fn judge(pool: Result<(), String>, eligible_holders: usize) -> Result<(), String> {
    let mut reasons = Vec::new();
    if let Err(shortfall) = pool {
        reasons.push(shortfall);
    }
    let needed = usize::from(MIN_THRESHOLD);
    if eligible_holders < needed {
        reasons.push(format!(
            "{eligible_holders} peers eligible to hold shares, a session needs at least {needed}"
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn ready_needs_a_full_pool_and_the_smallest_quorum() {
        assert_eq!(judge(Ok(()), 2), Ok(()));
        assert_eq!(
            judge(Ok(()), 1),
            Err("1 peers eligible to hold shares, a session needs at least 2".into())
        );
        assert_eq!(
            judge(Err("pool holds 0 of 1024 credited bits".into()), 0),
            Err(
                "pool holds 0 of 1024 credited bits; 0 peers eligible to hold shares, a \
                 session needs at least 2"
                    .into()
            )
        );
    }
}
