//! Upkeep ticks on virtual time over real peers' standing: expiries, rotations started once on
//! a fresh quorum or postponed by name, audits waiting for rotations, owed deletions settled
//! before the rotation they would race.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::core::state::RoundTrips;
use crate::core::test_state::{HOUR, NOW, beat, node, session, share_key, state};
use protocols::ids::Epoch;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeSet;

/// Every peer of 1..=`peers` attested and beating at `at`.
fn beat_all(state: &mut State, peers: u8, at: u64) {
    for i in 1..=peers {
        beat(state, i, at);
    }
}

fn tick(state: &mut State, sessions: &[SessionRecord], owed: Vec<OwedDeletion>, at: u64) -> Tick {
    let mut rng = StdRng::seed_from_u64(at);
    state.plan_tick(sessions, owed, at, &RoundTrips::new(), &mut rng)
}

fn owed(s: &SessionRecord, epoch: Epoch, i: u8) -> OwedDeletion {
    OwedDeletion {
        session: s.session,
        epoch,
        node: node(i),
        prove: None,
    }
}

fn held(state: &State, i: u8) -> u32 {
    let held = state.ledger.shares_held();
    held.get(&node(i)).copied().unwrap_or(0)
}

#[test]
fn an_expired_session_is_locked_sent_plain_deletions_and_its_holders_no_longer_count() {
    let mut s = session(1, &[1, 2, 3]);
    s.expires_at_ms = NOW + 1;
    let mut state = state(3, vec![s.clone()]);
    assert!(
        tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW)
            .expiries
            .is_empty()
    );
    let t = tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW + 1);
    assert_eq!(t.expiries.len(), 1);
    let expiry = &t.expiries[0];
    assert_eq!(
        expiry.deletions,
        vec![owed(&s, 0, 1), owed(&s, 0, 2), owed(&s, 0, 3)]
    );
    assert_eq!(expiry.addrs.len(), 3);
    assert!(state.ledger.is_busy(&s.session));
    assert_eq!(held(&state, 1), 0);
    let again = tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW + 2);
    assert!(
        again.expiries.is_empty(),
        "an expiry under way is not started twice"
    );
    state.handle_expiry_done(&s.session);
    assert_eq!(
        tick(&mut state, &[s], Vec::new(), NOW + 3).expiries.len(),
        1
    );
}

#[test]
fn a_session_at_its_period_rotates_once_onto_fresh_holders_with_share_keys_indexed_from_one() {
    let s = session(1, &[1, 2, 3, 4, 5]);
    let mut state = state(7, vec![s.clone()]);
    assert!(
        tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW + 1)
            .rotations
            .is_empty()
    );
    beat_all(&mut state, 7, NOW + HOUR);
    let t = tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW + HOUR);
    assert_eq!(t.rotations.len(), 1);
    let start = &t.rotations[0];
    assert_eq!(start.cause, Cause::Period);
    assert_eq!(start.new_holders.len(), 5);
    for (h, index) in start.new_holders.iter().zip(1u8..) {
        assert_eq!(h.index, index);
        let i = (1..=7).find(|&i| node(i) == h.node).unwrap();
        assert_eq!(h.share_key, share_key(i).public());
    }
    assert_eq!(start.min_acks, 4, "n - 1 of 5, above k = 2");
    assert_eq!(start.addrs.len(), 10, "old holders and new ones");
    assert!(state.ledger.is_busy(&s.session));
    let again = tick(&mut state, &[s], Vec::new(), NOW + HOUR + 1);
    assert!(
        again.rotations.is_empty(),
        "a rotation under way is not started twice"
    );
}

#[test]
fn a_quarantined_holder_moves_its_session_and_an_operator_request_ends_with_its_session() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(5, vec![s.clone()]);
    state.peers.get_mut(&node(2)).unwrap().quarantine = Some(crate::peers::Quarantine::NoAnswer);
    let t = tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW + 1);
    assert_eq!(t.rotations[0].cause, Cause::Quarantine);
    assert!(!t.rotations[0].new_holders.iter().any(|h| h.node == node(2)));

    let gone = session(2, &[1, 3, 4]);
    state.ledger.request_rotation(gone.session);
    let t = tick(&mut state, &[], Vec::new(), NOW + 2);
    assert!(t.rotations.is_empty());
    assert!(
        state.ledger.requested().is_empty(),
        "no live session: forgotten"
    );
}

