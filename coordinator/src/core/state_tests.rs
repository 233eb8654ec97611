//! The loop's bookkeeping on virtual time: task reports, operator requests, revocations and
//! the views read from the state.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::core::errors::NoAnswer;
use crate::core::test_state::{HOUR, NOW, config, intake, node, session, share_key, state};
use crate::peers::Quarantine;
use rand::SeedableRng;

fn held(state: &State, i: u8) -> u32 {
    state
        .ledger
        .shares_held()
        .get(&node(i))
        .copied()
        .unwrap_or(0)
}

#[test]
fn start_up_enrols_loaded_peers_with_their_share_keys_and_counts_stored_shares() {
    let enrolment = |i: u8, key: bool| Enrolment {
        region: format!("r{i}"),
        operator: format!("o{i}"),
        enrolled_at_ms: 1,
        share_key: key.then(|| share_key(i).public()),
    };
    let loaded = Loaded {
        enrolments: vec![
            (node(1), enrolment(1, true)),
            (node(2), enrolment(2, false)),
        ],
        sessions: vec![session(1, &[1, 2]), session(2, &[1])],
        ..Loaded::default()
    };
    let state = State::new(&config(), loaded, intake());
    assert_eq!(state.peers.len(), 2);
    assert_eq!(state.peers.share_key(&node(1)), Some(share_key(1).public()));
    assert_eq!(state.peers.share_key(&node(2)), None);
    assert_eq!((held(&state, 1), held(&state, 2)), (2, 1));
    let p = state.peers.get(&node(1)).unwrap();
    assert_eq!((p.region.as_str(), p.attested_at_ms), ("r1", None));
    assert_eq!(state.rules.rotation_period_ms, HOUR);
    assert_eq!(state.rules.entropy_audit_lost_ms, 70_000);
}

#[test]
fn a_stored_session_counts_its_holders_and_is_audited_a_minute_later() {
    let mut state = state(3, Vec::new());
    let s = session(1, &[1, 2, 3]);
    state.handle_session_stored(s.session, vec![node(1), node(2), node(3)], NOW);
    assert_eq!(held(&state, 2), 1);
    assert_eq!(state.figures(NOW + 59_999).holder_audits_due, 0);
    assert_eq!(state.figures(NOW + 60_000).holder_audits_due, 1);
}

#[test]
fn a_committed_rotation_moves_shares_quarantines_faulty_holders_and_schedules_an_audit() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(5, vec![s.clone()]);
    let mark = state.ledger.rotation_started(s.session);
    let faults = vec![(node(1), HolderFault::Withheld)];
    let (old, new) = ([node(1), node(2), node(3)], [node(3), node(4), node(5)]);
    let labels = state.handle_rotated(
        s.session,
        Cause::Period,
        mark,
        Some((&old, &new)),
        faults,
        NOW,
    );
    assert_eq!(labels, ["withheld_share"]);
    assert_eq!(
        state.peers.get(&node(1)).unwrap().quarantine,
        Some(Quarantine::WithheldShare)
    );
    assert!(!state.ledger.is_busy(&s.session));
    assert_eq!(
        (held(&state, 1), held(&state, 3), held(&state, 4)),
        (0, 1, 1)
    );
    assert_eq!(
        state.figures(NOW).rotations_by_cause.get("Period"),
        Some(&1)
    );
    assert_eq!(state.figures(NOW + 60_000).holder_audits_due, 1);
}

#[test]
fn a_failed_rotation_frees_the_session_moves_nothing_and_schedules_no_audit() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(5, vec![s.clone()]);
    let mark = state.ledger.rotation_started(s.session);
    let labels = state.handle_rotated(s.session, Cause::Repair, mark, None, Vec::new(), NOW);
    assert!(labels.is_empty());
    assert!(!state.ledger.is_busy(&s.session));
    assert_eq!(held(&state, 1), 1);
    assert!(state.figures(NOW).rotations_by_cause.is_empty());
    assert_eq!(state.figures(NOW + HOUR).holder_audits_due, 0);
}

