//! Tests of the source book: first audit, caps, overclaims, failures, re-audits.
#![allow(clippy::unwrap_used)]

use super::*;

fn node(b: u8) -> NodeId {
    NodeId([b; 32])
}

use super::test_support::{found, waiting};

fn accounting(h: f64) -> f64 {
    h
}

fn w(source_index: u32, h: f64) -> Waiting {
    waiting(source_index, h)
}

#[test]
fn a_new_source_waits_for_its_first_audit_which_is_asked_once() {
    let mut book = SourceBook::new(true, 600_000);
    let d = book.on_contribution(node(1), "jitter", w(0, accounting(2.0)), "Lag", 10);
    assert_eq!(d, Decision::Waiting(true));
    assert_eq!(book.audits_due(15), vec![(node(1), "jitter".to_string())]);
    let d = book.on_contribution(node(1), "jitter", w(0, accounting(2.0)), "Lag", 20);
    assert_eq!(d, Decision::Waiting(false));
    assert!(book.audits_due(25).is_empty(), "one audit at a time");
    let settled = book.on_audit(node(1), "jitter", found(1.8, 100_000, 30), 0.5, 30);
    assert_eq!(settled.waiting.len(), 2);
    assert_eq!(settled.cap, Some(1.8));
    assert!(!settled.quarantined);
    assert_eq!(
        book.on_contribution(node(1), "jitter", w(0, accounting(2.0)), "Lag", 40),
        Decision::Credit(1.8)
    );
}

#[test]
fn an_overclaim_on_a_full_window_quarantines_that_source_only() {
    let mut book = SourceBook::new(true, 600_000);
    book.on_contribution(node(1), "prng", w(0, accounting(8.0)), "declared", 0);
    book.on_contribution(node(1), "jitter", w(1, accounting(2.0)), "Lag", 0);
    let settled = book.on_audit(node(1), "prng", found(0.1, 100_000, 5), 0.5, 5);
    assert!(settled.quarantined);
    assert_eq!(settled.cap, None);
    assert_eq!(
        book.on_contribution(node(1), "prng", w(0, accounting(8.0)), "declared", 6),
        Decision::Refuse("source_quarantined")
    );
    // The other source of the same device is judged on its own.
    let other = book.on_audit(node(1), "jitter", found(1.9, 100_000, 7), 0.5, 7);
    assert_eq!(other.cap, Some(1.9));
}

#[test]
fn a_short_window_caps_but_never_accuses() {
    let mut book = SourceBook::new(true, 600_000);
    book.on_contribution(node(2), "thermal", w(0, accounting(3.0)), "MCV", 0);
    let settled = book.on_audit(node(2), "thermal", found(0.2, 1500, 5), 0.5, 5);
    assert!(!settled.quarantined);
    assert_eq!(settled.cap, Some(0.2));
}

#[test]
fn a_failed_audit_credits_nothing_until_a_later_one_succeeds() {
    let mut book = SourceBook::new(true, 600_000);
    book.on_contribution(node(3), "s", w(0, accounting(1.0)), "MCV", 0);
    book.audits_due(1);
    let settled = book.on_audit(node(3), "s", Err::<AuditResult, _>("no answer"), 0.5, 5);
    assert_eq!((settled.waiting.len(), settled.cap), (1, None));
    assert_eq!(
        book.on_contribution(node(3), "s", w(0, accounting(1.0)), "MCV", 6),
        Decision::Refuse("audit_failed")
    );
    // Asked again after the retry wait.
    assert!(book.audits_due(10).is_empty());
    assert_eq!(book.audits_due(40_000), vec![(node(3), "s".to_string())]);
    book.on_audit(node(3), "s", found(1.0, 100_000, 40_001), 0.5, 40_001);
    assert_eq!(
        book.on_contribution(node(3), "s", w(0, accounting(1.0)), "MCV", 40_002),
        Decision::Credit(1.0)
    );
}

#[test]
fn audits_recur_at_random_times_and_an_old_audit_stops_counting() {
    let mut book = SourceBook::new(true, 10_000);
    book.on_contribution(node(4), "s", w(0, accounting(1.0)), "MCV", 0);
    book.on_audit(node(4), "s", found(1.0, 100_000, 0), 0.9, 0);
    // u = 0.9: next audit after -ln(0.1) × 10 s ≈ 23 s.
    assert!(book.audits_due(20_000).is_empty());
    assert_eq!(book.audits_due(24_000).len(), 1);
    // Past 3 means without a new result the cap no longer counts: blocks wait again.
    book.on_audit(node(4), "s", Err::<AuditResult, _>("busy"), 0.5, 24_500);
    book.audits_due(60_000);
    assert_eq!(
        book.on_contribution(node(4), "s", w(0, accounting(1.0)), "MCV", 61_000),
        Decision::Waiting(false)
    );
}

#[test]
fn without_audits_every_source_is_credited_from_its_accounting() {
    let mut book = SourceBook::new(false, 10_000);
    assert_eq!(
        book.on_contribution(node(5), "s", w(0, accounting(1.0)), "MCV", 0),
        Decision::Credit(f64::INFINITY)
    );
    assert!(book.audits_due(1_000_000).is_empty());
}

#[test]
fn audits_under_way_are_counted_until_they_answer() {
    let mut book = SourceBook::new(true, 600_000);
    book.on_contribution(node(1), "a", w(0, accounting(2.0)), "MCV", 0);
    book.on_contribution(node(2), "b", w(0, accounting(2.0)), "MCV", 0);
    assert_eq!(book.audits_pending(), 0, "asked for at the next tick");
    assert_eq!(book.audits_due(1).len(), 2);
    assert_eq!(book.audits_pending(), 2);
    assert_eq!(book.get(&node(1), "a").unwrap().waiting(), 1);
    book.on_audit(node(1), "a", found(1.5, 100_000, 2), 0.5, 2);
    assert_eq!(book.audits_pending(), 1);
    assert_eq!(book.get(&node(1), "a").unwrap().waiting(), 0);
    assert_eq!(book.get(&node(1), "a").unwrap().standing.label(), "audited");
    assert_eq!(
        book.get(&node(2), "b").unwrap().standing.label(),
        "unaudited"
    );
}
