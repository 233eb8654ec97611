//! Upkeep decisions on virtual time: each cause, their order, busy and expired sessions, and
//! operator requests.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::db::Holder;
use crate::db::session_writer_record;
use std::collections::BTreeMap;

const HOUR: u64 = 3_600_000;

use super::{plan, settle_before_rotating};

/// A session with `n` holders (nodes 1..=n), threshold 2, created at 0, expiring at 10 h.
fn session(tag: u8, n: u8) -> SessionRecord {
    let mut s = session_writer_record(u64::from(tag));
    s.session = SessionId([tag; 16]);
    s.holders = (1..=n)
        .map(|i| Holder {
            node: NodeId([i; 32]),
            index: i,
        })
        .collect();
    s.created_at_ms = 0;
    s.rotated_at_ms = 0;
    s.expires_at_ms = 10 * HOUR;
    s.sealed_under = None;
    s.boxed = true;
    s
}

fn standings(of: &[(u8, Standing)]) -> impl Fn(&NodeId) -> Standing {
    let map: BTreeMap<NodeId, Standing> = of.iter().map(|&(i, st)| (NodeId([i; 32]), st)).collect();
    move |n| map.get(n).copied().unwrap_or(Standing::Live)
}

fn none() -> BTreeSet<SessionId> {
    BTreeSet::new()
}

#[test]
fn a_healthy_session_is_left_alone_until_its_period_then_rotated_for_it() {
    let s = [session(1, 5)];
    let live = standings(&[]);
    assert_eq!(
        plan(&s, &none(), &none(), &live, HOUR - 1, HOUR),
        Plan::default()
    );
    let p = plan(&s, &none(), &none(), &live, HOUR, HOUR);
    assert_eq!(p.rotate, vec![(s[0].session, Cause::Period)]);
    // The period counts from the last rotation.
    let mut rotated = s[0].clone();
    rotated.rotated_at_ms = HOUR;
    assert!(
        plan(&[rotated], &none(), &none(), &live, HOUR + 10, HOUR)
            .rotate
            .is_empty()
    );
}

#[test]
fn too_few_live_holders_trigger_a_repair_but_not_for_a_session_already_at_k_plus_one() {
    // n = 5, k = 2: live falls to 3 (k + 1) → repair.
    let s = [session(1, 5)];
    let two_silent = standings(&[(1, Standing::Silent), (2, Standing::Silent)]);
    let p = plan(&s, &none(), &none(), &two_silent, 10, HOUR);
    assert_eq!(p.rotate, vec![(s[0].session, Cause::Repair)]);
    let one_silent = standings(&[(1, Standing::Silent)]);
    assert!(
        plan(&s, &none(), &none(), &one_silent, 10, HOUR)
            .rotate
            .is_empty()
    );
    // n = 3 = k + 1: nothing to repair towards.
    let small = [session(2, 3)];
    assert!(
        plan(&small, &none(), &none(), &two_silent, 10, HOUR)
            .rotate
            .is_empty()
    );
}

#[test]
fn a_lost_holder_moves_the_session_before_any_other_cause() {
    let s = [session(1, 5)];
    let lost = standings(&[
        (1, Standing::Lost),
        (2, Standing::Silent),
        (3, Standing::Silent),
    ]);
    let p = plan(&s, &none(), &none(), &lost, 2 * HOUR, HOUR);
    assert_eq!(p.rotate, vec![(s[0].session, Cause::Quarantine)]);
}

#[test]
fn busy_sessions_are_neither_rotated_nor_expired_and_expired_ones_are_not_rotated() {
    let (a, b, mut c) = (session(1, 5), session(2, 5), session(3, 5));
    c.expires_at_ms = HOUR;
    let busy = BTreeSet::from([a.session]);
    let lost = standings(&[(1, Standing::Lost)]);
    let p = plan(
        &[a.clone(), b.clone(), c.clone()],
        &busy,
        &none(),
        &lost,
        HOUR,
        HOUR,
    );
    assert_eq!(p.rotate, vec![(b.session, Cause::Quarantine)]);
    assert_eq!(p.expire, vec![c.session]);
    let busy = BTreeSet::from([c.session]);
    assert!(
        plan(&[c], &busy, &none(), &lost, 2 * HOUR, HOUR)
            .expire
            .is_empty()
    );
}

