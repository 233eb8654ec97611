//! Whether the coordinator could create a session now, for `GET /ready` and
//! `entroshard_pool_ready`: the pool holds enough credited entropy from enough peers, and the
//! smallest session (2 of 3 holders) could be placed. Refreshed by the loop at each upkeep tick.

use super::{Ctx, State, sessions};
use protocols::sharing::MIN_THRESHOLD;

/// The smallest session a requester may ask for: k = [`MIN_THRESHOLD`] of n = k + 1 holders
/// (n = k leaves no room in any region under the quorum caps).
const SMALLEST: (usize, usize) = (MIN_THRESHOLD as usize + 1, MIN_THRESHOLD as usize);

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
    let (n, k) = SMALLEST;
    let (eligible, quorum) = sessions::quorum_outlook(ctx, state, n, k, now_ms);
    let quorum =
        quorum.map_err(|e| format!("no {k}-of-{n} quorum among {eligible} eligible peers: {e}"));
    let verdict = judge(pool, quorum);
    ctx.metrics.pool_ready.set(u64::from(verdict.is_ok()));
    ctx.metrics.holders_eligible.set(eligible as u64);
    ctx.readiness.set(verdict);
}

/// Ready when the pool is and a quorum is (each carries its reason otherwise); every reason
/// otherwise, in one line.
pub(super) fn judge(pool: Result<(), String>, quorum: Result<(), String>) -> Result<(), String> {
    match (pool, quorum) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(p), Err(q)) => Err(format!("{p}; {q}")),
    }
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn ready_needs_a_full_pool_and_a_quorum_and_names_what_is_missing() {
        let (pool, quorum) = ("pool holds 0 of 1024 credited bits", "no 2-of-3 quorum");
        assert_eq!(judge(Ok(()), Ok(())), Ok(()));
        assert_eq!(judge(Ok(()), Err(quorum.into())), Err(quorum.into()));
        assert_eq!(judge(Err(pool.into()), Ok(())), Err(pool.into()));
        assert_eq!(
            judge(Err(pool.into()), Err(quorum.into())),
            Err(format!("{pool}; {quorum}"))
        );
    }
}
