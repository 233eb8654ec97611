//! Tests that reach inside the store: records damaged in the file, limits and thread-safety.

use super::*;
use protocols::ids::NodeId;

fn share(session: u8, epoch: Epoch) -> SealedShare {
    SealedShare {
        slot: ShareSlot {
            session: SessionId([session; 16]),
            epoch,
            holder: NodeId([1; 32]),
            index: 3,
        },
        nonce: [4; 12],
        ciphertext: vec![5; 48],
    }
}

fn store() -> (tempfile::TempDir, ShareStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ShareStore::open(&dir.path().join("shares.redb"), 10).unwrap();
    (dir, store)
}

/// Writes raw bytes under the key of (session, epoch), bypassing the record encoding.
fn write_raw(store: &ShareStore, session: u8, epoch: Epoch, bytes: &[u8]) {
    let txn = store.db.begin_write().unwrap();
    {
        let mut table = txn.open_table(SHARES).unwrap();
        table
            .insert(&record::key(&SessionId([session; 16]), epoch), bytes)
            .unwrap();
    }
    txn.commit().unwrap();
}

fn assert_corrupt_naming_key(err: StoreError, session: u8, epoch: Epoch) {
    let StoreError::Corrupt { detail, .. } = &err else {
        panic!("expected Corrupt, got {err:?}");
    };
    let hex = protocols::ids::hex8(&[session; 16]);
    assert!(detail.contains(&hex), "{detail}");
    assert!(detail.contains(&format!("epoch {epoch}")), "{detail}");
}

#[test]
fn share_store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ShareStore>();
    assert_send_sync::<StoreError>();
}

#[test]
fn a_record_that_is_not_cbor_is_reported_as_corrupt_naming_its_key() {
    let (_dir, store) = store();
    write_raw(&store, 7, 2, &[0xff, 0x00, 0x13]);
    assert_corrupt_naming_key(store.get(&SessionId([7; 16]), 2).unwrap_err(), 7, 2);
    assert_corrupt_naming_key(store.list().unwrap_err(), 7, 2);
    assert_corrupt_naming_key(store.delete_expired(u64::MAX).unwrap_err(), 7, 2);
    assert_corrupt_naming_key(store.put(&share(7, 2), 1).unwrap_err(), 7, 2);
    // Keys alone are still readable, and the damaged record can be deleted.
    assert_eq!(store.epochs(&SessionId([7; 16])).unwrap(), vec![2]);
    assert!(store.delete_epoch(&SessionId([7; 16]), 2).unwrap());
    assert_eq!(store.list().unwrap(), vec![]);
}

#[test]
fn a_truncated_record_is_reported_as_corrupt_not_a_panic() {
    let (_dir, store) = store();
    let bytes = record::encode_record(&share(7, 2).into(), 99).unwrap();
    for cut in 0..bytes.len() {
        write_raw(&store, 7, 2, &bytes[..cut]);
        assert_corrupt_naming_key(store.get(&SessionId([7; 16]), 2).unwrap_err(), 7, 2);
    }
}

#[test]
fn a_record_of_an_unknown_version_is_reported_as_corrupt() {
    #[derive(serde::Serialize)]
    struct Future<'a> {
        v: u16,
        share: &'a SealedShare,
        expires_at_ms: u64,
    }
    let (_dir, store) = store();
    let bytes = protocols::wire::encode(&Future {
        v: 3,
        share: &share(7, 2),
        expires_at_ms: 1,
    });
    write_raw(&store, 7, 2, &bytes);
    let err = store.get(&SessionId([7; 16]), 2).unwrap_err();
    assert!(err.to_string().contains("record version 3"), "{err}");
}

#[test]
fn a_record_filed_under_another_slot_is_reported_as_corrupt() {
    let (_dir, store) = store();
    let bytes = record::encode_record(&share(8, 2).into(), 1).unwrap();
    write_raw(&store, 7, 2, &bytes);
    assert_corrupt_naming_key(store.get(&SessionId([7; 16]), 2).unwrap_err(), 7, 2);
}

#[test]
fn an_oversized_share_is_refused_before_writing() {
    let (_dir, store) = store();
    let mut big = share(1, 0);
    big.ciphertext = vec![0; MAX_RECORD_BYTES];
    assert!(matches!(
        store.put(&big, 1),
        Err(StoreError::TooLarge {
            max: MAX_RECORD_BYTES,
            ..
        })
    ));
    assert_eq!(store.len().unwrap(), 0);
}

#[test]
fn keys_sort_by_session_then_epoch() {
    let a = record::key(&SessionId([1; 16]), u32::MAX);
    let b = record::key(&SessionId([2; 16]), 0);
    let c = record::key(&SessionId([2; 16]), 256);
    assert!(a < b && b < c);
    assert_eq!(record::split_key(&c), (SessionId([2; 16]), 256));
}

#[test]
fn puts_from_several_threads_through_an_arc_all_land() {
    let (_dir, store) = store();
    let store = std::sync::Arc::new(store);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for e in 0..2 {
                    assert_eq!(store.put(&share(t, e), 1).unwrap(), PutOutcome::Stored);
                    // Every thread also races on one shared slot.
                    let outcome = store.put(&share(9, 0), 1).unwrap();
                    assert!(matches!(
                        outcome,
                        PutOutcome::Stored | PutOutcome::AlreadyStored
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.len().unwrap(), 9);
    assert_eq!(store.free_slots().unwrap(), 1);
}

#[test]
fn fuzzing_entry_point_decodes_what_the_store_wrote_and_names_the_key_otherwise() {
    let (_dir, store) = store();
    let s = share(7, 2);
    store.put(&s, 99).unwrap();
    let key = record::key(&s.slot.session, 2);
    let bytes = {
        let txn = store.db.begin_read().unwrap();
        let table = txn.open_table(SHARES).unwrap();
        table.get(&key).unwrap().unwrap().value().to_vec()
    };
    let path = store.path().to_path_buf();
    assert_eq!(
        decode_stored_record(&path, &key, &bytes).unwrap(),
        (s.into(), 99)
    );
    let other = record::key(&SessionId([7; 16]), 3);
    assert_corrupt_naming_key(
        decode_stored_record(&path, &other, &bytes).unwrap_err(),
        7,
        3,
    );
    assert_corrupt_naming_key(
        decode_stored_record(&path, &key, &[0xff; 9]).unwrap_err(),
        7,
        2,
    );
}