#[test]
fn a_rotation_is_postponed_by_name_and_leaves_its_session_free() {
    let mut state = state(3, Vec::new());
    let rt = RoundTrips::new();
    let mut rng = StdRng::seed_from_u64(1);
    let mut start = |state: &mut State, s: &SessionRecord| {
        let r = state.start_rotation(s.clone(), Cause::Manual, NOW, &rt, &mut rng);
        let postponed = matches!(&r, Err(p) if *p != Postponed::Busy);
        assert!(
            !postponed || !state.ledger.is_busy(&s.session),
            "left locked"
        );
        r.map(|start| start.new_holders.len())
    };
    let mut sealed = session(1, &[1, 2, 3]);
    sealed.boxed = false;
    assert_eq!(
        start(&mut state, &sealed),
        Err(Postponed::DealtBeforeShareKeys)
    );
    let mut huge = session(2, &[1, 2, 3]);
    huge.policy.n = 33;
    assert_eq!(start(&mut state, &huge), Err(Postponed::TooManyHolders(33)));
    let five = session(3, &[1, 2, 3, 4, 5]);
    let Err(Postponed::NoQuorum(why)) = start(&mut state, &five) else {
        panic!("three peers cannot hold five shares");
    };
    assert!(!why.is_empty());
    let three = session(4, &[1, 2, 3]);
    assert_eq!(start(&mut state, &three), Ok(3));
    assert_eq!(start(&mut state, &three), Err(Postponed::Busy));
}

#[test]
fn a_new_holder_still_owing_the_next_epochs_deletion_makes_the_rotation_wait() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(3, vec![s.clone()]);
    let rt = RoundTrips::new();
    let mut rng = StdRng::seed_from_u64(2);
    let start = state
        .start_rotation(s.clone(), Cause::Manual, NOW, &rt, &mut rng)
        .unwrap();
    assert!(deletion_still_owed(&start, &[owed(&s, 0, 1), owed(&s, 2, 2)]).is_none());
    let mut other = owed(&s, 1, 1);
    other.session = SessionId([9; 16]);
    assert!(deletion_still_owed(&start, &[other]).is_none());
    match deletion_still_owed(&start, &[owed(&s, 1, 3)]) {
        Some(RotationError::DeletionStillOwed { node: n, epoch: 1 }) => assert_eq!(n, node(3)),
        other => panic!("expected the deletion named, got {other:?}"),
    }
}

#[test]
fn a_live_holder_owing_the_next_epochs_deletion_settles_it_before_the_session_rotates() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(5, vec![s.clone()]);
    state.ledger.request_rotation(s.session);
    let t = tick(
        &mut state,
        std::slice::from_ref(&s),
        vec![owed(&s, 1, 4)],
        NOW + 1,
    );
    assert!(t.rotations.is_empty());
    let settling = t.settlement.unwrap();
    assert_eq!(settling.sessions, vec![s.session]);
    assert_eq!(settling.owed, vec![owed(&s, 1, 4)]);
    assert!(state.ledger.is_busy(&s.session));
    assert!(
        state
            .handle_settled(&settling.sessions, Vec::new())
            .is_empty()
    );
    let t = tick(&mut state, std::slice::from_ref(&s), Vec::new(), NOW + 2);
    assert_eq!(t.rotations[0].cause, Cause::Manual);
    assert!(t.settlement.is_none());
}

#[test]
fn owed_deletions_of_busy_sessions_wait_and_the_rest_go_out_with_their_holders_once_each() {
    let (a, b) = (session(1, &[1, 2]), session(2, &[1, 2]));
    let mut state = state(3, vec![a.clone(), b.clone()]);
    state.ledger.lock(a.session);
    let owing = vec![owed(&a, 0, 1), owed(&b, 0, 2), owed(&b, 0, 1)];
    let t = tick(&mut state, &[a.clone(), b.clone()], owing, NOW + 1);
    let settling = t.settlement.unwrap();
    assert_eq!(settling.sessions, vec![b.session]);
    assert_eq!(settling.owed, vec![owed(&b, 0, 2), owed(&b, 0, 1)]);
    let mut nodes: Vec<_> = settling.addrs.iter().map(|(n, _)| *n).collect();
    nodes.dedup();
    assert_eq!(nodes.len(), 2, "each holder addressed once");
    assert!(state.ledger.is_busy(&b.session));
    let none = tick(&mut state, &[a, b.clone()], vec![owed(&b, 0, 2)], NOW + 2);
    assert!(none.settlement.is_none(), "already being delivered");
}

#[test]
fn an_audit_due_waits_while_its_session_rotates_and_starts_after() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(5, vec![s.clone()]);
    state.handle_session_stored(s.session, Vec::new(), NOW);
    state.ledger.request_rotation(s.session);
    let t = tick(
        &mut state,
        std::slice::from_ref(&s),
        Vec::new(),
        NOW + 60_000,
    );
    assert_eq!(t.rotations.len(), 1);
    assert!(t.audits.is_empty(), "the audit waits for the rotation");
    let start = &t.rotations[0];
    let failed = state.handle_rotated(s.session, start.cause, start.mark, None, Vec::new(), NOW);
    assert!(failed.is_empty());
    state.ledger.forget_request(&s.session);
    let t = tick(
        &mut state,
        std::slice::from_ref(&s),
        Vec::new(),
        NOW + 60_001,
    );
    assert_eq!(t.audits.len(), 1);
    assert_eq!(t.audits[0].order.record.session, s.session);
    assert_eq!(t.audits[0].addrs.len(), 3);
    assert!(state.ledger.is_busy(&s.session));
}

