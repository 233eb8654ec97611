//! Holder audits on virtual time: when each audit falls due, who is asked again, and how each
//! reply is judged against real proofs, seals and Feldman commitments.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::db::{Holder, session_writer_record};
use protocols::keys::SessionSecret;
use protocols::sealing::SealingMasterKey;

const S: u64 = 1_000;

fn node(i: u8) -> NodeId {
    NodeId([i; 32])
}

/// A session with holders 1..=n, expiring at 10 h.
fn session(tag: u8, n: u8) -> SessionRecord {
    let mut s = session_writer_record(u64::from(tag));
    s.session = SessionId([tag; 16]);
    s.holders = (1..=n)
        .map(|i| Holder {
            node: node(i),
            index: i,
        })
        .collect();
    s.expires_at_ms = 36_000 * S;
    s
}

fn idle(_: &SessionId) -> bool {
    false
}

#[test]
fn an_epoch_is_audited_once_after_its_commit_and_not_before() {
    let s = [session(1, 3)];
    let mut audits = HolderAudits::new(5.0);
    audits.handle_committed(s[0].session, 100 * S);
    assert_eq!(audits.next_at_ms(), Some(105 * S));
    assert!(audits.due(105 * S - 1, &s, idle).is_empty());
    let due = audits.due(105 * S, &s, idle);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempt, 0);
    assert_eq!(due[0].record.holders.len(), 3, "every holder is asked");
    assert!(audits.due(200 * S, &s, idle).is_empty(), "once");
    assert_eq!(audits.next_at_ms(), None);
}

#[test]
fn silent_holders_are_asked_again_alone_with_doubling_waits_six_times() {
    let s = [session(1, 4)];
    let mut audits = HolderAudits::new(3.0);
    audits.handle_committed(s[0].session, 0);
    let mut last_attempt = audits.due(3 * S, &s, idle)[0].attempt;
    assert_eq!(last_attempt, 0);
    let mut at = 3 * S;
    let mut waits = Vec::new();
    for attempt in 0..SILENT_RETRIES {
        audits.handle_audited(s[0].session, vec![node(2), node(4)], attempt, at);
        let next = audits.next_at_ms().unwrap();
        waits.push(next - at);
        let due = audits.due(next, &s, idle);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].attempt, attempt + 1);
        let asked: Vec<NodeId> = due[0].record.holders.iter().map(|h| h.node).collect();
        assert_eq!(asked, vec![node(2), node(4)], "only the silent ones");
        at = next;
        last_attempt = attempt + 1;
    }
    assert_eq!(waits, vec![6 * S, 12 * S, 24 * S, 48 * S, 96 * S, 192 * S]);
    audits.handle_audited(s[0].session, vec![node(2)], last_attempt, at);
    assert_eq!(audits.next_at_ms(), None, "retries used up");
}

#[test]
fn retry_waits_stop_growing_at_ten_minutes_but_never_undercut_the_first_wait() {
    let s = [session(1, 3)];
    let mut audits = HolderAudits::new(60.0);
    audits.handle_audited(s[0].session, vec![node(1)], 4, 0);
    assert_eq!(audits.next_at_ms(), Some(MAX_RETRY_DELAY_MS));
    let mut slow = HolderAudits::new(900.0);
    slow.handle_audited(s[0].session, vec![node(1)], 1, 0);
    assert_eq!(slow.next_at_ms(), Some(900 * S));
}

#[test]
fn a_new_epochs_audit_replaces_the_retries_of_the_last() {
    let s = [session(1, 3)];
    let mut audits = HolderAudits::new(3.0);
    audits.handle_audited(s[0].session, vec![node(1)], 0, 0);
    audits.handle_committed(s[0].session, S);
    let due = audits.due(4 * S, &s, idle);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempt, 0);
    assert_eq!(due[0].record.holders.len(), 3);
    // A retry reported after the new epoch's audit was scheduled does not displace it.
    audits.handle_committed(s[0].session, 10 * S);
    audits.handle_audited(s[0].session, vec![node(1)], 0, 10 * S);
    assert_eq!(audits.due(13 * S, &s, idle)[0].attempt, 0);
}

