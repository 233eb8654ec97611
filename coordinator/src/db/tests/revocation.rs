//! Revocation and the audit trail: what is taken back, what is owed, and what is kept.

use super::*;

#[test]
fn revoking_a_session_removes_it_and_every_holder_owes_its_deletion_in_one_step() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    let s = session(1, 3, 0);
    db.put_session(&s).unwrap();
    db.put_session(&session(2, 0, 1)).unwrap();
    db.put_pending_epoch(&pending(1, 4)).unwrap();

    let revoked = db.revoke_session(&s.session).unwrap().unwrap();
    assert_eq!(revoked, s);
    assert_eq!(db.session(&s.session).unwrap(), None);
    assert!(db.pending_epochs().unwrap().is_empty());
    let owed = db.owed_deletions().unwrap();
    let mut expected: Vec<OwedDeletion> = s
        .holders
        .iter()
        .map(|h| OwedDeletion {
            session: s.session,
            epoch: 3,
            node: h.node,
            prove: None,
        })
        .collect();
    expected.extend(OwedDeletion::of_pending(&pending(1, 4)));
    expected.sort();
    assert_eq!(owed, expected);
    // The other session is untouched; the owed deletions survive a reopen.
    drop(db);
    let db = open(&path);
    assert!(db.session(&SessionId([2; 16])).unwrap().is_some());
    assert_eq!(db.owed_deletions().unwrap(), expected);
}

#[test]
fn revoking_an_unknown_session_finds_nothing_and_writes_nothing() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.put_session(&session(2, 0, 1)).unwrap();
    let before = fuzzing::raw_contents(&db).unwrap();
    assert_eq!(db.revoke_session(&SessionId([9; 16])).unwrap(), None);
    assert_eq!(fuzzing::raw_contents(&db).unwrap(), before);
}

#[test]
fn a_removed_requester_is_revoked_even_where_a_session_names_it_and_adding_it_again_restores_it() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    let (authorised, named, stranger) = (NodeId([1; 32]), NodeId([0x33; 32]), NodeId([7; 32]));
    db.add_requester(&authorised).unwrap();
    // session_writer_record names 0x33 as a requester of the session.
    db.put_session(&session(5, 0, 0)).unwrap();

    let before = fuzzing::raw_contents(&db).unwrap();
    assert!(
        !db.revoke_requester(&stranger).unwrap(),
        "an unknown requester was found"
    );
    assert_eq!(
        fuzzing::raw_contents(&db).unwrap(),
        before,
        "a refused removal wrote"
    );

    assert!(db.revoke_requester(&authorised).unwrap());
    assert!(db.revoke_requester(&named).unwrap());
    assert!(
        db.revoke_requester(&authorised).unwrap(),
        "removing twice is not an error"
    );
    assert!(db.requesters().unwrap().is_empty());
    assert!(db.requester_revoked(&authorised).unwrap());
    assert!(db.requester_revoked(&named).unwrap());
    assert!(!db.requester_revoked(&stranger).unwrap());
    assert_eq!(
        db.revoked_requesters().unwrap(),
        BTreeSet::from([authorised, named])
    );

    db.add_requester(&authorised).unwrap();
    assert!(!db.requester_revoked(&authorised).unwrap());
    assert_eq!(db.requesters().unwrap(), BTreeSet::from([authorised]));
}

#[test]
fn audit_entries_are_numbered_in_order_filtered_by_time_and_trimmed_to_the_newest() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    assert!(db.audit_since(0).unwrap().is_empty());
    for i in 0..5u64 {
        let e = db
            .append_audit_keeping(
                AuditEntry::new(1_000 * i, "operator", format!("act {i}"), "subj", ""),
                3,
            )
            .unwrap();
        assert_eq!(e.seq, i + 1);
    }
    let kept = db.audit_since(0).unwrap();
    let actions: Vec<&str> = kept.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["act 2", "act 3", "act 4"],
        "the newest three, oldest first"
    );
    assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
    let recent = db.audit_since(3_000).unwrap();
    assert_eq!(recent.len(), 2);
    drop(db);
    let db = open(&path);
    let e = db
        .append_audit(AuditEntry::new(9_000, "peer x", "join", "x", "r/o"))
        .unwrap();
    assert_eq!(e.seq, 6, "numbering continues after a reopen");
}
