//! Bounded CBOR codec: size checked before decoding, recursion limited, version probed first.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use thiserror::Error;

/// The wire version of every message that did not change since the first (each message type
/// says its own: [`Versioned::VERSION`]).
pub const WIRE_VERSION: u16 = 1;

/// The version of the messages holder-boxed shares brought (docs/protocol/redistribution.md):
/// new types beside the version-1 ones they replace, so that a fleet upgrades device by device.
pub const WIRE_VERSION_2: u16 = 2;

/// Default upper bound for any single message on the wire (a ticket for n = 255 fits).
pub const MAX_MESSAGE_BYTES: usize = 96 * 1024;

/// Nesting depth accepted while decoding; our deepest message nests fewer than 8 levels.
pub const MAX_NESTING: usize = 16;

/// Why bytes from the wire were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The message is larger than the limit for its type; nothing was decoded.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// Length received.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The bytes ended in the middle of a value.
    #[error("message is truncated")]
    Truncated,
    /// The message announces a version this build does not speak.
    #[error("unknown wire version {found} (this build speaks {supported})")]
    UnknownVersion {
        /// Version found in the message.
        found: u16,
        /// Version this build speaks.
        supported: u16,
    },
    /// The signature does not verify over the carried bytes.
    #[error("signature does not verify")]
    BadSignature,
    /// The message was signed by someone other than the expected signer.
    #[error("signed by an unexpected key")]
    UnexpectedSigner,
    /// The message nests deeper than the decoder allows.
    #[error("message nests deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// Bytes follow the end of the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The bytes are not a well-formed message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Every wire message carries its version in field `v`.
pub trait Versioned {
    /// The version this build writes and reads for the type.
    const VERSION: u16 = WIRE_VERSION;
    /// The version this value carries.
    fn version(&self) -> u16;
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u16,
}

/// Encodes a message as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail; serialisation of our own types cannot either.
    if let Err(e) = ciborium::into_writer(value, &mut out) {
        debug_assert!(false, "encoding our own message failed: {e}");
    }
    out
}

/// Decodes any CBOR value with the size and depth bounds, without a version check.
pub fn decode_bounded<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, WireError> {
    if bytes.len() > max {
        return Err(WireError::Oversized {
            len: bytes.len(),
            max,
        });
    }
    let mut reader = bytes;
    let value = ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_NESTING)
        .map_err(map_cbor_error)?;
    if !reader.is_empty() {
        return Err(WireError::TrailingBytes(reader.len()));
    }
    Ok(value)
}

/// The version field of a message, read with the size and depth bounds (to choose the type to
/// decode it as, where two versions of a request are served side by side).
pub fn probe_version(bytes: &[u8], max: usize) -> Result<u16, WireError> {
    decode_bounded::<VersionProbe>(bytes, max).map(|p| p.v)
}

/// Decodes a versioned message: size first, then the version field, then the whole value.
pub fn decode<T: DeserializeOwned + Versioned>(bytes: &[u8], max: usize) -> Result<T, WireError> {
    let probe: VersionProbe = decode_bounded(bytes, max)?;
    if probe.v != T::VERSION {
        return Err(WireError::UnknownVersion {
            found: probe.v,
            supported: T::VERSION,
        });
    }
    decode_bounded(bytes, max)
}

fn map_cbor_error<E: std::fmt::Debug>(e: ciborium::de::Error<E>) -> WireError {
    use ciborium::de::Error;
    match e {
        Error::Io(_) => WireError::Truncated,
        Error::Syntax(offset) => WireError::Malformed(format!("syntax error at byte {offset}")),
        Error::Semantic(offset, msg) => WireError::Malformed(match offset {
            Some(o) => format!("{msg} at byte {o}"),
            None => msg,
        }),
        Error::RecursionLimitExceeded => WireError::TooDeep,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Probe {
        v: u16,
        data: Vec<u8>,
    }
    impl Versioned for Probe {
        fn version(&self) -> u16 {
            self.v
        }
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            decode::<Probe>(&bytes, MAX_MESSAGE_BYTES),
            Err(WireError::Oversized {
                len: MAX_MESSAGE_BYTES + 1,
                max: MAX_MESSAGE_BYTES
            })
        );
    }

    #[test]
    fn deeply_nested_arrays_give_an_error_not_a_stack_overflow() {
        // 128 KiB of 0x81 (array of one element) nested inside a map field.
        let mut bytes = vec![0xa2, 0x61, b'v', 0x01, 0x64, b'd', b'a', b't', b'a'];
        bytes.extend(std::iter::repeat_n(0x81u8, 128 * 1024));
        bytes.push(0x00);
        assert_eq!(decode::<Probe>(&bytes, 256 * 1024), Err(WireError::TooDeep));
        let bare = vec![0x81u8; 128 * 1024];
        assert_eq!(
            decode_bounded::<ciborium::Value>(&bare, 256 * 1024),
            Err(WireError::TooDeep)
        );
    }

    #[test]
    fn unknown_version_is_refused_with_the_version_found() {
        let bytes = encode(&Probe {
            v: 7,
            data: vec![1, 2],
        });
        assert_eq!(
            decode::<Probe>(&bytes, 1024),
            Err(WireError::UnknownVersion {
                found: 7,
                supported: WIRE_VERSION
            })
        );
    }

    #[test]
    fn truncated_message_is_reported_as_truncated() {
        let bytes = encode(&Probe {
            v: 1,
            data: vec![9; 40],
        });
        for cut in 1..bytes.len() {
            let err = decode::<Probe>(&bytes[..cut], 1024).unwrap_err();
            assert!(
                matches!(err, WireError::Truncated | WireError::Malformed(_)),
                "cut at {cut}: {err:?}"
            );
        }
        assert_eq!(
            decode::<Probe>(&bytes[..bytes.len() - 1], 1024),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Probe { v: 1, data: vec![] });
        bytes.push(0);
        assert_eq!(
            decode::<Probe>(&bytes, 1024),
            Err(WireError::TrailingBytes(1))
        );
    }
}
