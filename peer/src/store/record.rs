//! On-disk layout: the `session ‖ epoch` key and the versioned CBOR record stored under it.

use protocols::ids::{Epoch, SessionId};
use protocols::sealing::SealedShare;
use protocols::wire::{decode_bounded, encode};
use serde::{Deserialize, Serialize};

/// Length of a key: 16 session bytes then the epoch, big-endian, so keys sort by session then epoch.
pub(crate) const KEY_LEN: usize = 16 + 4;

/// The only record version this build writes and reads.
pub(crate) const RECORD_VERSION: u16 = 1;

/// Upper bound of one encoded record; a well-formed share's record is about 150 bytes.
pub const MAX_RECORD_BYTES: usize = 4096;

/// The key of a (session, epoch) slot.
pub(crate) fn key(session: &SessionId, epoch: Epoch) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..16].copy_from_slice(&session.0);
    k[16..].copy_from_slice(&epoch.to_be_bytes());
    k
}

/// The (session, epoch) a key names.
pub(crate) fn split_key(k: &[u8; KEY_LEN]) -> (SessionId, Epoch) {
    let mut session = [0u8; 16];
    session.copy_from_slice(&k[..16]);
    let mut epoch = [0u8; 4];
    epoch.copy_from_slice(&k[16..]);
    (SessionId(session), Epoch::from_be_bytes(epoch))
}

/// A key in log-friendly form, for error details.
pub(crate) fn describe_key(k: &[u8; KEY_LEN]) -> String {
    let (session, epoch) = split_key(k);
    format!("session {session} epoch {epoch}")
}

#[derive(Serialize)]
struct RecordRef<'a> {
    v: u16,
    share: &'a SealedShare,
    expires_at_ms: u64,
}

/// The record as read; its `v` was checked by [`VersionProbe`] first.
#[derive(Deserialize)]
struct Record {
    share: SealedShare,
    expires_at_ms: u64,
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u16,
}

/// Encodes a record, or returns its length when it exceeds [`MAX_RECORD_BYTES`].
pub(crate) fn encode_record(share: &SealedShare, expires_at_ms: u64) -> Result<Vec<u8>, usize> {
    let bytes = encode(&RecordRef {
        v: RECORD_VERSION,
        share,
        expires_at_ms,
    });
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(bytes.len());
    }
    Ok(bytes)
}

/// Decodes the record stored under `k` and checks that it belongs there. The error is a detail
/// naming the key, for [`super::StoreError::Corrupt`].
pub(crate) fn decode_record(k: &[u8; KEY_LEN], bytes: &[u8]) -> Result<(SealedShare, u64), String> {
    let at = || format!("record at {}", describe_key(k));
    let probe: VersionProbe =
        decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| format!("{}: {e}", at()))?;
    if probe.v != RECORD_VERSION {
        return Err(format!(
            "{}: record version {} is not one this build reads ({RECORD_VERSION})",
            at(),
            probe.v
        ));
    }
    let record: Record =
        decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| format!("{}: {e}", at()))?;
    let (session, epoch) = split_key(k);
    if record.share.slot.session != session || record.share.slot.epoch != epoch {
        return Err(format!(
            "{}: holds the share of session {} epoch {}",
            at(),
            record.share.slot.session,
            record.share.slot.epoch
        ));
    }
    Ok((record.share, record.expires_at_ms))
}
