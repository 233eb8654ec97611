//! Metrics through `prometheus-client`, shared by every role: the registry a daemon serves with
//! its `entroshard_build_info` gauge, labelled counters, latency histograms and readiness. No
//! I/O here: `metrics_http` serves what this module builds.

pub mod exposition;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// A gauge of a count that is never negative.
pub type CountGauge = Gauge<u64, AtomicU64>;

/// The commit this binary was built from, when the build said (`ENTROSHARD_GIT_COMMIT`, set by
/// scripts/build-debs.sh); `None` for a plain `cargo build`.
pub const GIT_COMMIT: Option<&str> = option_env!("ENTROSHARD_GIT_COMMIT");

/// Upper bounds (seconds) for requests answered from memory or one database read: a holder's
/// share fetch, a ticket.
pub const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Upper bounds (seconds) for work that waits on several devices: session creation, rotation.
pub const ROUND_TRIP_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A registry holding `entroshard_build_info{version,git,role} 1`; the role registers the rest.
pub fn registry(role: &'static str) -> Registry {
    let mut registry = Registry::default();
    let mut labels = vec![
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        ("role", role.to_string()),
    ];
    if let Some(git) = GIT_COMMIT.filter(|g| !g.is_empty()) {
        labels.push(("git", git.to_string()));
    }
    let info = Family::<Vec<(&'static str, String)>, CountGauge>::default();
    info.get_or_create(&labels).set(1);
    registry.register(
        "entroshard_build_info",
        "Always 1; the labels name the build: version, git commit (when known) and role",
        info,
    );
    registry
}

/// A histogram over `buckets` (seconds).
pub fn histogram(buckets: &[f64]) -> Histogram {
    Histogram::new(buckets.iter().copied())
}

/// Seconds since `start`, as a histogram observes them.
pub fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// A metric whose HELP and TYPE are served even while it holds no sample (a labelled family
/// before its first label value): the exposition then names every series the daemon can serve,
/// as a dashboard or an alert rule expects.
#[derive(Debug, Clone)]
pub struct Declared<M>(pub M);

impl<M: EncodeMetric> EncodeMetric for Declared<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// A counter with one label (`reason`, `cause`, `peer`, …). Label values come from code or from
/// bounded sets such as enrolled peers, never from remote input.
#[derive(Debug, Clone)]
pub struct LabelledCounter {
    label: &'static str,
    family: Family<[(&'static str, String); 1], Counter>,
}

impl LabelledCounter {
    /// A counter family whose one label is named `label`.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            family: Family::default(),
        }
    }

    /// A counter family whose one label is named `label`, serving 0 for each of `known` from
    /// the start: a rule on `increase()` then sees the first event too.
    pub fn with_values(label: &'static str, known: &[&str]) -> Self {
        let counter = Self::new(label);
        for value in known {
            counter.add(value, 0);
        }
        counter
    }

    /// Adds `by` to the counter labelled `value`.
    pub fn add(&self, value: &str, by: u64) {
        self.family
            .get_or_create(&[(self.label, value.to_string())])
            .inc_by(by);
    }

    /// Adds one to the counter labelled `value`.
    pub fn inc(&self, value: &str) {
        self.add(value, 1);
    }

    /// The counter labelled `value` (0 when never counted).
    pub fn get(&self, value: &str) -> u64 {
        self.family
            .get(&[(self.label, value.to_string())])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Registers the family as `name` (`_total` is added to each sample); declared even while
    /// it has no sample.
    pub fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, Declared(self.family.clone()));
    }
}

/// Whether a daemon can do its work now, and if not why: set by the loop that knows, read by
/// `GET /ready`.
#[derive(Debug)]
pub struct Readiness {
    state: Mutex<Result<(), String>>,
}

impl Readiness {
    /// Not ready yet, for `reason`.
    pub fn not_yet(reason: impl Into<String>) -> Self {
        Self {
            state: Mutex::new(Err(reason.into())),
        }
    }

    /// Records the latest verdict (a refusal as the text `/ready` serves).
    pub fn set<E: std::fmt::Display>(&self, verdict: Result<(), E>) {
        if let Ok(mut s) = self.state.lock() {
            *s = verdict.map_err(|reason| reason.to_string());
        }
    }

    /// The latest verdict.
    pub fn get(&self) -> Result<(), String> {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| Err("readiness unknown (a writer panicked)".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use exposition::{Format, encode};

    #[test]
    fn the_build_info_gauge_names_version_and_role_and_is_one() {
        let text = encode(&registry("peer"), Format::Text);
        let line = text
            .lines()
            .find(|l| l.starts_with("entroshard_build_info{"))
            .unwrap();
        assert!(line.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(line.contains("role=\"peer\""));
        assert!(line.ends_with("} 1"), "{line}");
        assert!(text.contains("# TYPE entroshard_build_info gauge\n"));
    }

    #[test]
    fn a_labelled_counter_counts_each_value_apart() {
        let c = LabelledCounter::new("reason");
        c.inc("stale");
        c.add("stale", 2);
        c.inc("odd\"value");
        assert_eq!(c.get("stale"), 3);
        assert_eq!(c.get("never"), 0);
        let mut r = registry("coordinator");
        c.register(&mut r, "entroshard_test_refusals", "Refusals by reason");
        let text = encode(&r, Format::Text);
        assert!(text.contains("entroshard_test_refusals_total{reason=\"stale\"} 3\n"));
        assert!(text.contains("entroshard_test_refusals_total{reason=\"odd\\\"value\"} 1\n"));
    }

    #[test]
    fn a_labelled_family_is_declared_before_its_first_value_and_known_values_start_at_zero() {
        let mut r = registry("coordinator");
        LabelledCounter::new("reason").register(&mut r, "entroshard_test_empty", "Nothing yet");
        LabelledCounter::with_values("cause", &["period"]).register(
            &mut r,
            "entroshard_test_known",
            "Known causes",
        );
        let text = encode(&r, Format::Text);
        assert!(text.contains("# HELP entroshard_test_empty_total Nothing yet.\n"));
        assert!(text.contains("# TYPE entroshard_test_empty_total counter\n"));
        assert!(!text.contains("entroshard_test_empty_total{"));
        assert!(text.contains("entroshard_test_known_total{cause=\"period\"} 0\n"));
    }

    #[test]
    fn readiness_keeps_the_last_verdict_and_its_reason() {
        let r = Readiness::not_yet("starting");
        assert_eq!(r.get(), Err("starting".into()));
        r.set(Ok::<(), String>(()));
        assert_eq!(r.get(), Ok(()));
        r.set(Err("pool empty"));
        assert_eq!(r.get(), Err("pool empty".into()));
    }
}
