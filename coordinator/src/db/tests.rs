//! Tests of the coordinator database: every table's round trip, atomicity, refusals and a model check.

use super::*;
use proptest::prelude::*;
use protocols::ids::{NodeId, SessionId};
use protocols::sharing::{CommitmentBytes, Commitments};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod refusals;
mod revocation;

fn temp_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.redb");
    (dir, path)
}

fn open(path: &Path) -> CoordinatorDb {
    CoordinatorDb::open(path).unwrap()
}

/// A session record for session `s` at `epoch`; `variant` changes its contents but not its id.
fn session(s: u8, epoch: u32, variant: u8) -> SessionRecord {
    let mut r = session_writer_record(u64::from(variant));
    r.session = SessionId([s; 16]);
    r.epoch = epoch;
    r
}

fn pending(s: u8, epoch: u32) -> PendingEpoch {
    PendingEpoch {
        session: SessionId([s; 16]),
        epoch,
        holders: vec![Holder {
            node: NodeId([epoch as u8; 32]),
            index: 1,
        }],
        commitments: Commitments(vec![CommitmentBytes([epoch as u8; 32]); 2]),
        started_at_ms: u64::from(epoch) * 10,
    }
}

fn enrolment(region: &str, at: u64) -> Enrolment {
    Enrolment {
        region: region.into(),
        operator: "op".into(),
        enrolled_at_ms: at,
        share_key: None,
    }
}

fn token(region: &str, expires_at_ms: u64) -> JoinToken {
    JoinToken {
        region: region.into(),
        operator: "op-t".into(),
        expires_at_ms,
    }
}

#[test]
fn the_database_and_its_error_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CoordinatorDb>();
    assert_send_sync::<DbError>();
}

#[test]
fn secrets_round_trip_and_are_refused_a_second_time() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    assert!(db.secrets().unwrap().is_none());
    let first = CoordinatorSecrets {
        noise_static: [2; 32],
    };
    db.init_secrets(&first).unwrap();
    let second = CoordinatorSecrets {
        noise_static: [4; 32],
    };
    assert!(matches!(
        db.init_secrets(&second),
        Err(DbError::AlreadyInitialised { .. })
    ));
    drop(db);
    let db = open(&path);
    assert!(matches!(
        db.init_secrets(&second),
        Err(DbError::AlreadyInitialised { .. })
    ));
    let got = db.secrets().unwrap().unwrap();
    assert_eq!(got.noise_static, [2; 32]);
    let shown = format!("{got:?}");
    assert!(
        shown.contains("[redacted]") && !shown.contains("2, 2"),
        "{shown}"
    );
}

#[test]
fn enrolments_round_trip_are_relabelled_and_unenrolled() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.enrol(&NodeId([2; 32]), &enrolment("eu", 1)).unwrap();
    db.enrol(&NodeId([1; 32]), &enrolment("us", 2)).unwrap();
    db.enrol(&NodeId([2; 32]), &enrolment("ap", 3)).unwrap();
    drop(db);
    let db = open(&path);
    let want = vec![
        (NodeId([1; 32]), enrolment("us", 2)),
        (NodeId([2; 32]), enrolment("ap", 3)),
    ];
    assert_eq!(db.enrolments().unwrap(), want);
    assert!(db.unenrol(&NodeId([1; 32])).unwrap());
    assert!(!db.unenrol(&NodeId([1; 32])).unwrap());
    assert_eq!(db.enrolments().unwrap(), want[1..].to_vec());
}

#[test]
fn a_recorded_share_key_survives_a_relabel_a_rejoin_and_a_reopen_but_not_a_removal() {
    let (_dir, path) = temp_path();
    let node = NodeId([3; 32]);
    let pk = protocols::share_box::BoxSecret::from_uniform_bytes(&[4; 64]).public();
    {
        let db = open(&path);
        assert!(
            !db.record_share_key(&node, pk).unwrap(),
            "not enrolled: nothing written"
        );
        assert!(db.enrolments().unwrap().is_empty());
        db.enrol(&node, &enrolment("eu", 1)).unwrap();
        assert!(db.record_share_key(&node, pk).unwrap());
        db.enrol(&node, &enrolment("us", 2)).unwrap();
        db.add_join_token([7; 32], &token("ap", 100)).unwrap();
        let joined = db.redeem_join_token(&[7; 32], &node, 3).unwrap().unwrap();
        assert_eq!(joined.share_key, Some(pk));
    }
    let db = open(&path);
    let (_, e) = db.enrolments().unwrap().remove(0);
    assert_eq!((e.region.as_str(), e.share_key), ("ap", Some(pk)));
    assert!(db.unenrol(&node).unwrap());
    db.enrol(&node, &enrolment("eu", 4)).unwrap();
    assert_eq!(db.enrolments().unwrap()[0].1.share_key, None);
}

