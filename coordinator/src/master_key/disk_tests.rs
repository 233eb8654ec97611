//! `master.key` at start, on real files and a real database: a key still in the database is
//! moved out (file first, database after) and every crash point between the two finishes the
//! move at the next start; a missing, too open, foreign or mismatched file stops the start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::db::fuzzing::raw_contents;
use crate::db::session_writer_record;

struct Dir {
    _tmp: tempfile::TempDir,
    key_path: PathBuf,
    db: CoordinatorDb,
}

/// A data directory whose database was written before decision 0046: the sealing master key
/// `[7; 32]` in the secrets record and two sessions without a key id.
fn legacy_dir() -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let db = CoordinatorDb::open(&tmp.path().join("coordinator.redb")).unwrap();
    db.init_legacy_secrets([7; 32], [8; 32]).unwrap();
    for i in 0..2 {
        db.put_session(&session_writer_record(i)).unwrap();
    }
    Dir {
        key_path: tmp.path().join("master.key"),
        _tmp: tmp,
        db,
    }
}

fn legacy_id() -> MasterKeyId {
    SealingMasterKey::from_bytes([7; 32]).id()
}

#[test]
fn a_key_in_the_database_moves_into_a_0600_file_and_out_of_the_database_with_sessions_stamped() {
    let d = legacy_dir();
    let ring = open(&d.key_path, &d.db).unwrap();
    assert_eq!(ring.current().id(), legacy_id());
    assert!(ring.retiring().is_none());
    let mode = std::fs::metadata(&d.key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(read(&d.key_path).unwrap().ids(), [legacy_id()]);
    assert!(d.db.legacy_sealing_master().unwrap().is_none());
    // The rest of the secrets record is kept.
    assert_eq!(d.db.secrets().unwrap().unwrap().noise_static, [8; 32]);
    for s in d.db.sessions().unwrap() {
        assert_eq!(s.sealed_under, Some(legacy_id()));
    }
    // A second start changes nothing.
    let before = raw_contents(&d.db).unwrap();
    let again = open(&d.key_path, &d.db).unwrap();
    assert_eq!(again.ids(), [legacy_id()]);
    assert_eq!(raw_contents(&d.db).unwrap(), before);
}

#[test]
fn a_crash_after_the_file_and_before_the_database_is_finished_at_the_next_start() {
    let d = legacy_dir();
    // The first step alone, as a crash right after it leaves it.
    let ring = Keyring::single(SealingMasterKey::from_bytes([7; 32]));
    secret_file::write_new(&d.key_path, &ring.encode()).unwrap();
    assert!(d.db.legacy_sealing_master().unwrap().is_some());
    let opened = open(&d.key_path, &d.db).unwrap();
    assert_eq!(opened.ids(), [legacy_id()]);
    assert!(d.db.legacy_sealing_master().unwrap().is_none());
    assert!(
        d.db.sessions()
            .unwrap()
            .iter()
            .all(|s| s.sealed_under == Some(legacy_id()))
    );
}

#[test]
fn a_crash_before_the_file_is_complete_leaves_the_key_in_the_database_and_the_start_redoes_it() {
    let d = legacy_dir();
    // `write_new` writes a temporary file and links it in only once synced: a crash before the
    // link leaves no master.key (and a stray temporary file, which is ignored).
    std::fs::write(
        d.key_path
            .with_file_name(".master.key.0123456789abcdef.tmp"),
        b"ESMK",
    )
    .unwrap();
    let opened = open(&d.key_path, &d.db).unwrap();
    assert_eq!(opened.ids(), [legacy_id()]);
    assert!(d.db.legacy_sealing_master().unwrap().is_none());
}

#[test]
fn a_file_holding_another_key_than_the_database_stops_the_start_and_changes_nothing() {
    let d = legacy_dir();
    let other = Keyring::single(SealingMasterKey::from_bytes([9; 32]));
    secret_file::write_new(&d.key_path, &other.encode()).unwrap();
    let before = raw_contents(&d.db).unwrap();
    let err = open(&d.key_path, &d.db).unwrap_err();
    assert!(matches!(err, MasterKeyError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains(&legacy_id().to_string()), "{err}");
    assert_eq!(raw_contents(&d.db).unwrap(), before);
    assert_eq!(read(&d.key_path).unwrap().ids(), other.ids());
}

#[test]
fn a_missing_file_with_no_key_in_the_database_is_named_with_what_to_do() {
    let d = legacy_dir();
    open(&d.key_path, &d.db).unwrap();
    std::fs::remove_file(&d.key_path).unwrap();
    let err = open(&d.key_path, &d.db).unwrap_err();
    assert!(matches!(err, MasterKeyError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("coordinator restore"), "{err}");
}

#[test]
fn a_file_others_can_read_or_that_is_not_a_key_file_is_refused() {
    let d = legacy_dir();
    open(&d.key_path, &d.db).unwrap();
    std::fs::set_permissions(&d.key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = open(&d.key_path, &d.db).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} has mode 640; a master key file must be 0600",
            d.key_path.display()
        )
    );
    std::fs::remove_file(&d.key_path).unwrap();
    secret_file::write_new(&d.key_path, &[0u8; 38]).unwrap();
    assert!(matches!(
        open(&d.key_path, &d.db).unwrap_err(),
        MasterKeyError::Malformed { .. }
    ));
    std::fs::remove_file(&d.key_path).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &d.key_path).unwrap();
    assert!(matches!(
        open(&d.key_path, &d.db).unwrap_err(),
        MasterKeyError::NotAFile { .. }
    ));
}