#[test]
fn an_audit_report_frees_the_session_quarantines_a_bad_holder_once_and_asks_the_silent_again() {
    let s = session(1, &[1, 2, 3]);
    let mut state = state(3, vec![s.clone()]);
    state.ledger.lock(s.session);
    let bad = || vec![(node(2), HolderFault::BadShare("changed".into()))];
    let labels = state.handle_audited(s.session, bad(), vec![node(3)], 0, NOW);
    assert_eq!(labels, ["bad_share"]);
    assert!(!state.ledger.is_busy(&s.session));
    assert!(
        state.audits.next_at_ms().is_some(),
        "the silent holder is asked again"
    );
    let again = state.handle_settled(&[s.session], bad());
    assert!(again.is_empty(), "a proven quarantine is not entered twice");
    state.peers.get_mut(&node(1)).unwrap().quarantine = Some(Quarantine::NoAnswer);
    let withheld = vec![(node(1), HolderFault::Withheld)];
    assert_eq!(
        state.handle_settled(&[], withheld),
        ["withheld_share"],
        "a missed challenge gives way to a proven fault"
    );
}

#[test]
fn settled_deletions_and_finished_expiries_free_their_sessions() {
    let (a, b) = (session(1, &[1]), session(2, &[1]));
    let mut state = state(1, vec![a.clone(), b.clone()]);
    state.ledger.lock(a.session);
    state.ledger.lock(b.session);
    assert!(state.handle_settled(&[a.session], Vec::new()).is_empty());
    assert!(state.may_revoke(&a.session));
    assert!(!state.may_revoke(&b.session));
    state.handle_expiry_done(&b.session);
    assert!(state.may_revoke(&b.session));
}

#[test]
fn a_revocation_waits_while_the_session_is_busy_then_drops_its_shares_and_rotation_request() {
    let s = session(1, &[1, 2]);
    let mut state = state(2, vec![s.clone()]);
    state.ledger.request_rotation(s.session);
    state.ledger.lock(s.session);
    assert!(!state.may_revoke(&s.session));
    state.ledger.release(&s.session);
    assert!(state.may_revoke(&s.session));
    state.handle_revoked(&s);
    assert_eq!((held(&state, 1), held(&state, 2)), (0, 0));
    assert!(state.ledger.requested().is_empty());
}

#[test]
fn lifting_a_quarantine_or_a_clone_flag_asks_for_a_fresh_attestation_and_else_says_why_not() {
    let mut state = state(2, Vec::new());
    state.peers.get_mut(&node(1)).unwrap().quarantine = Some(Quarantine::WithheldShare);
    let lifted = state.unquarantine(node(1)).unwrap();
    assert_eq!(lifted, "lifted WithheldShare");
    let p = state.peers.get(&node(1)).unwrap();
    assert_eq!((p.quarantine.as_ref(), p.attested_at_ms), (None, None));
    assert!(matches!(
        state.unquarantine(node(2)),
        Err(AdminError::NotQuarantined(_))
    ));
    assert!(matches!(
        state.unquarantine(node(9)),
        Err(AdminError::NotFound { what: "peer", .. })
    ));
}

#[test]
fn gauges_and_peer_lines_show_live_sessions_quarantines_and_shares_held() {
    let mut expired = session(2, &[1]);
    expired.expires_at_ms = NOW;
    let mut state = state(3, vec![session(1, &[1, 2]), expired.clone()]);
    state.peers.get_mut(&node(3)).unwrap().quarantine = Some(Quarantine::NoAnswer);
    let gauges = state.gauges(&[session(1, &[1, 2]), expired], NOW);
    assert_eq!(
        gauges,
        Gauges {
            sessions_live: 1,
            peers_enrolled: 3,
            peers_quarantined: 1,
            pool_pending_bits: 0,
        }
    );
    let lines = state.peer_lines(NOW + 5_000);
    let line = |i: u8| lines.iter().find(|l| l.node == node(i)).unwrap();
    assert_eq!(line(1).shares_held, 2);
    assert!(line(1).trusted && !line(3).trusted);
    assert_eq!(line(1).heartbeat_age_s, Some(5));
    assert_eq!(line(1).power, "Mains");
}

#[test]
fn an_operator_sweep_audits_every_live_session_at_once() {
    let mut expired = session(2, &[1]);
    expired.expires_at_ms = NOW;
    let live = session(1, &[1]);
    let mut state = state(1, vec![live.clone(), expired.clone()]);
    state.audit_live_now(&[live, expired], NOW);
    assert_eq!(state.figures(NOW).holder_audits_due, 1);
}