#[test]
fn an_enrolment_written_before_share_keys_reads_as_having_none() {
    // The record as a build from before share keys wrote it: no `share_key` field.
    #[derive(serde::Serialize)]
    struct Old {
        region: String,
        operator: String,
        enrolled_at_ms: u64,
    }
    let bytes = super::records::encode_record(
        "enrolment",
        &Old {
            region: "eu".into(),
            operator: "op".into(),
            enrolled_at_ms: 5,
        },
    )
    .unwrap();
    let read: Enrolment =
        super::records::decode_record(std::path::Path::new("x"), "enrolments", &[0; 32], &bytes)
            .unwrap();
    assert_eq!(read, enrolment("eu", 5));
}

#[test]
fn a_join_token_is_redeemed_once_and_enrols_the_node() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.add_join_token([7; 32], &token("eu", 100)).unwrap();
    let node = NodeId([9; 32]);
    assert_eq!(db.redeem_join_token(&[8; 32], &node, 50).unwrap(), None);
    let want = Enrolment {
        region: "eu".into(),
        operator: "op-t".into(),
        enrolled_at_ms: 99,
        share_key: None,
    };
    assert_eq!(
        db.redeem_join_token(&[7; 32], &node, 99).unwrap(),
        Some(want.clone())
    );
    assert_eq!(
        db.redeem_join_token(&[7; 32], &NodeId([5; 32]), 99)
            .unwrap(),
        None
    );
    drop(db);
    let db = open(&path);
    assert_eq!(db.redeem_join_token(&[7; 32], &node, 99).unwrap(), None);
    assert_eq!(db.enrolments().unwrap(), vec![(node, want)]);
}

#[test]
fn an_expired_join_token_is_refused_and_deleted() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.add_join_token([7; 32], &token("eu", 100)).unwrap();
    // Expired at its expiry instant, and deleted: a clock going back does not revive it.
    assert_eq!(
        db.redeem_join_token(&[7; 32], &NodeId([9; 32]), 100)
            .unwrap(),
        None
    );
    assert_eq!(
        db.redeem_join_token(&[7; 32], &NodeId([9; 32]), 1).unwrap(),
        None
    );
    assert_eq!(db.enrolments().unwrap(), vec![]);
    let txn = db.db.begin_read().unwrap();
    assert_eq!(
        txn.open_table(JOIN_TOKENS).unwrap().iter().unwrap().count(),
        0
    );
}

#[test]
fn allowed_binaries_and_requesters_round_trip_as_sets() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.allow_binary([3; 32]).unwrap();
    db.allow_binary([1; 32]).unwrap();
    db.allow_binary([3; 32]).unwrap();
    db.add_requester(&NodeId([5; 32])).unwrap();
    db.add_requester(&NodeId([4; 32])).unwrap();
    drop(db);
    let db = open(&path);
    assert_eq!(
        db.allowed_binaries().unwrap(),
        BTreeSet::from([[1; 32], [3; 32]])
    );
    assert_eq!(
        db.requesters().unwrap(),
        BTreeSet::from([NodeId([4; 32]), NodeId([5; 32])])
    );
    assert!(db.disallow_binary(&[3; 32]).unwrap());
    assert!(!db.disallow_binary(&[3; 32]).unwrap());
    assert!(db.remove_requester(&NodeId([4; 32])).unwrap());
    assert!(!db.remove_requester(&NodeId([4; 32])).unwrap());
    assert_eq!(db.allowed_binaries().unwrap(), BTreeSet::from([[1; 32]]));
    assert_eq!(db.requesters().unwrap(), BTreeSet::from([NodeId([5; 32])]));
}

