//! A data directory gathered, sealed, opened and its database restored into a new one holds
//! the same rows; contents that would not make a coordinator are refused before a restore.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::db::fuzzing::raw_contents;
use crate::db::{AuditEntry, CoordinatorDb, CoordinatorSecrets, session_writer_record};
use crate::master_key::Keyring;
use protocols::identity::NodeKey;
use protocols::sealing::{MasterKeyId, SealingMasterKey};

/// A data directory with every table in use: secrets, an enrolment, a join token, a binary, a
/// requester, a removed requester, sessions, an owed deletion and audit entries.
fn data_dir() -> (tempfile::TempDir, CoordinatorDb, MasterKeyId) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    peer::secret_file::write_new(&dir.join("identity.key"), &[4; 32]).unwrap();
    let key = crate::master_key::create(&dir.join("master.key")).unwrap();
    std::fs::write(
        dir.join("coordinator.toml"),
        toml::to_string(&crate::config::CoordinatorConfig::new(
            dir.to_path_buf(),
            vec!["/ip4/127.0.0.1/tcp/7400".into()],
        ))
        .unwrap(),
    )
    .unwrap();
    let db = CoordinatorDb::open(&dir.join("coordinator.redb")).unwrap();
    db.init_secrets(&CoordinatorSecrets {
        noise_static: [2; 32],
    })
    .unwrap();
    let node = NodeKey::from_secret_bytes(&[5; 32]).node_id();
    db.enrol(
        &node,
        &crate::db::Enrolment {
            region: "eu".into(),
            operator: "a".into(),
            enrolled_at_ms: 1,
            share_key: None,
        },
    )
    .unwrap();
    db.add_join_token(
        [3; 32],
        &crate::db::JoinToken {
            region: "eu".into(),
            operator: "b".into(),
            expires_at_ms: 9,
        },
    )
    .unwrap();
    db.allow_binary([6; 32]).unwrap();
    db.add_requester(&node).unwrap();
    for i in 0..3 {
        let mut s = session_writer_record(i);
        s.sealed_under = Some(key);
        s.creator = node;
        db.put_session(&s).unwrap();
    }
    db.revoke_requester(&node).unwrap();
    let revoked = db
        .revoke_session(&session_writer_record(0).session)
        .unwrap();
    assert!(revoked.is_some());
    db.append_audit(AuditEntry::new(5, "tester", "allow", "x", ""))
        .unwrap();
    (tmp, db, key)
}

#[test]
fn a_backup_restores_every_row_of_every_table_into_a_new_database() {
    let (tmp, db, key) = data_dir();
    let snapshot = db.snapshot().unwrap();
    assert!(!db.owed_deletions().unwrap().is_empty());
    assert!(snapshot.rows_of("owed_deletions") > 0);
    assert!(snapshot.rows_of("revoked_requesters") > 0);
    let config = tmp.path().join("coordinator.toml");
    let (contents, summary) = gather(tmp.path(), Some(&config), snapshot, 1234).unwrap();
    assert_eq!(summary.master_key, key);
    assert_eq!(summary.sessions, 2);
    assert_eq!(
        summary.peer_id,
        peer::identity::peer_id(&NodeKey::from_secret_bytes(&[4; 32]).node_id())
            .unwrap()
            .to_string()
    );
    let file = seal_contents(&contents, b"a passphrase of some length").unwrap();
    let (header, opened, _) = open_contents(&file, b"a passphrase of some length").unwrap();
    assert_eq!(header.master_key, key);
    assert_eq!(header.created_at_ms, 1234);
    assert_eq!(header.kdf, KdfParams::WRITTEN);
    assert_eq!(opened.identity_key, [4; 32]);
    assert_eq!(opened.keyring().unwrap().ids(), [key]);
    assert!(opened.config().unwrap().is_some());

    let other = tempfile::tempdir().unwrap();
    let restored = CoordinatorDb::open(&other.path().join("coordinator.redb")).unwrap();
    restored.restore_snapshot(&opened.database).unwrap();
    restored.check_restored().unwrap();
    assert_eq!(raw_contents(&restored).unwrap(), raw_contents(&db).unwrap());
    assert_eq!(restored.audit_since(0).unwrap(), db.audit_since(0).unwrap());
    // A database is restored into only once.
    let again = restored.restore_snapshot(&opened.database).unwrap_err();
    assert!(
        again.to_string().contains("already holds a coordinator"),
        "{again}"
    );
}

