//! Tests of what opening refuses, untouched, and of records that do not decode.

use super::super::*;
use super::{open, session, temp_path};
use protocols::ids::SessionId;

fn assert_refused_untouched(path: &Path) {
    let before = std::fs::read(path).unwrap();
    let err = CoordinatorDb::open(path).unwrap_err();
    assert!(matches!(err, DbError::Corrupt { .. }), "{err:?}");
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
    std::fs::write(&path, b"not a database").unwrap();
    assert_refused_untouched(&path);
}

#[test]
fn a_peer_share_store_and_a_coordinator_database_refuse_each_others_files_untouched() {
    let (dir, path) = temp_path();
    drop(peer::store::ShareStore::open(&path, 10).unwrap());
    assert_refused_untouched(&path);

    let ours = dir.path().join("ours.redb");
    open(&ours).put_session(&session(1, 0, 0)).unwrap();
    let before = std::fs::read(&ours).unwrap();
    let err = peer::store::ShareStore::open(&ours, 10).unwrap_err();
    assert!(
        matches!(err, peer::store::StoreError::Corrupt { .. }),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&ours).unwrap(), before);
}

#[test]
fn a_database_of_another_layout_or_with_a_retyped_table_is_refused_untouched() {
    let (_dir, path) = temp_path();
    drop(open(&path));
    {
        let raw = redb::Database::create(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        let meta: TableDefinition<&str, &str> = TableDefinition::new("meta");
        txn.open_table(meta).unwrap().insert("layout", "2").unwrap();
        txn.commit().unwrap();
    }
    assert_refused_untouched(&path);
    assert!(
        CoordinatorDb::open(&path)
            .unwrap_err()
            .to_string()
            .contains("layout")
    );

    let (_dir2, path) = temp_path();
    drop(open(&path));
    {
        let raw = redb::Database::create(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        txn.delete_table(SESSIONS).unwrap();
        let retyped: TableDefinition<u64, u64> = TableDefinition::new("sessions");
        txn.open_table(retyped).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    assert_refused_untouched(&path);
}

#[test]
fn a_record_that_does_not_decode_is_corrupt_naming_its_table_and_key() {
    let (_dir, path) = temp_path();
    let db = open(&path);
    let write_raw = |table: Records<16>, key: [u8; 16], bytes: &[u8]| {
        let txn = db.db.begin_write().unwrap();
        txn.open_table(table).unwrap().insert(&key, bytes).unwrap();
        txn.commit().unwrap();
    };
    let assert_names = |err: DbError, table: &str, key: &[u8]| {
        let DbError::Corrupt { detail, .. } = &err else {
            panic!("expected Corrupt, got {err:?}");
        };
        assert!(detail.contains(table), "{detail}");
        assert!(detail.contains(&protocols::ids::hex8(key)), "{detail}");
    };
    write_raw(SESSIONS, [7; 16], &[0xff, 0x00, 0x13]);
    assert_names(
        db.session(&SessionId([7; 16])).unwrap_err(),
        "sessions",
        &[7; 16],
    );
    assert_names(db.sessions().unwrap_err(), "sessions", &[7; 16]);
    assert!(db.delete_session(&SessionId([7; 16])).unwrap());

    let bytes = records::encode_record("session", &session(8, 0, 0)).unwrap();
    for cut in 0..bytes.len() {
        write_raw(SESSIONS, [8; 16], &bytes[..cut]);
        assert_names(
            db.session(&SessionId([8; 16])).unwrap_err(),
            "sessions",
            &[8; 16],
        );
    }
    // A whole record, filed under another session's key.
    write_raw(SESSIONS, [9; 16], &bytes);
    assert_names(
        db.session(&SessionId([9; 16])).unwrap_err(),
        "sessions",
        &[9; 16],
    );
    write_raw(PENDING_EPOCHS, [6; 16], &[0xa1, 0x61, 0x76, 0x02]);
    let err = db.pending_epochs().unwrap_err();
    assert!(err.to_string().contains("record version 2"), "{err}");
    assert_names(err, "pending_epochs", &[6; 16]);

    let txn = db.db.begin_write().unwrap();
    txn.open_table(ENROLMENTS)
        .unwrap()
        .insert(&[4; 32], &[0x80][..])
        .unwrap();
    txn.commit().unwrap();
    assert_names(db.enrolments().unwrap_err(), "enrolments", &[4; 32]);
}

#[test]
fn a_database_open_elsewhere_is_refused_as_locked() {
    let (_dir, path) = temp_path();
    let _first = open(&path);
    assert_eq!(
        CoordinatorDb::open(&path).unwrap_err(),
        DbError::Locked { path: path.clone() }
    );
}