#[test]
fn a_connected_peer_is_challenged_at_once_only_when_enrolled_untrusted_and_not_asked_already() {
    let mut state = state(2, Vec::new());
    assert!(!state.wanted_on_connect(&node(1), NOW), "trusted now");
    assert!(!state.wanted_on_connect(&node(9), NOW), "not enrolled");
    let later = NOW + 600_000;
    assert!(
        state.wanted_on_connect(&node(1), later),
        "its attestation ran out"
    );
    let out = state.challenge(node(1), [4; 32], later, 1 << 16).unwrap();
    assert_eq!(out.node, node(1));
    assert_eq!(peer::identity::node_id(&out.peer), Some(node(1)));
    let sent: protocols::attestation::Challenge =
        protocols::wire::decode(&out.bytes, 1 << 16).unwrap();
    assert_eq!((sent.nonce, sent.issued_at_ms), ([4; 32], later));
    assert!(
        !state.wanted_on_connect(&node(1), later),
        "a challenge is out"
    );
}

#[test]
fn an_unanswered_challenge_quarantines_its_peer_once_and_a_superseded_one_is_not_judged() {
    let mut state = state(2, Vec::new());
    state.challenge(node(2), [1; 32], NOW, 1 << 16).unwrap();
    state.challenge(node(2), [2; 32], NOW + 1, 1 << 16).unwrap();
    let stale =
        state.judge_attestation(node(2), [1; 32], Err(NoAnswer::Timeout), NOW, 1 << 16, NOW);
    assert!(stale.is_none(), "superseded by the second challenge");
    let silent =
        state.judge_attestation(node(2), [2; 32], Err(NoAnswer::Timeout), NOW, 1 << 16, NOW);
    let verdict = silent.unwrap();
    assert!(verdict.newly_quarantined);
    assert_eq!(
        state.peers.get(&node(2)).unwrap().quarantine,
        Some(Quarantine::NoAnswer)
    );
    let again =
        state.judge_attestation(node(2), [2; 32], Err(NoAnswer::Timeout), NOW, 1 << 16, NOW);
    assert!(again.is_none(), "judged once");
}

#[test]
fn a_session_is_dealt_from_the_state_only_for_an_allowed_requester_and_a_full_pool() {
    let mut state = state(5, Vec::new());
    let policy = protocols::wire::SessionPolicy {
        n: 3,
        k: 2,
        ttl_s: 600,
        requesters: Vec::new(),
        label: "t".into(),
    };
    let fresh = || super::sessions::Fresh {
        session: [1; 16],
        draw: [2; 32],
        derive: [3; 32],
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let rt = RoundTrips::new();
    let stranger = state.deal(node(50), policy.clone(), fresh(), NOW, &rt, &mut rng);
    assert!(matches!(
        stranger,
        Err(protocols::wire::Refusal::Unauthorized)
    ));
    state.requesters.insert(node(50));
    let empty = state.deal(node(50), policy, fresh(), NOW, &rt, &mut rng);
    assert!(matches!(empty, Err(protocols::wire::Refusal::NotReady(_))));
}

#[test]
fn every_peer_heard_from_comes_up_in_exactly_one_attestation_slice_per_round_of_ticks() {
    let mut state = state(20, Vec::new());
    state.peers.enrol(node(30), "r".into(), "o".into());
    let slices = crate::core::attestation::SLICES;
    for _round in 0..2 {
        let mut seen: Vec<NodeId> = (0..slices)
            .flat_map(|_| state.attestation_slice_due())
            .collect();
        seen.sort();
        let mut all: Vec<NodeId> = (1..=20).map(node).collect();
        all.sort();
        assert_eq!(
            seen, all,
            "each once; a peer never heard from is not challenged"
        );
    }
}

#[test]
fn the_loops_timers_follow_the_configuration() {
    let mut c = config();
    let rules = Rules::of(&c);
    let slices = crate::core::attestation::SLICES as f64;
    assert_eq!(
        rules.attestation_tick,
        Duration::from_secs_f64(30.0 / slices)
    );
    assert_eq!(rules.credit_round, Duration::from_secs(10));
    assert_eq!(rules.upkeep_tick, Duration::from_secs(2), "at most 2 s");
    c.rotation_period_s = 0.5;
    assert_eq!(Rules::of(&c).upkeep_tick, Duration::from_millis(500));
}
