//! The coordinator database's record codec (`coordinator::db::fuzzing`, what every read of the
//! secrets, enrolments, join tokens, sessions and pending epochs tables goes through): arbitrary
//! bytes give `DbError::Corrupt` naming the table and key, never a panic; a record that decodes
//! encodes and decodes back to itself; a session or pending epoch is accepted only under its own
//! session's key.
#![no_main]

use coordinator::db::fuzzing::{check_filed_under, decode_stored_record, encode_stored_record};
use coordinator::db::{
    CoordinatorSecrets, DbError, Enrolment, JoinToken, PendingEpoch, SessionRecord,
};
use libfuzzer_sys::fuzz_target;
use protocols::ids::SessionId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::path::Path;

const PATH: &str = "/fuzz/coordinator.redb";

fn decode<T: DeserializeOwned>(table: &str, key: &[u8], bytes: &[u8]) -> Option<T> {
    match decode_stored_record::<T>(Path::new(PATH), table, key, bytes) {
        Ok(record) => Some(record),
        Err(DbError::Corrupt { path, detail }) => {
            assert_eq!(path, Path::new(PATH));
            assert!(
                detail.starts_with(&format!("record in table {table} at key ")),
                "error does not name the table and key: {detail}"
            );
            None
        }
        Err(e) => panic!("a {table} record that does not decode is not Corrupt: {e:?}"),
    }
}

/// Decodes as `T`; a decoded record must survive encode → decode unchanged.
fn decode_checked<T>(table: &str, key: &[u8], bytes: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let record = decode::<T>(table, key, bytes)?;
    if let Ok(again) = encode_stored_record(&record) {
        let back = decode::<T>(table, key, &again)
            .unwrap_or_else(|| panic!("{table}: our own encoding does not decode"));
        assert_eq!(back, record, "{table}: encode/decode changed the record");
    }
    Some(record)
}

fn check_session_key(table: &str, found: &SessionId) {
    let path = Path::new(PATH);
    assert!(check_filed_under(path, table, &found.0, found).is_ok());
    let mut other = found.0;
    other[15] ^= 0x80;
    assert!(
        matches!(
            check_filed_under(path, table, &other, found),
            Err(DbError::Corrupt { .. })
        ),
        "{table}: a record was accepted under another session's key"
    );
}

fuzz_target!(|data: &[u8]| {
    let key = [0x5a; 32];
    if let Some(s) = decode_checked::<SessionRecord>("sessions", &key[..16], data) {
        check_session_key("sessions", &s.session);
    }
    if let Some(p) = decode_checked::<PendingEpoch>("pending_epochs", &key[..16], data) {
        check_session_key("pending_epochs", &p.session);
    }
    decode_checked::<Enrolment>("enrolments", &key, data);
    decode_checked::<JoinToken>("join_tokens", &key, data);
    if let Some(secrets) = decode::<CoordinatorSecrets>("secrets", b"coordinator", data) {
        assert_eq!(format!("{secrets:?}"), "CoordinatorSecrets([redacted])");
        if let Ok(again) = encode_stored_record(&secrets) {
            let back = decode::<CoordinatorSecrets>("secrets", b"coordinator", &again)
                .expect("secrets: our own encoding does not decode");
            assert!(
                back.noise_static == secrets.noise_static,
                "secrets: encode/decode changed them"
            );
        }
    }
});