#[test]
fn a_snapshot_with_a_bad_key_or_an_unknown_table_writes_nothing() {
    let (_tmp, db, _) = data_dir();
    let good = db.snapshot().unwrap();
    let mut bad_key = good.clone();
    let sessions = bad_key
        .tables
        .iter_mut()
        .find(|t| t.name == "sessions")
        .unwrap();
    sessions.rows[0].key.push(0);
    let mut unknown = good.clone();
    unknown.tables.push(crate::db::SnapshotTable {
        name: "nonsense".into(),
        rows: Vec::new(),
    });
    for snap in [bad_key, unknown] {
        let other = tempfile::tempdir().unwrap();
        let fresh = CoordinatorDb::open(&other.path().join("c.redb")).unwrap();
        let before = raw_contents(&fresh).unwrap();
        let err = fresh.restore_snapshot(&snap).unwrap_err();
        assert!(
            matches!(err, crate::db::DbError::BadSnapshot { .. }),
            "{err}"
        );
        assert_eq!(raw_contents(&fresh).unwrap(), before);
    }
}

#[test]
fn contents_whose_sessions_need_a_key_they_do_not_hold_are_refused() {
    let (tmp, db, _) = data_dir();
    let mut stray = session_writer_record(7);
    stray.sealed_under = Some(MasterKeyId([0xab; 8]));
    db.put_session(&stray).unwrap();
    let err = gather(tmp.path(), None, db.snapshot().unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("abababababababab"), "{err}");
    // Contents whose master key file is not one.
    let (mut contents, _) = {
        let (tmp2, db2, _) = data_dir();
        gather(tmp2.path(), None, db2.snapshot().unwrap(), 1).unwrap()
    };
    contents.master_key = vec![1, 2, 3];
    assert!(matches!(contents.check(), Err(BackupError::Contents(_))));
}

#[test]
fn contents_sealed_under_a_rotation_keep_both_keys() {
    let (tmp, db, key) = data_dir();
    let path = tmp.path().join("master.key");
    let ring = crate::master_key::read(&path).unwrap();
    let rotated: Keyring = ring.rotated(SealingMasterKey::from_bytes([9; 32])).unwrap();
    crate::master_key::replace(&path, &rotated).unwrap();
    let (_, summary) = gather(tmp.path(), None, db.snapshot().unwrap(), 1).unwrap();
    assert_eq!(summary.retiring, Some(key));
    assert_eq!(summary.master_key, rotated.current().id());
}

#[test]
fn contents_debug_and_snapshot_debug_print_no_secret() {
    let (tmp, db, _) = data_dir();
    let snapshot = db.snapshot().unwrap();
    assert!(format!("{snapshot:?}").contains("[redacted]"));
    let (contents, _) = gather(tmp.path(), None, snapshot, 1).unwrap();
    assert_eq!(format!("{contents:?}"), "BackupContents([redacted])");
}

#[test]
fn a_restore_mark_is_kept_read_back_and_carried_by_a_later_backup() {
    let (_tmp, db, _) = data_dir();
    assert_eq!(db.restored_from().unwrap(), None);
    db.mark_restored(42).unwrap();
    assert_eq!(
        db.restored_from().unwrap().map(|r| r.backup_created_at_ms),
        Some(42)
    );
    let snapshot = db.snapshot().unwrap();
    assert_eq!(snapshot.rows_of("restored"), 1);
    let other = tempfile::tempdir().unwrap();
    let restored = CoordinatorDb::open(&other.path().join("coordinator.redb")).unwrap();
    restored.restore_snapshot(&snapshot).unwrap();
    restored.mark_restored(99).unwrap();
    assert_eq!(
        restored
            .restored_from()
            .unwrap()
            .map(|r| r.backup_created_at_ms),
        Some(99)
    );
}
