//! The records the coordinator keeps, and their versioned CBOR encoding on disk.

use super::DbError;
use protocols::ids::{Epoch, NodeId, SessionId, ShareIndex, hex8};
use protocols::sealing::MasterKeyId;
use protocols::sharing::Commitments;
use protocols::wire::{EntropyReceipt, SessionPolicy, decode_bounded, encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The only record version this build writes and reads.
pub(super) const RECORD_VERSION: u16 = 1;

/// Upper bound of one encoded record; a session of 255 holders and a long receipt fits.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The coordinator's long-term secrets kept in its database, created once by `coordinator
/// init`. (The sealing master key is in `master.key`, decision 0046; a record written before
/// kept it here too, under `sealing_master`, which this type ignores and `LegacySecrets` reads.)
///
/// Zeroed on drop; its `Debug` prints `[redacted]`. It has no `Clone` nor `PartialEq`: copies
/// and non-constant-time comparisons of secrets are avoided.
#[derive(Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct CoordinatorSecrets {
    /// The X25519 static key of the coordinator's Noise channel.
    #[serde(with = "serde_bytes")]
    pub noise_static: [u8; 32],
}

/// The secrets record as databases before decision 0046 wrote it: with the sealing master key.
/// Read only to move that key into `master.key`.
#[derive(Zeroize, ZeroizeOnDrop, Deserialize)]
pub(super) struct LegacySecrets {
    /// The sealing master key, if the record still holds it.
    #[serde(default, with = "serde_bytes")]
    pub sealing_master: Option<[u8; 32]>,
}

impl std::fmt::Debug for CoordinatorSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoordinatorSecrets([redacted])")
    }
}

/// An enrolled peer's labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    /// Region label, for quorum placement.
    pub region: String,
    /// Operator label, for quorum placement.
    pub operator: String,
    /// When the peer was enrolled (or relabelled), in milliseconds since the Unix epoch.
    pub enrolled_at_ms: u64,
    /// The share key the peer stated in a valid attestation (docs/protocol/redistribution.md,
    /// "Keys"); shares are boxed to it. `None` until then, and in records written before share
    /// keys (read as absent: the next good attestation records it). Kept when the peer is
    /// relabelled; dropped with the enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_key: Option<protocols::share_box::BoxPublic>,
}

/// A single-use join token, stored under the SHA-256 of the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// Region label the redeeming peer is enrolled with.
    pub region: String,
    /// Operator label the redeeming peer is enrolled with.
    pub operator: String,
    /// When the token stops being redeemable, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// One holder of a session's shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder.
    pub node: NodeId,
    /// The x-coordinate of its share.
    pub index: ShareIndex,
}

/// A session, as of its current epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session id (also its key).
    pub session: SessionId,
    /// The requester that created it.
    pub creator: NodeId,
    /// The policy it was created with.
    pub policy: SessionPolicy,
    /// SHA-256 of the encoded policy.
    #[serde(with = "serde_bytes")]
    pub policy_digest: [u8; 32],
    /// Current epoch.
    pub epoch: Epoch,
    /// Holders of the current epoch's shares.
    pub holders: Vec<Holder>,
    /// Feldman commitments of the current epoch.
    pub commitments: Commitments,
    /// Which entropy the session key was derived from.
    pub receipt: EntropyReceipt,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Expiry time, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Rotations completed.
    pub rotations: u32,
    /// When the last rotation committed (0: never).
    #[serde(default)]
    pub rotated_at_ms: u64,
    /// The master key the current epoch's shares are sealed under (`None` only in records
    /// written before key ids, until the first start stamps them: decision 0046).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_under: Option<MasterKeyId>,
    /// The current epoch's shares are boxed to their holders' share keys (decision 0053): no
    /// master key opens them, and `sealed_under` is `None`. `false` in records written before,
    /// whose sessions stay as they are until they expire (decision 0057).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub boxed: bool,
}

/// A rotation in flight: the next epoch's placement, kept to finish or undo it after a crash.
/// It holds no secret material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEpoch {
    /// Session being rotated (also its key).
    pub session: SessionId,
    /// The epoch being dealt.
    pub epoch: Epoch,
    /// Holders of the new epoch's shares.
    pub holders: Vec<Holder>,
    /// Feldman commitments of the new epoch.
    pub commitments: Commitments,
    /// When the rotation started, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

#[derive(Serialize)]
struct StoredRef<'a, T> {
    v: u16,
    record: &'a T,
}

/// The record as read; its `v` was checked by [`VersionProbe`] first.
#[derive(Deserialize)]
struct Stored<T> {
    record: T,
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u16,
}

/// Encodes `record` as `{v, record}`, refusing it as [`DbError::TooLarge`] past
/// [`MAX_RECORD_BYTES`]. `what` names the kind of record in that error.
pub(super) fn encode_record<T: Serialize>(
    what: &'static str,
    record: &T,
) -> Result<Vec<u8>, DbError> {
    let bytes = encode(&StoredRef {
        v: RECORD_VERSION,
        record,
    });
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(DbError::TooLarge {
            what,
            len: bytes.len(),
            max: MAX_RECORD_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes the record stored in `table` under `key`; a failure is [`DbError::Corrupt`] naming both.
pub(super) fn decode_record<T: DeserializeOwned>(
    path: &Path,
    table: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, DbError> {
    let corrupt = |what: String| {
        DbError::corrupt(
            path,
            format!("record in table {table} at key {}: {what}", hex8(key)),
        )
    };
    let probe: VersionProbe =
        decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| corrupt(e.to_string()))?;
    if probe.v != RECORD_VERSION {
        return Err(corrupt(format!(
            "record version {} is not one this build reads ({RECORD_VERSION})",
            probe.v
        )));
    }
    let stored: Stored<T> =
        decode_bounded(bytes, MAX_RECORD_BYTES).map_err(|e| corrupt(e.to_string()))?;
    Ok(stored.record)
}

/// Checks that a record naming `found` is filed under that session's key.
pub(super) fn filed_under(
    path: &Path,
    table: &str,
    key: &[u8; 16],
    found: &SessionId,
) -> Result<(), DbError> {
    if found.0 == *key {
        return Ok(());
    }
    Err(DbError::corrupt(
        path,
        format!(
            "record in table {table} at key {}: holds session {found}",
            hex8(key)
        ),
    ))
}

/// The holder list of a committed placement.
pub fn holders_of(placements: &[protocols::reshare::Placement]) -> Vec<Holder> {
    placements
        .iter()
        .map(|p| Holder {
            node: p.node,
            index: p.index,
        })
        .collect()
}