#[test]
fn operator_requests_rotate_as_manual_unless_already_due_and_are_forgotten_once_the_session_is_gone()
 {
    let (a, b) = (session(1, 5), session(2, 5));
    let gone = SessionId([9; 16]);
    let requested = BTreeSet::from([a.session, b.session, gone]);
    let b_lost = |n: &NodeId| {
        if *n == NodeId([1; 32]) {
            Standing::Lost
        } else {
            Standing::Live
        }
    };
    // b's holder 1 is lost, but a shares holder 1 too: make a's holders different.
    let mut a = a;
    for h in &mut a.holders {
        h.node = NodeId([h.index + 100; 32]);
    }
    let p = plan(
        &[a.clone(), b.clone()],
        &none(),
        &requested,
        b_lost,
        10,
        HOUR,
    );
    assert_eq!(
        p.rotate,
        vec![(a.session, Cause::Manual), (b.session, Cause::Quarantine)]
    );
    assert_eq!(p.forget_requests, vec![gone]);
    // A request for an expired session is forgotten, and the session expired instead.
    a.expires_at_ms = 5;
    let p = plan(
        &[a.clone()],
        &none(),
        &requested,
        |_| Standing::Live,
        10,
        HOUR,
    );
    assert_eq!(p.expire, vec![a.session]);
    assert!(p.forget_requests.contains(&a.session));
}

#[test]
fn a_holder_is_live_while_trusted_and_beating_silent_when_either_lapses_and_lost_when_quarantined_or_gone()
 {
    use crate::peers::{PeerTable, Quarantine};

    let (now, validity, max_age) = (1_000_000, 600_000, 60_000);
    let node = NodeId([9; 32]);
    let mut peers = PeerTable::default();
    assert_eq!(
        standing(&peers, &node, now, validity, max_age),
        Standing::Lost
    );
    peers.enrol(node, "eu".into(), "op".into());
    assert_eq!(
        standing(&peers, &node, now, validity, max_age),
        Standing::Silent
    );
    let p = peers.get_mut(&node).unwrap();
    p.attested_at_ms = Some(now - validity);
    p.heartbeat_at_ms = Some(now - max_age);
    assert_eq!(
        standing(&peers, &node, now, validity, max_age),
        Standing::Live
    );
    assert_eq!(
        standing(&peers, &node, now + 1, validity, max_age),
        Standing::Silent
    );
    peers.get_mut(&node).unwrap().quarantine = Some(Quarantine::ClonedEntropy);
    assert_eq!(
        standing(&peers, &node, now, validity, max_age),
        Standing::Lost
    );
}

#[test]
fn a_session_sealed_under_a_master_key_is_never_rotated_only_expired() {
    let mut legacy = session(1, 5);
    legacy.sealed_under = Some(protocols::sealing::MasterKeyId([1; 8]));
    legacy.boxed = false;
    let mut lost_holder = legacy.clone();
    lost_holder.session = SessionId([9; 16]);
    let requested = BTreeSet::from([legacy.session]);
    let lost = |n: &NodeId| {
        if *n == NodeId([1; 32]) {
            Standing::Lost
        } else {
            Standing::Live
        }
    };
    // Due by period, asked for, a holder lost: none rotates it.
    let p = plan(
        &[legacy.clone(), lost_holder],
        &none(),
        &requested,
        lost,
        9 * HOUR,
        HOUR,
    );
    assert!(p.rotate.is_empty(), "{:?}", p.rotate);
    assert!(p.expire.is_empty());
    let expired = plan(&[legacy.clone()], &none(), &none(), lost, 11 * HOUR, HOUR);
    assert_eq!(expired.expire, vec![legacy.session]);
}

#[test]
fn a_session_whose_live_holder_owes_a_rolled_back_next_epoch_is_settled_before_it_rotates() {
    let s = vec![session(1, 4), session(2, 4)];
    let live = standings(&[]);
    let owed = |session: u8, epoch, node: u8| crate::db::OwedDeletion {
        session: SessionId([session; 16]),
        epoch,
        node: NodeId([node; 32]),
        prove: None,
    };
    let due = || plan(&s, &none(), &none(), &live, HOUR, HOUR);
    assert_eq!(due().rotate.len(), 2);
    let next = s[0].epoch + 1;
    // Holder 3 of session 1 owes the deletion of a rolled-back e+1: session 1 waits a tick.
    let mut p = due();
    settle_before_rotating(&mut p, &s, &[owed(1, next, 3)], &live);
    assert_eq!(p.rotate, vec![(SessionId([2; 16]), Cause::Period)]);
    // The owing holder silent or lost: it will not be chosen again, nothing is held back.
    for away in [Standing::Silent, Standing::Lost] {
        let mut p = due();
        settle_before_rotating(&mut p, &s, &[owed(1, next, 3)], standings(&[(3, away)]));
        assert_eq!(p.rotate.len(), 2, "{away:?}");
    }
    // A superseded epoch (e, owed after a commit) or another session's debt holds nothing back.
    let mut p = due();
    settle_before_rotating(
        &mut p,
        &s,
        &[owed(1, s[0].epoch, 3), owed(3, next, 3)],
        &live,
    );
    assert_eq!(p.rotate.len(), 2);
}