#[test]
fn a_busy_session_stays_due_and_a_gone_or_expired_one_is_forgotten() {
    let (a, b, c) = (session(1, 3), session(2, 3), session(3, 3));
    let mut audits = HolderAudits::new(1.0);
    for s in [&a, &b, &c] {
        audits.handle_committed(s.session, 0);
    }
    let mut expired = c.clone();
    expired.expires_at_ms = 2 * S;
    let recorded = [a.clone(), expired];
    let busy = |s: &SessionId| *s == a.session;
    assert!(audits.due(5 * S, &recorded, busy).is_empty());
    assert_eq!(audits.next_at_ms(), Some(S), "the busy one waits");
    let due = audits.due(6 * S, &recorded, idle);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].record.session, a.session);
    assert_eq!(
        audits.next_at_ms(),
        None,
        "b (gone) and c (expired) forgotten"
    );
}

#[test]
fn audits_are_off_when_their_interval_is_zero() {
    let s = [session(1, 3)];
    let mut audits = HolderAudits::new(0.0);
    audits.handle_committed(s[0].session, 0);
    audits.handle_audited(s[0].session, vec![node(1)], 0, 0);
    assert_eq!(audits.next_at_ms(), None);
    assert!(audits.due(u64::MAX / 2, &s, idle).is_empty());
}

/// A real dealt session: commitments on the record, the first holder's slot, its key, and that
/// holder's share sealed.
fn dealt(now_expiry_ms: u64) -> (SessionRecord, ShareSlot, ShareOpeningKey, SealedShare) {
    let mut record = session(7, 3);
    record.expires_at_ms = now_expiry_ms;
    let secret = SessionSecret::derive(&[1; 32], &[2; 32], &record.session).unwrap();
    let (shares, commitments) =
        protocols::sharing::split(&secret, &[1, 2, 3], 2, &mut rand::rng()).unwrap();
    record.commitments = commitments;
    let slot = ShareSlot {
        session: record.session,
        epoch: record.epoch,
        holder: node(1),
        index: 1,
    };
    let master = SealingMasterKey::from_bytes([9; 32]);
    let key = master.share_key(&slot);
    let sealed = sealing::seal(&key, slot, &shares[0].value_bytes(), [3; 12]);
    (record, slot, key, sealed)
}

const CHALLENGE: [u8; 32] = [6; 32];

/// The holder of `slot` answering a `ProveShare` over `challenge` for the share `value`.
fn proven(slot: &ShareSlot, challenge: [u8; 32], value: &[u8; 32]) -> Reply {
    let ctx = share_proof::ProofContext {
        session: slot.session,
        epoch: slot.epoch,
        index: slot.index,
        challenge,
    };
    Reply::Proven(ProvenShare {
        session: slot.session,
        epoch: slot.epoch,
        index: slot.index,
        proof: share_proof::prove(&ctx, value, &mut rand::rng()).unwrap(),
    })
}

#[test]
fn a_proof_of_the_holders_share_is_verified_and_any_other_answer_is_a_bad_share() {
    let (mut record, slot, key, sealed) = dealt(36_000 * S);
    record.boxed = true;
    let value = sealing::open(&key, &slot, &sealed).unwrap();
    let value = value.verify(&record.commitments).unwrap().value_bytes();
    let good = proven(&slot, CHALLENGE, &value);
    assert!(matches!(
        judge(&record, &slot, None, &CHALLENGE, good, 0),
        Answer::Verified
    ));
    let mut other_index = slot;
    other_index.index = 2;
    let mut changed = value;
    changed[0] ^= 1;
    for bad in [
        // Another challenge: a proof kept from an earlier audit.
        proven(&slot, [7; 32], &value),
        // A changed share.
        proven(&slot, CHALLENGE, &changed),
        // A proof of another slot.
        proven(&other_index, CHALLENGE, &value),
        // The holder itself says its stored share is bad.
        Reply::Refused(Refusal::BadShare("does not open".into())),
        // A sealed share is no answer for a session boxed to its holders.
        Reply::Fetched(FetchedShare::Sealed(sealed.clone())),
    ] {
        match judge(&record, &slot, None, &CHALLENGE, bad, 0) {
            Answer::Fault(HolderFault::BadShare(_)) => {}
            other => panic!("expected a bad share, got {other:?}"),
        }
    }
}

