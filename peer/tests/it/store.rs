//! Behaviour of the share store through its public API, including a model-based property test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peer::store::{PutOutcome, ShareStore, StoreError, StoredShare, StoredShareInfo};
use proptest::prelude::*;
use protocols::ids::{Epoch, NodeId, SessionId};
use protocols::sealing::{SealedShare, ShareSlot};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn session(s: u8) -> SessionId {
    SessionId([s; 16])
}

/// A share for (session `s`, `epoch`); `variant` changes its bytes but not its slot.
fn share(s: u8, epoch: Epoch, variant: u8) -> SealedShare {
    SealedShare {
        slot: ShareSlot {
            session: session(s),
            epoch,
            holder: NodeId([9; 32]),
            index: 2,
        },
        nonce: [variant; 12],
        ciphertext: vec![variant ^ 0x5c; 48],
    }
}

fn temp_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shares.redb");
    (dir, path)
}

fn open(path: &Path, capacity: u32) -> ShareStore {
    ShareStore::open(path, capacity).unwrap()
}

#[test]
fn a_stored_share_reads_back_identical_after_reopening() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    assert_eq!(
        store.put(&share(1, 3, 0), 1234).unwrap(),
        PutOutcome::Stored
    );
    let want = StoredShare {
        share: share(1, 3, 0).into(),
        expires_at_ms: 1234,
    };
    assert_eq!(store.get(&session(1), 3).unwrap(), Some(want.clone()));
    assert_eq!(store.get(&session(1), 4).unwrap(), None);
    assert_eq!(store.get(&session(2), 3).unwrap(), None);
    drop(store);
    let store = open(&path, 10);
    assert_eq!(store.get(&session(1), 3).unwrap(), Some(want));
    assert_eq!(store.len().unwrap(), 1);
}

#[test]
fn putting_the_identical_share_again_is_already_stored_and_keeps_the_first_expiry() {
    let (_dir, path) = temp_path();
    let store = open(&path, 1);
    assert_eq!(store.put(&share(1, 0, 0), 10).unwrap(), PutOutcome::Stored);
    // At capacity, the identical share is still acknowledged rather than refused as Full.
    assert_eq!(
        store.put(&share(1, 0, 0), 99).unwrap(),
        PutOutcome::AlreadyStored
    );
    assert_eq!(
        store.get(&session(1), 0).unwrap().unwrap().expires_at_ms,
        10
    );
    assert_eq!(store.len().unwrap(), 1);
}

#[test]
fn a_different_share_for_an_occupied_slot_is_a_conflict_and_changes_nothing() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    store.put(&share(1, 0, 0), 10).unwrap();
    assert_eq!(
        store.put(&share(1, 0, 1), 10),
        Err(StoreError::Conflict {
            session: session(1),
            epoch: 0
        })
    );
    assert_eq!(
        store.get(&session(1), 0).unwrap().unwrap().share,
        share(1, 0, 0).into()
    );
}

#[test]
fn a_new_share_at_capacity_is_refused_as_full_until_a_slot_frees() {
    let (_dir, path) = temp_path();
    let store = open(&path, 2);
    assert_eq!(store.free_slots().unwrap(), 2);
    store.put(&share(1, 0, 0), 10).unwrap();
    store.put(&share(1, 1, 0), 10).unwrap();
    assert_eq!(store.free_slots().unwrap(), 0);
    assert_eq!(
        store.put(&share(2, 0, 0), 10),
        Err(StoreError::Full { capacity: 2 })
    );
    assert!(store.delete_epoch(&session(1), 0).unwrap());
    assert_eq!(store.put(&share(2, 0, 0), 10).unwrap(), PutOutcome::Stored);
    drop(store);
    // A smaller capacity on reopening reports no free slot rather than underflowing.
    let store = open(&path, 1);
    assert_eq!(store.free_slots().unwrap(), 0);
    assert_eq!(store.len().unwrap(), 2);
}

#[test]
fn delete_epoch_removes_only_that_epoch_of_that_session() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    for (s, e) in [(1, 0), (1, 1), (1, 2), (2, 1)] {
        store.put(&share(s, e, 0), 10).unwrap();
    }
    assert!(store.delete_epoch(&session(1), 1).unwrap());
    assert!(!store.delete_epoch(&session(1), 1).unwrap());
    assert!(!store.delete_epoch(&session(3), 0).unwrap());
    assert_eq!(store.epochs(&session(1)).unwrap(), vec![0, 2]);
    assert_eq!(store.epochs(&session(2)).unwrap(), vec![1]);
    drop(store);
    let store = open(&path, 10);
    assert_eq!(store.get(&session(1), 1).unwrap(), None);
    assert_eq!(store.len().unwrap(), 3);
}

