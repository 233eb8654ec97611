//! The peer share store's record decoder (`peer::store::decode_stored_record`, what every store
//! read goes through), on a key and a value from the input: arbitrary bytes give
//! `StoreError::Corrupt` naming the key, never a panic; a record that decodes holds the share of
//! the slot its key names, and decodes the same under that key only. Input layout:
//! `key[20] ‖ record`.
#![no_main]

use fuzz_support::check_roundtrip;
use libfuzzer_sys::fuzz_target;
use peer::store::{RECORD_KEY_LEN, StoreError, decode_stored_record};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((key, record)) = data.split_first_chunk::<RECORD_KEY_LEN>() else {
        return;
    };
    let path = Path::new("/fuzz/shares.redb");
    match decode_stored_record(path, key, record) {
        Ok((share, expires_at_ms)) => {
            assert_eq!(
                &share.slot().session.0[..],
                &key[..16],
                "record filed under another session"
            );
            assert_eq!(
                share.slot().epoch.to_be_bytes(),
                key[16..],
                "record filed under another epoch"
            );
            std::hint::black_box((format!("{share:?}"), expires_at_ms));
            match &share {
                peer::store::HeldShare::Sealed(s) => {
                    check_roundtrip(s, "SealedShare in a store record")
                }
                peer::store::HeldShare::Boxed(b) => {
                    check_roundtrip(b, "BoxedShare in a store record")
                }
            }
            let mut other = *key;
            other[0] ^= 1;
            assert!(
                decode_stored_record(path, &other, record).is_err(),
                "a record decoded under another session's key"
            );
        }
        Err(StoreError::Corrupt { path: at, detail }) => {
            assert_eq!(at, path, "error names another file");
            assert!(
                detail.starts_with("record at session "),
                "error does not name the key: {detail}"
            );
        }
        Err(e) => panic!("a record that does not decode is not Corrupt: {e:?}"),
    }
});
