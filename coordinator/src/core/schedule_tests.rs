//! Upkeep decisions on virtual time: each cause, their order, busy and expired sessions, and
//! operator requests.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::db::Holder;
use crate::db::session_writer_record;
use std::collections::BTreeMap;

const HOUR: u64 = 3_600_000;

/// The key every session of these tests is sealed under.
const KEY: MasterKeyId = MasterKeyId([1; 8]);

/// [`super::plan`] with every session sealed under the current master key.
fn plan(
    sessions: &[SessionRecord],
    busy: &BTreeSet<SessionId>,
    requested: &BTreeSet<SessionId>,
    standing: impl Fn(&NodeId) -> Standing,
    now_ms: u64,
    rotation_period_ms: u64,
) -> Plan {
    let reseal = Reseal {
        current: KEY,
        slots: RESEAL_AT_ONCE,
    };
    super::plan(
        sessions,
        busy,
        requested,
        standing,
        now_ms,
        rotation_period_ms,
        reseal,
    )
}

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
fn sessions_under_a_retiring_master_key_are_resealed_a_few_at_a_time_after_every_other_cause() {
    let new_key = MasterKeyId([2; 8]);
    let mut sessions: Vec<SessionRecord> = (1..=6).map(|t| session(t, 5)).collect();
    // Sessions 1 to 5 were dealt before holder share keys, sealed under the master key; session
    // 6 is boxed to its holders.
    for s in &mut sessions[..5] {
        s.sealed_under = Some(KEY);
        s.boxed = false;
    }
    // Session 1's holder is lost: a quarantine rotation, which re-seals it too, and takes no slot.
    for h in &mut sessions[0].holders {
        h.node = NodeId([h.index + 100; 32]);
    }
    let lost = |n: &NodeId| {
        if *n == NodeId([101; 32]) {
            Standing::Lost
        } else {
            Standing::Live
        }
    };
    let reseal = Reseal {
        current: new_key,
        slots: 2,
    };
    let busy = BTreeSet::from([sessions[1].session]);
    let p = super::plan(&sessions, &busy, &none(), lost, 10, HOUR, reseal);
    assert_eq!(
        p.rotate,
        vec![
            (sessions[0].session, Cause::Quarantine),
            (sessions[2].session, Cause::Reseal),
            (sessions[3].session, Cause::Reseal),
        ]
    );
    assert_eq!(Cause::Reseal.label(), "reseal");
    // No slot: nothing is re-sealed; a boxed session never is.
    let none_left = Reseal {
        current: new_key,
        slots: 0,
    };
    let p = super::plan(
        &sessions[2..],
        &none(),
        &none(),
        |_| Standing::Live,
        10,
        HOUR,
        none_left,
    );
    assert!(p.rotate.is_empty(), "{:?}", p.rotate);
}

#[test]
fn a_session_sealed_under_the_current_master_key_is_re_dealt_boxed_and_a_boxed_one_never_is() {
    let mut legacy = session(1, 5);
    legacy.sealed_under = Some(KEY);
    legacy.boxed = false;
    let boxed = session(2, 5);
    let p = plan(
        &[legacy.clone(), boxed],
        &none(),
        &none(),
        |_| Standing::Live,
        10,
        HOUR,
    );
    assert_eq!(p.rotate, vec![(legacy.session, Cause::Reseal)]);
}