#[test]
fn sessions_and_pending_epochs_read_back_identical_after_reopening() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.put_session(&session(2, 0, 1)).unwrap();
    db.put_session(&session(1, 0, 2)).unwrap();
    db.put_session(&session(2, 1, 3)).unwrap();
    db.put_pending_epoch(&pending(2, 2)).unwrap();
    db.put_pending_epoch(&pending(1, 1)).unwrap();
    drop(db);
    let db = open(&path);
    assert_eq!(
        db.session(&SessionId([2; 16])).unwrap(),
        Some(session(2, 1, 3))
    );
    assert_eq!(db.session(&SessionId([3; 16])).unwrap(), None);
    assert_eq!(
        db.sessions().unwrap(),
        vec![session(1, 0, 2), session(2, 1, 3)]
    );
    assert_eq!(
        db.pending_epochs().unwrap(),
        vec![pending(1, 1), pending(2, 2)]
    );
    assert!(db.delete_session(&SessionId([1; 16])).unwrap());
    assert!(!db.delete_session(&SessionId([1; 16])).unwrap());
    assert!(db.delete_pending_epoch(&SessionId([2; 16])).unwrap());
    assert!(!db.delete_pending_epoch(&SessionId([2; 16])).unwrap());
    assert_eq!(db.sessions().unwrap(), vec![session(2, 1, 3)]);
    assert_eq!(db.pending_epochs().unwrap(), vec![pending(1, 1)]);
}

#[test]
fn commit_epoch_stores_the_session_and_clears_only_its_pending_epoch() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.put_session(&session(1, 0, 0)).unwrap();
    db.put_pending_epoch(&pending(1, 1)).unwrap();
    db.put_pending_epoch(&pending(2, 5)).unwrap();
    db.commit_epoch(&session(1, 1, 0)).unwrap();
    drop(db);
    let db = open(&path);
    assert_eq!(
        db.session(&SessionId([1; 16])).unwrap(),
        Some(session(1, 1, 0))
    );
    assert_eq!(db.pending_epochs().unwrap(), vec![pending(2, 5)]);
}

#[test]
fn a_commit_epoch_that_fails_changes_nothing() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    db.put_session(&session(1, 0, 0)).unwrap();
    db.put_pending_epoch(&pending(1, 1)).unwrap();
    let mut huge = session(1, 1, 0);
    huge.policy.label = "x".repeat(MAX_RECORD_BYTES);
    assert!(matches!(
        db.commit_epoch(&huge),
        Err(DbError::TooLarge { .. })
    ));
    assert_eq!(
        db.session(&SessionId([1; 16])).unwrap(),
        Some(session(1, 0, 0))
    );
    assert_eq!(db.pending_epochs().unwrap(), vec![pending(1, 1)]);
}

