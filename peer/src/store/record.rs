//! On-disk layout: the `session ‖ epoch` key and the versioned CBOR record stored under it
//! (version 1: a share sealed under the coordinator's master key; version 2: a share boxed to
//! this holder's share key, with its commitments).

use protocols::ids::{Epoch, SessionId};
use protocols::sealing::{SealedShare, ShareSlot};
use protocols::share_box::Boxed;
use protocols::sharing::Commitments;
use protocols::wire::{decode_bounded, encode};
use serde::{Deserialize, Serialize};

/// A share boxed to this holder (docs/protocol/redistribution.md): only its share key opens it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxedShare {
    /// The slot the box is bound to.
    pub slot: ShareSlot,
    /// The box, as the coordinator sent it.
    pub boxed: Boxed,
    /// The epoch's commitments (the share was checked against them before it was stored).
    pub commitments: Commitments,
}

/// A share as a holder keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldShare {
    /// Dealt before holder share keys: sealed under the coordinator's master key, served as is.
    Sealed(SealedShare),
    /// Boxed to this holder.
    Boxed(BoxedShare),
}

impl HeldShare {
    /// The slot the share is bound to.
    pub fn slot(&self) -> &ShareSlot {
        match self {
            HeldShare::Sealed(s) => &s.slot,
            HeldShare::Boxed(b) => &b.slot,
        }
    }
}

impl From<SealedShare> for HeldShare {
    fn from(s: SealedShare) -> Self {
        HeldShare::Sealed(s)
    }
}

/// Length of a key: 16 session bytes then the epoch, big-endian, so keys sort by session then epoch.
pub(crate) const KEY_LEN: usize = 16 + 4;

/// The record version of a sealed share (written and read as before boxed shares).
pub(crate) const RECORD_VERSION: u16 = 1;
/// The record version of a boxed share.
pub(crate) const BOXED_RECORD_VERSION: u16 = 2;

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

#[derive(Serialize)]
struct BoxedRecordRef<'a> {
    v: u16,
    boxed: &'a BoxedShare,
    expires_at_ms: u64,
}

/// The record as read; its `v` was checked by [`VersionProbe`] first.
#[derive(Deserialize)]
struct Record {
    share: SealedShare,
    expires_at_ms: u64,
}

/// A boxed share's record as read.
#[derive(Deserialize)]
struct BoxedRecord {
    boxed: BoxedShare,
    expires_at_ms: u64,
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u16,
}

/// Encodes a record, or returns its length when it exceeds [`MAX_RECORD_BYTES`].
pub(crate) fn encode_record(share: &HeldShare, expires_at_ms: u64) -> Result<Vec<u8>, usize> {
    let bytes = match share {
        HeldShare::Sealed(share) => encode(&RecordRef {
            v: RECORD_VERSION,
            share,
            expires_at_ms,
        }),
        HeldShare::Boxed(boxed) => encode(&BoxedRecordRef {
            v: BOXED_RECORD_VERSION,
            boxed,
            expires_at_ms,
        }),
    };
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(bytes.len());
    }
    Ok(bytes)
}

/// Decodes the record stored under `k` and checks that it belongs there. The error is a detail
/// naming the key, for [`super::StoreError::Corrupt`].
pub(crate) fn decode_record(k: &[u8; KEY_LEN], bytes: &[u8]) -> Result<(HeldShare, u64), String> {
    let at = || format!("record at {}", describe_key(k));
    let probe: VersionProbe =
        decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| format!("{}: {e}", at()))?;
    let (share, expires_at_ms) = match probe.v {
        RECORD_VERSION => {
            let record: Record =
                decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| format!("{}: {e}", at()))?;
            (HeldShare::Sealed(record.share), record.expires_at_ms)
        }
        BOXED_RECORD_VERSION => {
            let record: BoxedRecord =
                decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| format!("{}: {e}", at()))?;
            (HeldShare::Boxed(record.boxed), record.expires_at_ms)
        }
        v => {
            return Err(format!(
                "{}: record version {v} is not one this build reads \
                 ({RECORD_VERSION} or {BOXED_RECORD_VERSION})",
                at()
            ));
        }
    };
    let (session, epoch) = split_key(k);
    let slot = share.slot();
    if slot.session != session || slot.epoch != epoch {
        return Err(format!(
            "{}: holds the share of session {} epoch {}",
            at(),
            slot.session,
            slot.epoch
        ));
    }
    Ok((share, expires_at_ms))
}