#[test]
fn a_session_sealed_under_a_key_the_file_does_not_hold_stops_the_start() {
    let d = legacy_dir();
    open(&d.key_path, &d.db).unwrap();
    let mut stray = session_writer_record(5);
    stray.sealed_under = Some(MasterKeyId([0xee; 8]));
    d.db.put_session(&stray).unwrap();
    let err = open(&d.key_path, &d.db).unwrap_err();
    assert!(matches!(err, MasterKeyError::UnknownKey { .. }), "{err}");
    assert!(err.to_string().contains("eeeeeeeeeeeeeeee"), "{err}");
}

#[test]
fn a_rotation_file_opens_sessions_under_either_key_and_is_replaced_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("master.key");
    let db = CoordinatorDb::open(&tmp.path().join("coordinator.redb")).unwrap();
    let first = create(&path).unwrap();
    let ring = read(&path).unwrap();
    assert_eq!(ring.current().id(), first);
    let rotated = ring.rotated(SealingMasterKey::from_bytes([3; 32])).unwrap();
    replace(&path, &rotated).unwrap();
    let mut old = session_writer_record(1);
    old.sealed_under = Some(first);
    db.put_session(&old).unwrap();
    let opened = open(&path, &db).unwrap();
    assert_eq!(opened.ids(), rotated.ids());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // `create` never writes over a key.
    assert!(matches!(create(&path), Err(MasterKeyError::Write(_))));
    assert_eq!(read(&path).unwrap().ids(), rotated.ids());
}

#[test]
fn a_session_opens_under_the_key_it_names_or_the_current_one_and_not_under_an_erased_one() {
    let ring = Keyring::single(SealingMasterKey::from_bytes([2; 32]));
    let old = ring.current().id();
    let rotated = ring.rotated(SealingMasterKey::from_bytes([3; 32])).unwrap();
    let new = rotated.current().id();
    let id_of = |k: Option<&crate::master_key::MasterKey>| k.map(|k| k.id());
    assert_eq!(id_of(rotated.for_session(None)), Some(new));
    assert_eq!(id_of(rotated.for_session(Some(&old))), Some(old));
    let erased = rotated.without_retiring();
    assert_eq!(id_of(erased.for_session(Some(&old))), None);
    assert_eq!(id_of(erased.for_session(Some(&new))), Some(new));
}

#[test]
fn a_retiring_key_counts_as_in_use_while_a_placement_holds_it_and_is_gone_once_erased() {
    let shared = crate::master_key::SharedKeyring::new(Keyring::single(
        SealingMasterKey::from_bytes([2; 32]),
    ));
    assert!(shared.retiring_key().is_none());
    let old = shared.get().current().id();
    let held = shared.sealing_key();
    shared.set(
        shared
            .get()
            .rotated(SealingMasterKey::from_bytes([3; 32]))
            .unwrap(),
    );
    assert_eq!(shared.retiring_key(), Some((old, true)));
    assert_ne!(
        shared.sealing_key().id(),
        old,
        "new shares are sealed under the new key"
    );
    drop(held);
    assert_eq!(shared.retiring_key(), Some((old, false)));
    shared.set(shared.get().without_retiring());
    assert!(shared.retiring_key().is_none());
}