#[test]
fn a_reader_never_sees_a_committed_epoch_alongside_its_pending_epoch() {
    let (_dir, path) = temp_path();
    let db = Arc::new(open(&path));
    db.put_session(&session(1, 0, 0)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            for epoch in 1..=30 {
                db.put_pending_epoch(&pending(1, epoch)).unwrap();
                db.commit_epoch(&session(1, epoch, 0)).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut snapshots = 0u32;
    while !done.load(Ordering::SeqCst) {
        let (current, next) = db
            .read("snapshot", |txn| {
                let key = [1u8; 16];
                let s = txn.open_table(SESSIONS).unwrap();
                let p = txn.open_table(PENDING_EPOCHS).unwrap();
                let s: SessionRecord = records::decode_record(
                    &db.path,
                    "sessions",
                    &key,
                    s.get(&key).unwrap().unwrap().value(),
                )?;
                let p = match p.get(&key).unwrap() {
                    Some(g) => Some(
                        records::decode_record::<PendingEpoch>(&db.path, "p", &key, g.value())?
                            .epoch,
                    ),
                    None => None,
                };
                Ok((s.epoch, p))
            })
            .unwrap();
        assert!(
            next.is_none_or(|n| n == current + 1),
            "epoch {current}, pending {next:?}"
        );
        snapshots += 1;
    }
    writer.join().unwrap();
    assert!(snapshots > 0);
    assert_eq!(db.session(&SessionId([1; 16])).unwrap().unwrap().epoch, 30);
}

#[derive(Clone, Debug)]
enum Op {
    Put { s: u8, epoch: u32, variant: u8 },
    Get { s: u8 },
    Delete { s: u8 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u32..3, 0u8..3)
            .prop_map(|(s, epoch, variant)| Op::Put { s, epoch, variant }),
        2 => (0u8..4).prop_map(|s| Op::Get { s }),
        2 => (0u8..4).prop_map(|s| Op::Delete { s }),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_session_puts_and_deletes_behaves_like_a_btreemap(
        ops in prop::collection::vec(op(), 1..30)
    ) {
        let (_dir, path) = temp_path();
        let mut db = open(&path);
        let mut model: BTreeMap<u8, SessionRecord> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { s, epoch, variant } => {
                    let r = session(s, epoch, variant);
                    db.put_session(&r).unwrap();
                    model.insert(s, r);
                }
                Op::Get { s } => {
                    let got = db.session(&SessionId([s; 16])).unwrap();
                    prop_assert_eq!(got, model.get(&s).cloned());
                }
                Op::Delete { s } => {
                    let want = model.remove(&s).is_some();
                    prop_assert_eq!(db.delete_session(&SessionId([s; 16])).unwrap(), want);
                }
                Op::Reopen => {
                    drop(db);
                    db = open(&path);
                }
            }
            prop_assert_eq!(db.sessions().unwrap(), model.values().cloned().collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_retired_pending_epoch_is_owed_by_its_holders_until_each_settles_even_across_reopening() {
    let (_dir, path) = temp_path();
    let db = CoordinatorDb::open(&path).unwrap();
    assert!(
        db.owed_deletions().unwrap().is_empty(),
        "no table yet: nothing owed"
    );
    db.put_pending_epoch(&pending(1, 3)).unwrap();
    assert_eq!(
        db.retire_pending_epoch(&SessionId([1; 16])).unwrap(),
        Some(pending(1, 3))
    );
    assert!(db.pending_epochs().unwrap().is_empty());
    assert_eq!(db.retire_pending_epoch(&SessionId([1; 16])).unwrap(), None);
    drop(db);
    let db = CoordinatorDb::open(&path).unwrap();
    let owed = db.owed_deletions().unwrap();
    assert_eq!(
        owed,
        vec![OwedDeletion {
            session: SessionId([1; 16]),
            epoch: 3,
            node: NodeId([3; 32]),
            prove: None,
        }]
    );
    assert!(db.settle_deletion(&owed[0]).unwrap());
    assert!(!db.settle_deletion(&owed[0]).unwrap());
    assert!(db.owed_deletions().unwrap().is_empty());
}

#[test]
fn committing_an_epoch_records_its_owed_deletions_in_the_same_transaction() {
    let (_dir, path) = temp_path();
    let db = CoordinatorDb::open(&path).unwrap();
    db.put_pending_epoch(&pending(2, 1)).unwrap();
    let owed = [
        OwedDeletion {
            session: SessionId([2; 16]),
            epoch: 0,
            node: NodeId([7; 32]),
            prove: None,
        },
        OwedDeletion {
            session: SessionId([2; 16]),
            epoch: 1,
            node: NodeId([8; 32]),
            prove: None,
        },
    ];
    db.commit_epoch_owing(&session(2, 1, 0), &owed).unwrap();
    assert!(db.pending_epochs().unwrap().is_empty());
    assert_eq!(
        db.session(&SessionId([2; 16])).unwrap(),
        Some(session(2, 1, 0))
    );
    assert_eq!(db.owed_deletions().unwrap(), owed.to_vec());
}

#[test]
fn deleting_an_expired_session_drops_the_deletions_owed_for_it_and_no_others() {
    let (_dir, path) = temp_path();
    let db = CoordinatorDb::open(&path).unwrap();
    let owed = |s: u8, epoch: u32, node: u8| OwedDeletion {
        session: SessionId([s; 16]),
        epoch,
        node: NodeId([node; 32]),
        prove: None,
    };
    for s in [2u8, 3] {
        db.put_pending_epoch(&pending(s, 1)).unwrap();
        let rows = [owed(s, 0, 7), owed(s, 0, 0xff), owed(s, 1, 8)];
        db.commit_epoch_owing(&session(s, 1, 0), &rows).unwrap();
    }
    assert_eq!(db.owed_deletions().unwrap().len(), 6);
    assert!(db.delete_session(&SessionId([2; 16])).unwrap());
    assert_eq!(
        db.owed_deletions().unwrap(),
        vec![owed(3, 0, 7), owed(3, 0, 0xff), owed(3, 1, 8)]
    );
    drop(db);
    let db = CoordinatorDb::open(&path).unwrap();
    assert_eq!(db.owed_deletions().unwrap().len(), 3, "durable");
    assert!(db.session(&SessionId([3; 16])).unwrap().is_some());
}