#[test]
fn delete_expired_removes_shares_expiring_at_or_before_now() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    store.put(&share(1, 0, 0), 100).unwrap();
    store.put(&share(1, 1, 0), 200).unwrap();
    store.put(&share(2, 0, 0), 300).unwrap();
    assert_eq!(store.delete_expired(99).unwrap(), 0);
    assert_eq!(store.delete_expired(200).unwrap(), 2);
    assert_eq!(store.delete_expired(200).unwrap(), 0);
    drop(store);
    let store = open(&path, 10);
    let listed: Vec<_> = store
        .list()
        .unwrap()
        .iter()
        .map(|i| (i.session, i.epoch))
        .collect();
    assert_eq!(listed, vec![(session(2), 0)]);
}

#[test]
fn epochs_lists_one_sessions_epochs_in_ascending_order() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    for e in [7, 0, u32::MAX, 256, 1] {
        store.put(&share(5, e, 0), 10).unwrap();
    }
    store.put(&share(4, 3, 0), 10).unwrap();
    store.put(&share(6, 3, 0), 10).unwrap();
    assert_eq!(
        store.epochs(&session(5)).unwrap(),
        vec![0, 1, 7, 256, u32::MAX]
    );
    assert_eq!(store.epochs(&session(9)).unwrap(), Vec::<Epoch>::new());
}

#[test]
fn epochs_and_share_reads_the_epochs_and_only_the_wanted_share_in_one_go() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    for (e, variant) in [(2, 1), (0, 2), (9, 3)] {
        store
            .put(&share(5, e, variant), 100 + u64::from(e))
            .unwrap();
    }
    store.put(&share(6, 2, 4), 10).unwrap();
    let (held, stored) = store.epochs_and_share(&session(5), 2).unwrap();
    assert_eq!(held, vec![0, 2, 9]);
    let stored = stored.expect("epoch 2 is held");
    assert_eq!(stored.share, share(5, 2, 1).into());
    assert_eq!(stored.expires_at_ms, 102);
    let (held, stored) = store.epochs_and_share(&session(5), 3).unwrap();
    assert_eq!(held, vec![0, 2, 9]);
    assert!(stored.is_none(), "epoch 3 is not held");
    let (held, stored) = store.epochs_and_share(&session(7), 2).unwrap();
    assert!(held.is_empty() && stored.is_none());
}

#[test]
fn list_reports_every_share_by_session_then_epoch_without_ciphertext() {
    let (_dir, path) = temp_path();
    let store = open(&path, 10);
    store.put(&share(2, 0, 0), 5).unwrap();
    store.put(&share(1, 9, 0), 6).unwrap();
    assert_eq!(
        store.list().unwrap(),
        vec![
            StoredShareInfo {
                session: session(1),
                epoch: 9,
                index: 2,
                expires_at_ms: 6
            },
            StoredShareInfo {
                session: session(2),
                epoch: 0,
                index: 2,
                expires_at_ms: 5
            },
        ]
    );
}

fn assert_refused_untouched(path: &Path) {
    let before = std::fs::read(path).unwrap();
    let err = ShareStore::open(path, 10).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the refused file was modified"
    );
}

#[test]
fn a_file_of_garbage_is_refused_and_left_byte_for_byte_untouched() {
    let (_dir, path) = temp_path();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    assert_refused_untouched(&path);
    std::fs::write(&path, b"hello").unwrap();
    assert_refused_untouched(&path);
}

#[test]
fn a_file_with_redbs_magic_but_a_garbage_header_is_refused_untouched() {
    let (_dir, path) = temp_path();
    let mut bytes = vec![b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
    bytes.extend((0..80 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&path, &bytes).unwrap();
    assert_refused_untouched(&path);
}

#[test]
fn another_programs_redb_database_is_refused_untouched() {
    let (_dir, path) = temp_path();
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("accounts");
            txn.open_table(def).unwrap().insert(1, 2).unwrap();
        }
        txn.commit().unwrap();
    }
    assert_refused_untouched(&path);
}

