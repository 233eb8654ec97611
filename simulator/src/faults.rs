//! The fault timeline: churn as Poisson processes drawn from the seed, partitions and outages
//! from the scenario, and the events they schedule (a device coming back), in time order.

use crate::scenario::Scenario;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something that happens to the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A random running device leaves.
    Leave,
    /// Device `index` comes back after leaving.
    Return {
        /// The device.
        index: usize,
    },
    /// A new device is enrolled and started.
    Join,
    /// Devices of `regions` are cut off.
    PartitionStart {
        /// Regions.
        regions: Vec<String>,
    },
    /// The partition of `regions` heals.
    PartitionEnd {
        /// Regions.
        regions: Vec<String>,
    },
    /// Region goes down.
    OutageStart {
        /// Region.
        region: String,
    },
    /// Region comes back.
    OutageEnd {
        /// Region.
        region: String,
    },
}

#[derive(Debug, Clone)]
struct Timed {
    at_s: f64,
    order: u64,
    event: Event,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    // Earliest first in a max-heap; ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at_s
            .total_cmp(&self.at_s)
            .then(other.order.cmp(&self.order))
    }
}

/// Pending events, earliest first.
#[derive(Default)]
pub struct Timeline {
    heap: BinaryHeap<Timed>,
    next_order: u64,
}

impl Timeline {
    /// The scenario's events over `duration_s`: churn leaves and joins as Poisson processes,
    /// partitions and outages as written.
    pub fn from_scenario(s: &Scenario, peers: usize) -> Self {
        let mut t = Self::default();
        let mut rng = StdRng::seed_from_u64(s.seed ^ 0x6368_7572_6e00);
        // Leaves: rate = leave_per_min × fleet size per minute (drawn against the initial size;
        // the event picks among the devices running at that moment).
        let leave_rate = s.churn.leave_per_min * peers as f64 / 60.0;
        let join_rate = s.churn.join_per_min * peers as f64 / 60.0;
        for (rate, event) in [(leave_rate, Event::Leave), (join_rate, Event::Join)] {
            if rate <= 0.0 {
                continue;
            }
            let mut at = 0.0;
            loop {
                at += -(1.0 - rng.random::<f64>()).ln() / rate;
                if at >= s.duration_s {
                    break;
                }
                t.push(at, event.clone());
            }
        }
        for p in &s.partitions {
            t.push(
                p.at_s,
                Event::PartitionStart {
                    regions: p.regions.clone(),
                },
            );
            t.push(
                p.at_s + p.duration_s,
                Event::PartitionEnd {
                    regions: p.regions.clone(),
                },
            );
        }
        for o in &s.outages {
            t.push(
                o.at_s,
                Event::OutageStart {
                    region: o.region.clone(),
                },
            );
            t.push(
                o.at_s + o.duration_s,
                Event::OutageEnd {
                    region: o.region.clone(),
                },
            );
        }
        t
    }

    /// Schedules `event` at `at_s`.
    pub fn push(&mut self, at_s: f64, event: Event) {
        self.next_order += 1;
        self.heap.push(Timed {
            at_s,
            order: self.next_order,
            event,
        });
    }

    /// When the next event is due.
    pub fn next_at(&self) -> Option<f64> {
        self.heap.peek().map(|t| t.at_s)
    }

    /// Takes the next event if it is due at `now_s`.
    pub fn pop_due(&mut self, now_s: f64) -> Option<(f64, Event)> {
        if self.next_at()? <= now_s {
            self.heap.pop().map(|t| (t.at_s, t.event))
        } else {
            None
        }
    }
}

/// An exponential draw with mean `mean_s`.
pub fn exponential(u: f64, mean_s: f64) -> f64 {
    -(1.0 - u).ln() * mean_s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_time_order_with_ties_in_insertion_order() {
        let mut t = Timeline::default();
        t.push(5.0, Event::Join);
        t.push(1.0, Event::Leave);
        t.push(5.0, Event::Return { index: 3 });
        assert_eq!(t.pop_due(0.5), None);
        assert_eq!(t.pop_due(10.0).unwrap().1, Event::Leave);
        assert_eq!(t.pop_due(10.0).unwrap().1, Event::Join);
        assert_eq!(t.pop_due(10.0).unwrap().1, Event::Return { index: 3 });
        assert_eq!(t.pop_due(10.0), None);
    }

    #[test]
    fn the_same_seed_gives_the_same_churn() {
        let mut s = Scenario::default();
        s.churn.leave_per_min = 0.1;
        s.churn.offline_mean_s = 10.0;
        let drain = |mut t: Timeline| {
            let mut v = Vec::new();
            while let Some(e) = t.pop_due(f64::MAX) {
                v.push(e.0);
            }
            v
        };
        let a = drain(Timeline::from_scenario(&s, 100));
        let b = drain(Timeline::from_scenario(&s, 100));
        assert!(!a.is_empty());
        assert_eq!(a, b);
        // 0.1 × 100 devices per minute over 60 s: about 10 leaves.
        assert!((3..=25).contains(&a.len()), "{}", a.len());
    }
}