/// A session of the property below: tag, holders (peer numbers), expired, boxed, requested.
type Shape = (u8, Vec<u8>, bool, bool, bool);

fn shaped(shapes: &[Shape]) -> Vec<SessionRecord> {
    let mut seen = BTreeSet::new();
    shapes
        .iter()
        .filter(|(tag, ..)| seen.insert(*tag))
        .map(|(tag, holders, expired, boxed, _)| {
            let mut holders = holders.clone();
            holders.sort();
            holders.dedup();
            let mut s = session(*tag, &holders);
            s.boxed = *boxed;
            if *expired {
                s.expires_at_ms = NOW;
            }
            s
        })
        .collect()
}

proptest::proptest! {
    /// Whatever the sessions, owed deletions, busy sessions and requests, a tick starts at most
    /// one piece of work per session, never on a busy one, locks each it starts, and the
    /// reports of their ends leave exactly the sessions busy before.
    #[test]
    fn a_tick_starts_one_piece_of_work_per_free_session_and_its_reports_free_them(
        shapes in proptest::collection::vec(
            (1u8..12, proptest::collection::vec(1u8..=7, 1..6), proptest::bool::ANY,
             proptest::bool::ANY, proptest::bool::ANY),
            0..8,
        ),
        busy in proptest::collection::btree_set(1u8..12, 0..4),
        owing in proptest::collection::vec((1u8..12, 0u32..3, 1u8..=7), 0..8),
        quarantined in proptest::option::of(1u8..=7),
        seed in proptest::num::u64::ANY,
    ) {
        let sessions = shaped(&shapes);
        let mut state = state(7, sessions.clone());
        if let Some(q) = quarantined {
            state.peers.get_mut(&node(q)).unwrap().quarantine =
                Some(crate::peers::Quarantine::NoAnswer);
        }
        for (tag, .., requested) in &shapes {
            if *requested {
                state.ledger.request_rotation(SessionId([*tag; 16]));
            }
        }
        let busy: BTreeSet<SessionId> = busy.iter().map(|t| SessionId([*t; 16])).collect();
        for s in &busy {
            state.ledger.lock(*s);
        }
        let owed: Vec<OwedDeletion> = owing
            .iter()
            .map(|&(tag, epoch, i)| OwedDeletion {
                session: SessionId([tag; 16]),
                epoch,
                node: node(i),
                prove: None,
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let tick = state.plan_tick(&sessions, owed, NOW + 1, &RoundTrips::new(), &mut rng);

        let mut started: Vec<SessionId> = Vec::new();
        started.extend(tick.expiries.iter().map(|e| e.record.session));
        started.extend(tick.rotations.iter().map(|r| r.record.session));
        started.extend(tick.audits.iter().map(|a| a.order.record.session));
        if let Some(s) = &tick.settlement {
            started.extend(s.sessions.iter().copied());
        }
        let distinct: BTreeSet<SessionId> = started.iter().copied().collect();
        proptest::prop_assert_eq!(distinct.len(), started.len(), "one piece of work each");
        for s in &distinct {
            proptest::prop_assert!(!busy.contains(s), "started on a busy session");
            proptest::prop_assert!(state.ledger.is_busy(s), "started without its lock");
        }
        for r in &tick.rotations {
            proptest::prop_assert!(r.record.boxed && r.record.expires_at_ms > NOW + 1);
            let chosen: BTreeSet<NodeId> = r.new_holders.iter().map(|h| h.node).collect();
            proptest::prop_assert_eq!(chosen.len(), r.new_holders.len());
            proptest::prop_assert!(quarantined.is_none_or(|q| !chosen.contains(&node(q))));
        }

        for e in &tick.expiries {
            state.handle_expiry_done(&e.record.session);
        }
        for r in &tick.rotations {
            let mark = r.mark;
            state.handle_rotated(r.record.session, r.cause, mark, None, Vec::new(), NOW + 2);
        }
        for a in &tick.audits {
            state.handle_audited(a.order.record.session, Vec::new(), Vec::new(), 0, NOW + 2);
        }
        if let Some(s) = &tick.settlement {
            state.handle_settled(&s.sessions, Vec::new());
        }
        proptest::prop_assert_eq!(state.ledger.busy(), &busy);
    }
}