#[test]
fn a_proof_reply_is_decoded_from_the_holders_bytes_and_garbage_is_no_answer() {
    let (_, slot, _, _) = dealt(36_000 * S);
    let Reply::Proven(p) = proven(&slot, CHALLENGE, &[5; 32]) else {
        unreachable!()
    };
    let raw = protocols::wire::encode(&protocols::wire::Reply::ok(p.clone()));
    assert!(matches!(Reply::of_proof(Some(&raw)), Reply::Proven(q) if q == p));
    let refused = protocols::wire::encode(&ProveShareReply {
        v: protocols::wire::WIRE_VERSION,
        result: Err(Refusal::NotFound),
    });
    assert!(matches!(
        Reply::of_proof(Some(&refused)),
        Reply::Refused(Refusal::NotFound)
    ));
    assert!(matches!(
        Reply::of_proof(Some(b"\xff\x00")),
        Reply::NoAnswer(_)
    ));
    assert!(matches!(Reply::of_proof(None), Reply::NoAnswer(_)));
}

#[test]
fn a_share_that_opens_and_matches_the_commitments_is_verified() {
    let (record, slot, key, sealed) = dealt(36_000 * S);
    let answer = judge(
        &record,
        &slot,
        Some(&key),
        &CHALLENGE,
        Reply::Sealed(sealed),
        0,
    );
    assert!(matches!(answer, Answer::Verified));
}

#[test]
fn a_tampered_seal_a_wrong_slot_or_a_share_off_the_commitments_is_a_bad_share() {
    let (record, slot, key, sealed) = dealt(36_000 * S);
    let mut flipped = sealed.clone();
    if let Some(b) = flipped.ciphertext.last_mut() {
        *b ^= 1;
    }
    let mut moved = sealed.clone();
    moved.slot.index = 2;
    // A share that opens but is not the dealt one: sealed properly, wrong value.
    let forged = sealing::seal(&key, slot, &[5; 32], [4; 12]);
    for bad in [flipped, moved, forged] {
        match judge(
            &record,
            &slot,
            Some(&key),
            &CHALLENGE,
            Reply::Sealed(bad),
            0,
        ) {
            Answer::Fault(HolderFault::BadShare(_)) => {}
            other => panic!("expected a bad share, got {other:?}"),
        }
    }
}

#[test]
fn not_found_is_withheld_unless_the_session_is_about_to_expire() {
    let (record, slot, key, _) = dealt(100 * S);
    let early = judge(
        &record,
        &slot,
        Some(&key),
        &CHALLENGE,
        Reply::Refused(Refusal::NotFound),
        0,
    );
    assert!(matches!(early, Answer::Fault(HolderFault::Withheld)));
    let late = 100 * S - EXPIRY_MARGIN_MS;
    let near = judge(
        &record,
        &slot,
        Some(&key),
        &CHALLENGE,
        Reply::Refused(Refusal::NotFound),
        late,
    );
    assert!(matches!(near, Answer::Silent(_)));
}

#[test]
fn no_answer_or_a_refusal_about_load_blames_nobody() {
    let (record, slot, key, _) = dealt(36_000 * S);
    for reply in [
        Reply::NoAnswer("connection lost".into()),
        Reply::Refused(Refusal::RateLimited),
    ] {
        assert!(matches!(
            judge(&record, &slot, Some(&key), &CHALLENGE, reply, 0),
            Answer::Silent(_)
        ));
    }
}

#[test]
fn faults_quarantine_their_holders_once_and_a_sticky_quarantine_stays() {
    let mut peers = PeerTable::default();
    for i in 1..=3 {
        peers.enrol(node(i), "eu".into(), "op".into());
    }
    peers.get_mut(&node(3)).unwrap().quarantine = Some(Quarantine::BadShare("earlier".into()));
    let answers = vec![
        (node(1), Answer::Fault(HolderFault::BadShare("seal".into()))),
        (node(2), Answer::Fault(HolderFault::Withheld)),
        (node(3), Answer::Fault(HolderFault::Withheld)),
        (node(4), Answer::Silent("away".into())),
    ];
    assert_eq!(silent_of(&answers), vec![node(4)]);
    let labels = quarantine_faulty(&mut peers, faults_of(&answers));
    assert_eq!(labels, vec!["bad_share", "withheld_share"]);
    assert_eq!(
        peers.get_mut(&node(2)).unwrap().quarantine,
        Some(Quarantine::WithheldShare)
    );
    assert_eq!(
        peers.get_mut(&node(3)).unwrap().quarantine,
        Some(Quarantine::BadShare("earlier".into())),
        "a sticky quarantine is not replaced"
    );
}

