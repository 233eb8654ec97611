//! Per-source series read at each scrape from the latest tables: samples and health-test
//! failures from the harvest, credited bits and refusals from the coordinator's feedback.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use protocols::attestation::SourceFeedback;
use protocols::attestation::feedback::DEVICE_WIDE;
use std::sync::Mutex;

/// The latest per-source tables, replaced whole by the agent.
#[derive(Debug, Default)]
pub(super) struct SourceSeries {
    /// (source, samples, health-test failures).
    health: Mutex<Vec<(String, u64, u64)>>,
    /// The coordinator's last word on each source (from its attestation challenge).
    feedback: Mutex<Vec<SourceFeedback>>,
}

impl SourceSeries {
    pub(super) fn set_health(&self, lines: Vec<(String, u64, u64)>) {
        if let Ok(mut h) = self.health.lock() {
            *h = lines;
        }
    }

    pub(super) fn replace_feedback(&self, feedback: Vec<SourceFeedback>) -> Vec<SourceFeedback> {
        self.feedback
            .lock()
            .map(|mut f| std::mem::replace(&mut *f, feedback))
            .unwrap_or_default()
    }

    pub(super) fn feedback(&self) -> Vec<SourceFeedback> {
        self.feedback.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl Collector for SourceSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let health = self.health.lock().map(|h| h.clone()).unwrap_or_default();
        let mut samples = encoder.encode_descriptor(
            "entroshard_source_samples",
            "Raw samples each entropy source delivered since start.",
            None,
            MetricType::Counter,
        )?;
        for (source, n, _) in &health {
            ConstCounter::new(*n).encode(samples.encode_family(&[("source", source.as_str())])?)?;
        }
        let mut failures = encoder.encode_descriptor(
            "entroshard_source_health_failures",
            "Continuous health-test failures of each entropy source since start.",
            None,
            MetricType::Counter,
        )?;
        for (source, _, n) in &health {
            ConstCounter::new(*n)
                .encode(failures.encode_family(&[("source", source.as_str())])?)?;
        }
        let feedback = self.feedback();
        let mut credited = encoder.encode_descriptor(
            "entroshard_source_credited_entropy",
            "Min-entropy the coordinator credited to each source, in bits, from its last feedback.",
            None,
            MetricType::Gauge,
        )?;
        for f in feedback.iter().filter(|f| f.source != DEVICE_WIDE) {
            ConstGauge::new(f.credited_bits)
                .encode(credited.encode_family(&[("source", f.source.as_str())])?)?;
        }
        let mut refused = encoder.encode_descriptor(
            "entroshard_contributions_refused",
            "Contributions the coordinator refused, by source (* when not tied to one) and \
             reason, from its last feedback.",
            None,
            MetricType::Counter,
        )?;
        for f in &feedback {
            for (reason, n) in &f.refusals {
                let labels = [("source", f.source.as_str()), ("reason", reason.as_str())];
                ConstCounter::new(*n).encode(refused.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
