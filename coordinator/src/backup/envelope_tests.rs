//! The envelope's refusals: every altered, truncated or padded file, a wrong passphrase and a
//! hostile header are refused by name, and nothing panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

/// Cheap parameters: the tests are about the format, not the cost.
const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};
const PASS: &[u8] = b"correct horse battery staple";
const KEY_ID: MasterKeyId = MasterKeyId([7; 8]);

fn sealed(plain: &[u8]) -> Vec<u8> {
    seal(
        plain,
        PASS,
        FAST,
        [1; 16],
        [2; 12],
        KEY_ID,
        1_700_000_000_000,
    )
    .unwrap()
}

#[test]
fn a_backup_opens_with_its_passphrase_and_shows_its_header() {
    let file = sealed(b"contents");
    assert_eq!(&file[..8], MAGIC);
    assert_eq!(file.len(), HEADER_LEN + 8 + 16);
    let (header, plain) = open(&file, PASS).unwrap();
    assert_eq!(&plain[..], b"contents");
    assert_eq!(header.master_key, KEY_ID);
    assert_eq!(header.created_at_ms, 1_700_000_000_000);
    assert_eq!(header.kdf, FAST);
    assert_eq!(Header::parse(&file).unwrap(), header);
}

#[test]
fn the_written_parameters_are_rfc_9106s_second_option_and_within_the_limits() {
    assert_eq!(KdfParams::WRITTEN.m_kib, 65_536);
    assert_eq!((KdfParams::WRITTEN.t, KdfParams::WRITTEN.p), (3, 4));
    assert!(KdfParams::WRITTEN.within_limits());
}

#[test]
fn a_wrong_passphrase_is_named_as_such() {
    let file = sealed(b"contents");
    assert_eq!(
        open(&file, b"correct horse battery stapler").unwrap_err(),
        BackupError::WrongPassphrase
    );
    assert_eq!(open(&file, b"").unwrap_err(), BackupError::WrongPassphrase);
}

#[test]
fn every_altered_byte_is_refused_and_the_contents_are_never_returned() {
    let file = sealed(b"some contents to protect");
    for at in 0..file.len() {
        let mut altered = file.clone();
        altered[at] ^= 0x01;
        let err = open(&altered, PASS).unwrap_err();
        let expected_kind = match at {
            0..8 => matches!(err, BackupError::NotABackup),
            8..10 => matches!(err, BackupError::Version(_)),
            10..12 => matches!(err, BackupError::Algorithms { .. }),
            // Cost parameters and salt change the derived keys.
            12..40 => matches!(
                err,
                BackupError::WrongPassphrase | BackupError::KdfLimits(_)
            ),
            68..76 => matches!(
                err,
                BackupError::Truncated { .. } | BackupError::Padded { .. }
            ),
            76..92 => matches!(err, BackupError::WrongPassphrase),
            // Nonce, key id, time, ciphertext and tag: authenticated.
            _ => matches!(err, BackupError::Tampered),
        };
        assert!(expected_kind, "byte {at}: {err:?}");
    }
}

#[test]
fn truncated_and_padded_files_are_refused_by_their_length() {
    let file = sealed(b"contents");
    for len in 0..file.len() {
        let err = open(&file[..len], PASS).unwrap_err();
        assert!(
            matches!(err, BackupError::NotABackup | BackupError::Truncated { .. }),
            "{len} bytes: {err:?}"
        );
    }
    let cut = open(&file[..file.len() - 1], PASS).unwrap_err();
    assert_eq!(
        cut.to_string(),
        format!(
            "the backup is truncated: {} bytes where its header announces {}",
            file.len() - 1,
            file.len()
        )
    );
    let mut padded = file.clone();
    padded.push(0);
    assert!(matches!(
        open(&padded, PASS).unwrap_err(),
        BackupError::Padded { .. }
    ));
}

#[test]
fn a_header_asking_for_more_than_the_limits_is_refused_before_any_derivation() {
    let mut file = sealed(b"contents");
    // 4 GiB of memory.
    file[12..16].copy_from_slice(&(4u32 << 20).to_be_bytes());
    let started = std::time::Instant::now();
    let err = open(&file, PASS).unwrap_err();
    assert!(matches!(err, BackupError::KdfLimits(_)), "{err:?}");
    assert!(err.to_string().contains("m = 4194304 KiB"), "{err}");
    // Refused without allocating: well under the time one derivation of that size takes.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let mut zero_passes = sealed(b"contents");
    zero_passes[16..20].copy_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        open(&zero_passes, PASS).unwrap_err(),
        BackupError::KdfLimits(_)
    ));
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_parsed() {
    let big = vec![0u8; MAX_BACKUP_BYTES + 1];
    assert!(matches!(
        open(&big, PASS).unwrap_err(),
        BackupError::TooLarge { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_contents_round_trip(plain in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let file = sealed(&plain);
        let (_, opened) = open(&file, PASS).unwrap();
        prop_assert_eq!(&opened[..], &plain[..]);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic_nor_open(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
        at in 40usize..116,
        flip in 1u8..=255,
    ) {
        let mut file = sealed(b"contents");
        if let Some(b) = file.get_mut(at) {
            *b ^= flip;
        }
        file.extend_from_slice(&tail);
        prop_assert!(open(&file, PASS).is_err());
        let _ = Header::parse(&tail);
    }
}
