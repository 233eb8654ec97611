//! Latency summaries (nearest-rank percentiles), ratios and the bench's global deadline.

use anyhow::bail;
use serde::Serialize;
use std::time::{Duration, Instant};

/// p50 and p99 of a set of round trips, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct LatencySummary {
    /// How many samples were taken.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl LatencySummary {
    /// Summarises `samples`; `None` when there are none.
    pub(crate) fn of(samples: &[Duration]) -> Option<Self> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Some(Self {
            samples: ms.len(),
            p50_ms: nearest_rank(&ms, 0.50)?,
            p99_ms: nearest_rank(&ms, 0.99)?,
        })
    }
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[f64], quantile: f64) -> Option<f64> {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// The median of some durations, in milliseconds.
pub(crate) fn median_ms(samples: &[Duration]) -> Option<f64> {
    LatencySummary::of(samples).map(|s| s.p50_ms)
}

/// A fetch figure next to the bare figure it is compared with.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ComparedLatency {
    /// The fetch latencies.
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// Fetch p50 ÷ bare p50.
    pub p50_ratio_to_bare: f64,
    /// Fetch p99 ÷ bare p99.
    pub p99_ratio_to_bare: f64,
}

/// `a ÷ b`, infinite when `b` is not positive.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

impl ComparedLatency {
    /// Puts `latency` next to `bare`.
    pub(crate) fn against(latency: LatencySummary, bare: &LatencySummary) -> Self {
        Self {
            latency,
            p50_ratio_to_bare: ratio(latency.p50_ms, bare.p50_ms),
            p99_ratio_to_bare: ratio(latency.p99_ms, bare.p99_ms),
        }
    }
}

/// The longest one sample (a round trip, a fetch with its dials) may take before the bench
/// gives up: several request timeouts of a peer (10 s each).
pub(crate) const SAMPLE_BOUND: Duration = Duration::from_secs(60);

/// A sample this slow is noted as it happens.
const SLOW_SAMPLE: Duration = Duration::from_secs(1);

/// The one deadline every waiting loop and sample loop of the bench checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    end: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub(crate) fn after(budget: Duration) -> Self {
        Self {
            end: Instant::now() + budget,
            budget,
        }
    }

    /// Fails, naming `what` was under way, once the deadline has passed.
    pub(crate) fn check(&self, what: &str) -> anyhow::Result<()> {
        if Instant::now() >= self.end {
            bail!(
                "global deadline of {} s passed while {what}",
                self.budget.as_secs()
            );
        }
        Ok(())
    }

    /// Takes one timed sample: `step` bounded by [`SAMPLE_BOUND`] and the deadline. A sample
    /// slower than [`SLOW_SAMPLE`] is noted on stderr with its number, so a bench that slows
    /// down shows where.
    pub(crate) async fn sample(
        &self,
        what: &str,
        number: usize,
        step: impl Future<Output = anyhow::Result<Duration>>,
    ) -> anyhow::Result<Duration> {
        let took = self.bound(what, SAMPLE_BOUND, step).await?;
        if took >= SLOW_SAMPLE {
            super::progress::note(&format!(
                "{what}: sample {number} took {:.2} s",
                took.as_secs_f64()
            ));
        }
        Ok(took)
    }

    /// Runs `step`, failing (naming `what`) if it has not ended by the deadline or within
    /// `at_most`, whichever comes first: a request that never answers ends the bench with an
    /// error instead of holding it.
    pub(crate) async fn bound<T>(
        &self,
        what: &str,
        at_most: Duration,
        step: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        self.check(what)?;
        let left = self
            .end
            .saturating_duration_since(Instant::now())
            .min(at_most);
        match tokio::time::timeout(left, step).await {
            Ok(done) => done,
            Err(_) => bail!("no answer within {:.0} s while {what}", left.as_secs_f64()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_hundred() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = LatencySummary::of(&samples).unwrap();
        assert_eq!((s.samples, s.p50_ms, s.p99_ms), (100, 50.0, 99.0));
        assert!(LatencySummary::of(&[]).is_none());
        let one = LatencySummary::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }

    #[test]
    fn ratios_divide_by_the_bare_figures() {
        let bare = LatencySummary {
            samples: 1,
            p50_ms: 2.0,
            p99_ms: 4.0,
        };
        let fetch = LatencySummary {
            samples: 1,
            p50_ms: 3.0,
            p99_ms: 4.0,
        };
        let c = ComparedLatency::against(fetch, &bare);
        assert_eq!((c.p50_ratio_to_bare, c.p99_ratio_to_bare), (1.5, 1.0));
    }
}