#[test]
fn a_store_open_elsewhere_is_refused_as_locked() {
    let (_dir, path) = temp_path();
    let _first = open(&path, 10);
    assert_eq!(
        ShareStore::open(&path, 10).unwrap_err(),
        StoreError::Locked { path: path.clone() }
    );
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let (dir, _) = temp_path();
    let err = ShareStore::open(&dir.path().join("absent/shares.redb"), 1).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Put {
        s: u8,
        e: Epoch,
        variant: u8,
        exp: u64,
    },
    Get {
        s: u8,
        e: Epoch,
    },
    Delete {
        s: u8,
        e: Epoch,
    },
    Expire {
        now: u64,
    },
    Epochs {
        s: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0u32..4, 0u8..2, 0u64..10)
            .prop_map(|(s, e, variant, exp)| Op::Put { s, e, variant, exp }),
        2 => (0u8..3, 0u32..4).prop_map(|(s, e)| Op::Get { s, e }),
        2 => (0u8..3, 0u32..4).prop_map(|(s, e)| Op::Delete { s, e }),
        1 => (0u64..10).prop_map(|now| Op::Expire { now }),
        1 => (0u8..3).prop_map(|s| Op::Epochs { s }),
        1 => Just(Op::Reopen),
    ]
}

const MODEL_CAPACITY: u32 = 5;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_operations_behaves_like_a_btreemap(ops in prop::collection::vec(op(), 1..30)) {
        let (_dir, path) = temp_path();
        let mut store = open(&path, MODEL_CAPACITY);
        let mut model: BTreeMap<(u8, Epoch), (SealedShare, u64)> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { s, e, variant, exp } => {
                    let sh = share(s, e, variant);
                    let want = match model.get(&(s, e)) {
                        Some((stored, _)) if *stored == sh => Ok(PutOutcome::AlreadyStored),
                        Some(_) => Err(StoreError::Conflict { session: session(s), epoch: e }),
                        None if model.len() as u32 >= MODEL_CAPACITY => {
                            Err(StoreError::Full { capacity: MODEL_CAPACITY })
                        }
                        None => {
                            model.insert((s, e), (sh.clone(), exp));
                            Ok(PutOutcome::Stored)
                        }
                    };
                    prop_assert_eq!(store.put(&sh, exp), want);
                }
                Op::Get { s, e } => {
                    let want = model.get(&(s, e)).map(|(share, exp)| StoredShare {
                        share: share.clone().into(),
                        expires_at_ms: *exp,
                    });
                    prop_assert_eq!(store.get(&session(s), e).unwrap(), want);
                }
                Op::Delete { s, e } => {
                    let want = model.remove(&(s, e)).is_some();
                    prop_assert_eq!(store.delete_epoch(&session(s), e).unwrap(), want);
                }
                Op::Expire { now } => {
                    let before = model.len();
                    model.retain(|_, (_, exp)| *exp > now);
                    prop_assert_eq!(store.delete_expired(now).unwrap(), before - model.len());
                }
                Op::Epochs { s } => {
                    let want: Vec<Epoch> =
                        model.keys().filter(|(ms, _)| *ms == s).map(|(_, e)| *e).collect();
                    prop_assert_eq!(store.epochs(&session(s)).unwrap(), want);
                }
                Op::Reopen => {
                    drop(store);
                    store = open(&path, MODEL_CAPACITY);
                }
            }
            let want_list: Vec<StoredShareInfo> = model
                .iter()
                .map(|((s, e), (sh, exp))| StoredShareInfo {
                    session: session(*s),
                    epoch: *e,
                    index: sh.slot.index,
                    expires_at_ms: *exp,
                })
                .collect();
            prop_assert_eq!(store.list().unwrap(), want_list);
            prop_assert_eq!(store.len().unwrap(), model.len() as u32);
            prop_assert_eq!(store.free_slots().unwrap(), MODEL_CAPACITY - model.len() as u32);
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_in_the_file_never_panics_nor_yields_a_wrong_share() {
    let (dir, path) = temp_path();
    {
        let store = open(&path, 100);
        for s in 0..40 {
            store.put(&share(s, 1, 0), 7).unwrap();
        }
    }
    let original = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.redb");
    let (mut opened, mut refused) = (0, 0);
    for offset in (0..original.len()).step_by(509) {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x10;
        std::fs::write(&damaged, &bytes).unwrap();
        match ShareStore::open(&damaged, 100) {
            Err(StoreError::Corrupt { .. }) => {
                refused += 1;
                assert_eq!(std::fs::read(&damaged).unwrap(), bytes, "offset {offset}");
            }
            Err(e) => panic!("offset {offset}: {e:?}"),
            Ok(store) => {
                opened += 1;
                for s in 0..40 {
                    match store.get(&session(s), 1) {
                        Ok(Some(got)) => {
                            assert_eq!(got.share, share(s, 1, 0).into(), "offset {offset}")
                        }
                        Ok(None) | Err(StoreError::Corrupt { .. }) => {}
                        Err(e) => panic!("offset {offset}: {e:?}"),
                    }
                }
            }
        }
    }
    assert!(
        opened > 0 && refused > 0,
        "opened {opened}, refused {refused}"
    );
}
