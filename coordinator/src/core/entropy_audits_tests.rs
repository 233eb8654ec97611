//! Entropy audits on virtual time: answers judged before any estimator runs, windows assessed,
//! audits lost and settled, each counted.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::core::test_state::{NOW, node, state};
use crate::intake::sources::SourceBook;
use crate::intake::sources::test_support::contribute;
use protocols::wire::Refusal;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const MAX: usize = 1 << 20;

fn window(source: &str, bits: u8, samples: Vec<u8>) -> AuditWindow {
    AuditWindow {
        v: WIRE_VERSION,
        source: source.into(),
        bits_per_sample: bits,
        samples,
    }
}

fn answer(w: AuditWindow) -> Vec<u8> {
    wire::encode(&Reply::ok(w))
}

fn uniform(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<u8>()).collect()
}

#[test]
fn a_request_names_the_source_and_the_samples_asked() {
    let request: AuditRequest = wire::decode(&request("cpu-jitter", 4096), MAX).unwrap();
    assert_eq!(
        (request.source.as_str(), request.samples),
        ("cpu-jitter", 4096)
    );
}

#[test]
fn a_window_of_another_source_width_or_size_is_refused_by_name_before_any_estimator_runs() {
    let ok = uniform(MIN_SAMPLES, 1);
    let check = |w: AuditWindow| check_reply(&answer(w), MAX, "s", 4096);
    assert!(check(window("s", 8, ok.clone())).is_ok());
    assert!(matches!(
        check(window("t", 8, ok.clone())),
        Err(AuditError::WrongWindow)
    ));
    for bits in [0, 9] {
        assert!(matches!(
            check(window("s", bits, ok.clone())),
            Err(AuditError::WrongWindow)
        ));
    }
    assert!(matches!(
        check(window("s", 8, vec![0; 4097])),
        Err(AuditError::TooManySamples {
            got: 4097,
            asked: 4096
        })
    ));
    assert!(matches!(
        check(window("s", 8, vec![0; MIN_SAMPLES - 1])),
        Err(AuditError::TooFewSamples { got, min: MIN_SAMPLES }) if got == MIN_SAMPLES - 1
    ));
}

#[test]
fn a_refusal_or_garbage_is_named_as_such() {
    let refused = wire::encode(&Reply::<AuditWindow>::refused(Refusal::NotFound));
    assert!(matches!(
        check_reply(&refused, MAX, "s", 4096),
        Err(AuditError::Refused(Refusal::NotFound))
    ));
    assert!(matches!(
        check_reply(&[0xff, 0x13], MAX, "s", 4096),
        Err(AuditError::Malformed(_))
    ));
}

#[test]
fn a_uniform_window_is_assessed_near_eight_bits_and_a_stuck_one_near_zero_stamped_when_done() {
    let good = assess_window(&window("s", 8, uniform(4096, 2)), || NOW).unwrap();
    assert!(good.h > 5.0, "{}", good.h);
    assert_eq!((good.samples, good.at_ms), (4096, NOW));
    assert_ne!(good.estimator, "none");
    let stuck = assess_window(&window("s", 8, vec![7; 4096]), || NOW + 1).unwrap();
    assert!(stuck.h < 0.5, "{}", stuck.h);
}

#[test]
fn an_audit_under_way_too_long_is_settled_as_lost_and_a_due_one_is_started_once() {
    let mut state = state(1, Vec::new());
    state.sources = SourceBook::new(true, 600_000);
    contribute(&mut state.sources, node(1), "s", 4.0, NOW);
    let mut rng = StdRng::seed_from_u64(3);
    let (due, counts) = state.entropy_audit_tick(NOW, &mut rng);
    assert_eq!(due, vec![(node(1), "s".to_string())]);
    assert!(counts.is_empty());
    let lost_ms = state.rules.entropy_audit_lost_ms;
    let (due, counts) = state.entropy_audit_tick(NOW + lost_ms, &mut rng);
    assert!(
        due.is_empty() && counts.is_empty(),
        "under way, not lost yet"
    );
    let (_, counts) = state.entropy_audit_tick(NOW + lost_ms + 1, &mut rng);
    assert!(
        counts.contains(&Count::EntropyAudit("failed")),
        "{counts:?}"
    );
    let entry = state.sources.get(&node(1), "s").unwrap();
    assert_eq!(entry.audits.1, 1, "one failure recorded");
}

#[test]
fn a_settled_audit_is_counted_and_caps_the_source() {
    let mut state = state(1, Vec::new());
    state.sources = SourceBook::new(true, 600_000);
    contribute(&mut state.sources, node(1), "s", 4.0, NOW);
    let mut rng = StdRng::seed_from_u64(4);
    let (due, _) = state.entropy_audit_tick(NOW, &mut rng);
    assert_eq!(due.len(), 1);
    let found = assess_window(&window("s", 8, uniform(4096, 5)), || NOW + 10).unwrap();
    let counts = state.settle_entropy_audit(node(1), "s", Ok(found), NOW + 10, &mut rng);
    assert!(
        counts.contains(&Count::EntropyAudit("assessed")),
        "{counts:?}"
    );
    assert_eq!(state.sources.get(&node(1), "s").unwrap().audits.0, 1);
}
