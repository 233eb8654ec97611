//! The `master.key` file: `"ESMK"`, format version 1 (one byte), the number of keys (1 or 2, one
//! byte), the current key (32 bytes) and, during a master-key rotation, the retiring key (32
//! bytes). 38 or 70 bytes; anything else is refused.

use protocols::sealing::SealingMasterKey;
use thiserror::Error;
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"ESMK";
const VERSION: u8 = 1;
const HEADER: usize = 6;
const KEY: usize = 32;
/// The largest `master.key` file (two keys); a larger file is refused before it is read.
pub const MAX_FILE_BYTES: usize = HEADER + 2 * KEY;

/// Why `master.key` bytes were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The bytes do not start with the file's magic.
    #[error("not a master key file (no ESMK header)")]
    NotAKeyFile,
    /// Another format version.
    #[error("master key file version {0} is not one this build reads ({VERSION})")]
    Version(u8),
    /// A key count other than 1 or 2, or a length that does not match it.
    #[error(
        "a master key file of {len} bytes with {count} keys (expected 38 bytes with 1, or 70 with 2)"
    )]
    Length {
        /// Bytes found.
        len: usize,
        /// Keys announced.
        count: u8,
    },
    /// The retiring key equals the current one.
    #[error("the retiring master key is the current one")]
    SameKeyTwice,
}

/// Encodes the file.
pub(super) fn encode(
    current: &SealingMasterKey,
    retiring: Option<&SealingMasterKey>,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_FILE_BYTES));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(if retiring.is_some() { 2 } else { 1 });
    out.extend_from_slice(current.expose());
    if let Some(r) = retiring {
        out.extend_from_slice(r.expose());
    }
    out
}

/// Decodes the file: the current key and the retiring one, if any.
pub(super) fn decode(
    bytes: &[u8],
) -> Result<(SealingMasterKey, Option<SealingMasterKey>), FormatError> {
    if bytes.get(..4) != Some(MAGIC.as_slice()) {
        return Err(FormatError::NotAKeyFile);
    }
    let (Some(&version), Some(&count)) = (bytes.get(4), bytes.get(5)) else {
        return Err(FormatError::NotAKeyFile);
    };
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    let keys = bytes.get(HEADER..).unwrap_or_default();
    let wrong = FormatError::Length {
        len: bytes.len(),
        count,
    };
    if !(count == 1 || count == 2) || keys.len() != usize::from(count) * KEY {
        return Err(wrong);
    }
    let key_at = |i: usize| -> Result<SealingMasterKey, FormatError> {
        let slice = keys.get(i * KEY..(i + 1) * KEY).ok_or(wrong.clone())?;
        let mut raw = Zeroizing::new([0u8; KEY]);
        raw.copy_from_slice(slice);
        Ok(SealingMasterKey::from_bytes(*raw))
    };
    let current = key_at(0)?;
    let retiring = if count == 2 { Some(key_at(1)?) } else { None };
    if retiring.as_ref().is_some_and(|r| r.id() == current.id()) {
        return Err(FormatError::SameKeyTwice);
    }
    Ok((current, retiring))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> SealingMasterKey {
        SealingMasterKey::from_bytes([b; 32])
    }

    #[test]
    fn one_and_two_keys_read_back_and_have_the_stated_sizes() {
        let one = encode(&key(1), None);
        assert_eq!(one.len(), 38);
        assert_eq!(&one[..6], b"ESMK\x01\x01");
        let (c, r) = decode(&one).unwrap();
        assert_eq!((c.id(), r.map(|r| r.id())), (key(1).id(), None));
        let two = encode(&key(1), Some(&key(2)));
        assert_eq!(two.len(), MAX_FILE_BYTES);
        let (c, r) = decode(&two).unwrap();
        assert_eq!(
            (c.id(), r.map(|r| r.id())),
            (key(1).id(), Some(key(2).id()))
        );
    }

    #[test]
    fn truncated_padded_foreign_or_newer_files_are_refused() {
        let two = encode(&key(1), Some(&key(2)));
        for len in 0..two.len() {
            assert!(decode(&two[..len]).is_err(), "{len} bytes accepted");
        }
        let mut padded = two.to_vec();
        padded.push(0);
        assert!(matches!(
            decode(&padded),
            Err(FormatError::Length { len: 71, count: 2 })
        ));
        let mut newer = two.to_vec();
        newer[4] = 2;
        assert_eq!(decode(&newer).unwrap_err(), FormatError::Version(2));
        assert_eq!(decode(&[0u8; 38]).unwrap_err(), FormatError::NotAKeyFile);
        let same = encode(&key(1), Some(&key(1)));
        assert_eq!(decode(&same).unwrap_err(), FormatError::SameKeyTwice);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn any_key_pair_round_trips(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), two in any::<bool>()) {
            prop_assume!(a != b);
            let (ka, kb) = (SealingMasterKey::from_bytes(a), SealingMasterKey::from_bytes(b));
            let bytes = encode(&ka, two.then_some(&kb));
            let (c, r) = decode(&bytes).unwrap();
            prop_assert_eq!(c.expose(), &a);
            prop_assert_eq!(r.map(|r| *r.expose()), two.then_some(b));
        }
    }
}