#[test]
fn a_sweep_audits_every_holder_of_every_session_now_replacing_retries() {
    let s = [session(1, 3), session(2, 3)];
    let mut audits = HolderAudits::new(3.0);
    audits.handle_audited(s[0].session, vec![node(1)], 2, 0);
    assert_eq!(audits.due_count(1), 0);
    audits.audit_now(s.iter().map(|r| r.session), 5 * S);
    assert_eq!(audits.due_count(5 * S), 2);
    let due = audits.due(5 * S, &s, idle);
    assert_eq!(due.len(), 2);
    assert!(
        due.iter()
            .all(|o| o.attempt == 0 && o.record.holders.len() == 3)
    );
    assert_eq!(audits.due_count(5 * S), 0);
    let mut off = HolderAudits::new(0.0);
    off.audit_now(s.iter().map(|r| r.session), 0);
    assert_eq!(off.due_count(0), 0);
}

#[test]
fn after_a_restore_not_found_for_a_session_from_the_backup_is_silence_not_withholding() {
    let (mut record, slot, key, _) = dealt(36_000 * S);
    record.created_at_ms = 1_000;
    record.rotated_at_ms = 5_000;
    let not_found = || Reply::Refused(Refusal::NotFound);
    let judged = |restored: Option<u64>| {
        let reply = excuse_after_restore(&record, not_found(), restored);
        judge(&record, &slot, Some(&key), &CHALLENGE, reply, 0)
    };
    let last_commit = 5_000;
    // Never restored, or restored from a backup older than the session's last commit: the
    // holder must have the share.
    for restored in [None, Some(last_commit - 1)] {
        assert!(
            matches!(judged(restored), Answer::Fault(HolderFault::Withheld)),
            "{restored:?}"
        );
    }
    // Restored from a backup no older than that commit: the session may have rotated since.
    let Answer::Silent(why) = judged(Some(last_commit)) else {
        panic!("a holder was blamed for a share the restored record may wrongly name");
    };
    assert!(why.contains("restored backup"), "{why}");
    // Other replies are judged as always.
    assert!(matches!(
        excuse_after_restore(&record, Reply::NoAnswer("x".into()), Some(u64::MAX)),
        Reply::NoAnswer(_)
    ));
}

#[test]
fn the_serving_probe_finds_a_holder_that_proves_its_share_but_answers_fetches_not_found() {
    let (mut record, slot, _, sealed) = dealt(100 * S);
    record.boxed = true;
    let served = |index| {
        Reply::Fetched(FetchedShare::Reboxed {
            index,
            boxed: protocols::share_box::Boxed {
                ephemeral: [1; 32],
                sealed: vec![0; 48],
            },
        })
    };
    assert!(matches!(
        judge_serving(&record, &slot, served(1), 0),
        Answer::Verified
    ));
    assert!(matches!(
        judge_serving(&record, &slot, served(2), 0),
        Answer::Fault(HolderFault::BadShare(_))
    ));
    assert!(matches!(
        judge_serving(
            &record,
            &slot,
            Reply::Fetched(FetchedShare::Sealed(sealed)),
            0
        ),
        Answer::Fault(HolderFault::BadShare(_))
    ));
    let withheld = judge_serving(&record, &slot, Reply::Refused(Refusal::NotFound), 0);
    assert!(matches!(withheld, Answer::Fault(HolderFault::Withheld)));
    let late = judge_serving(
        &record,
        &slot,
        Reply::Refused(Refusal::NotFound),
        100 * S - EXPIRY_MARGIN_MS,
    );
    assert!(matches!(late, Answer::Silent(_)), "near expiry: no blame");
    // Combined with the proof: a fault in either is the verdict; both fine is fine.
    let fine = || Answer::Verified;
    assert!(matches!(
        both(fine(), Answer::Fault(HolderFault::Withheld)),
        Answer::Fault(HolderFault::Withheld)
    ));
    assert!(matches!(
        both(
            Answer::Fault(HolderFault::BadShare("x".into())),
            Answer::Silent("away".into())
        ),
        Answer::Fault(HolderFault::BadShare(_))
    ));
    assert!(matches!(
        both(fine(), Answer::Silent("away".into())),
        Answer::Silent(_)
    ));
    assert!(matches!(both(fine(), fine()), Answer::Verified));
}
