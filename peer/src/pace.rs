//! Pacing of the samples a source feeds through its health tests (at most
//! [`MAX_TESTED_RATE`] a second), so the false-alarm rate fitted to that rate holds.

use crate::pipeline::MAX_TESTED_RATE;
use std::time::{Duration, Instant};

/// Paces the samples fed through the health tests to [`MAX_TESTED_RATE`] (a token bucket
/// holding one second's worth).
#[derive(Debug)]
pub struct Pace {
    since: Instant,
    fed: f64,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            fed: 0.0,
        }
    }
}

impl Pace {
    /// Sleeps until `n` more samples fit under the rate.
    pub fn wait_for(&mut self, n: u64) {
        let elapsed = self.since.elapsed().as_secs_f64();
        // Credit unused for over a second is forgotten (no burst after a long pause).
        if self.fed < (elapsed - 1.0) * MAX_TESTED_RATE {
            self.fed = (elapsed - 1.0) * MAX_TESTED_RATE;
        }
        self.fed += n as f64;
        let ahead = self.fed / MAX_TESTED_RATE - elapsed;
        if ahead > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(ahead));
        }
    }
}
