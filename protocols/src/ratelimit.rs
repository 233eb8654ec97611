//! Token-bucket rate limits per remote, bounded in memory; time is a parameter.

use std::collections::HashMap;
use std::hash::Hash;

/// One token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

/// Rate limits keyed by remote: `rate` per second with bursts up to `burst`.
/// Holds at most `max_keys` remotes; when full, the least recently seen is forgotten.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate_per_ms: f64,
    burst: f64,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// `rate` requests per second, bursts of `burst`, at most `max_keys` remotes tracked.
    pub fn new(rate_per_s: f64, burst: f64, max_keys: usize) -> Self {
        let rate = if rate_per_s.is_finite() && rate_per_s > 0.0 {
            rate_per_s
        } else {
            1.0
        };
        let burst = if burst.is_finite() && burst >= 1.0 {
            burst
        } else {
            1.0
        };
        Self {
            rate_per_ms: rate / 1000.0,
            burst,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now_ms`; false when the remote is over its rate.
    pub fn allow(&mut self, key: &K, now_ms: u64) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.evict_oldest();
        }
        let burst = self.burst;
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(bucket.last_ms) as f64;
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_ms).min(burst);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Remotes currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self
            .buckets
            .iter()
            .min_by_key(|(_, b)| b.last_ms)
            .map(|(k, _)| k.clone())
        {
            self.buckets.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn burst_is_allowed_then_the_rate_applies() {
        let mut rl = RateLimiter::new(10.0, 3.0, 16);
        assert!(rl.allow(&1u8, 0));
        assert!(rl.allow(&1u8, 0));
        assert!(rl.allow(&1u8, 0));
        assert!(!rl.allow(&1u8, 0));
        assert!(!rl.allow(&1u8, 99));
        assert!(rl.allow(&1u8, 100));
        assert!(rl.allow(&2u8, 100), "another remote has its own bucket");
    }

    #[test]
    fn memory_is_bounded_by_max_keys() {
        let mut rl = RateLimiter::new(1.0, 1.0, 100);
        for i in 0..10_000u32 {
            rl.allow(&i, u64::from(i));
        }
        assert_eq!(rl.tracked(), 100);
    }

    proptest! {
        #[test]
        fn never_more_than_burst_plus_rate_times_elapsed(times in proptest::collection::vec(0u64..10_000, 1..300)) {
            let mut times = times;
            times.sort_unstable();
            let mut rl = RateLimiter::new(5.0, 4.0, 4);
            let allowed = times.iter().filter(|&&t| rl.allow(&0u8, t)).count() as f64;
            let span = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
            prop_assert!(allowed <= 4.0 + 5.0 * span + 1e-9);
        }
    }
}
