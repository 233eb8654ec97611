//! Tests of the per-source pipeline: models, alarms, cut-offs, conditioning and accounting.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::sources::simulated::{SimulatedKind, SimulatedSource};
use protocols::entropy::ConditioningKey;
use protocols::entropy::conditioning::{Accounting, OUTPUTS_PER_BLOCK, credit_for};

fn key() -> ConditioningKey {
    ConditioningKey::from_random([9; 32])
}

fn pipeline(kind: SimulatedKind) -> SourcePipeline {
    SourcePipeline::new(
        Box::new(SimulatedSource::new("sim", kind, [3; 32]).unwrap()),
        key(),
    )
    .unwrap()
}

#[test]
fn stuck_source_is_cut_off_after_persistent_alarms_not_the_first() {
    let mut p = pipeline(SimulatedKind::Stuck { value: 0 });
    assert!(matches!(
        p.next_block(0, 1_000_000).unwrap(),
        PipelineOutput::CutOff
    ));
    assert_eq!(p.alarms(), PERSISTENT_ALARMS as u64);
    assert_eq!(p.health_report().state, SourceState::CutOff);
}

#[test]
fn a_correlated_source_is_assessed_below_its_declaration_and_its_blocks_account_for_it() {
    let mut p = pipeline(SimulatedKind::Correlated {
        bits: 8,
        p_repeat: 0.5,
    });
    let model = p
        .assess(
            AssessPolicy {
                max_samples: 20_000,
                max_time: Duration::from_secs(60),
            },
            "abc",
            7,
        )
        .unwrap()
        .clone();
    assert_eq!(model.samples, 20_000);
    assert!(
        model.h_per_sample > 0.0 && model.h_per_sample < 8.0,
        "{model:?}"
    );
    assert!(!model.estimator.starts_with("declared"), "{model:?}");
    assert_eq!(model.binary_sha256, "abc");
    let PipelineOutput::Block(b) = p.next_block(0, 1_000_000).unwrap() else {
        panic!("no block")
    };
    assert_eq!(b.block.outputs() as usize, OUTPUTS_PER_BLOCK);
    assert_eq!(b.accounting.raw_samples, b.block.raw_samples());
    assert_eq!(b.accounting.estimator, model.estimator);
    // What the coordinator credits from this accounting when its audit agrees: full entropy
    // for every output, give or take the millibit rounding of H.
    let credit = credit_for(
        &Accounting {
            outputs: b.block.outputs(),
            raw_samples: b.accounting.raw_samples,
            h_per_sample: f64::from(b.accounting.h_millibits) / 1000.0,
        },
        8.0,
    );
    assert!((4 * 250..=1024).contains(&credit), "{credit}");
}

/// A sensor that is stuck for its first `stuck` samples, then healthy.
struct RecoveringSensor {
    stuck: usize,
    inner: SimulatedSource,
}

impl EntropySource for RecoveringSensor {
    fn name(&self) -> &str {
        "recovering"
    }
    fn spec(&self) -> protocols::entropy::SourceSpec {
        self.inner.spec()
    }
    fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
        let stuck = self.stuck.min(max);
        if stuck > 0 {
            out.extend(std::iter::repeat_n(0, stuck));
            self.stuck -= stuck;
            return Ok(());
        }
        self.inner.read_samples(out, max)
    }
}

#[test]
fn a_source_that_recovers_is_restarted_and_delivers_again() {
    let mut p = SourcePipeline::new(
        Box::new(RecoveringSensor {
            stuck: 1_000,
            inner: SimulatedSource::new("sim", SimulatedKind::Biased { p_one: 0.6 }, [4; 32])
                .unwrap(),
        }),
        key(),
    )
    .unwrap();
    assert!(matches!(
        p.next_block(0, 1_000_000).unwrap(),
        PipelineOutput::CutOff
    ));
    let failures_before = p.health_report().failures;
    assert!(p.restart().unwrap());
    assert_eq!(p.restarts(), 1);
    assert_eq!(p.health_report().state, SourceState::Startup);
    assert!(matches!(
        p.next_block(0, 1_000_000).unwrap(),
        PipelineOutput::Block(_)
    ));
    let report = p.health_report();
    assert_eq!(report.state, SourceState::Healthy);
    assert_eq!(
        report.failures, failures_before,
        "counters carry over a restart"
    );
}

#[test]
fn one_alarm_discards_its_window_and_the_source_goes_on() {
    // 60 stuck samples trip the repetition count test once (cutoff 41 at H = 1, alpha 2^-40: an
    // unassessed model has no rate, so the tightest alpha)
    // after start-up; the source then delivers.
    struct OneGlitch {
        inner: SimulatedSource,
        sent: usize,
    }
    impl EntropySource for OneGlitch {
        fn name(&self) -> &str {
            "glitch"
        }
        fn spec(&self) -> protocols::entropy::SourceSpec {
            self.inner.spec()
        }
        fn read_samples(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), SourceError> {
            for _ in 0..max {
                self.sent += 1;
                if (5000..5060).contains(&self.sent) {
                    out.push(1);
                } else {
                    self.inner.read_samples(out, 1)?;
                }
            }
            Ok(())
        }
    }
    let mut p = SourcePipeline::new(
        Box::new(OneGlitch {
            inner: SimulatedSource::new("sim", SimulatedKind::Biased { p_one: 0.5 }, [5; 32])
                .unwrap(),
            sent: 0,
        }),
        key(),
    )
    .unwrap();
    let mut blocks = 0;
    while blocks < 3 {
        match p.next_block(0, 100_000).unwrap() {
            PipelineOutput::Block(_) => blocks += 1,
            PipelineOutput::CutOff => panic!("one glitch must not cut the source off"),
            PipelineOutput::Pending => {}
        }
    }
    assert_eq!(p.alarms(), 1);
    assert_eq!(p.health_report().state, SourceState::Healthy);
}

#[test]
fn a_source_that_keeps_failing_is_cut_off_for_good_after_the_last_restart() {
    let mut p = pipeline(SimulatedKind::Stuck { value: 7 });
    for _ in 0..MAX_RESTARTS {
        assert!(matches!(
            p.next_block(0, 1_000_000).unwrap(),
            PipelineOutput::CutOff
        ));
        assert!(p.restart().unwrap());
    }
    assert!(matches!(
        p.next_block(0, 1_000_000).unwrap(),
        PipelineOutput::CutOff
    ));
    assert!(!p.restart().unwrap());
    assert_eq!(p.health_report().state, SourceState::CutOff);
}

#[test]
fn slow_source_reports_pending_when_the_budget_runs_out() {
    let mut p = pipeline(SimulatedKind::Biased { p_one: 0.5 });
    assert!(matches!(
        p.next_block(0, 100).unwrap(),
        PipelineOutput::Pending
    ));
}

#[test]
fn an_audit_window_is_masked_raw_samples_of_the_asked_size() {
    let mut p = pipeline(SimulatedKind::Correlated {
        bits: 4,
        p_repeat: 0.1,
    });
    let w = p.read_window(5000, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(w.len(), 5000);
    assert!(w.iter().all(|s| *s < 16));
}
