//! Membership certificates (docs/protocol/gossip-admission.md): the coordinator vouches that a
//! node is enrolled for an hour, and a forwarding device checks the certificate a gossip
//! message carries against its pinned coordinator, the message's author and its own clock.

use crate::identity::NodeKey;
use crate::ids::NodeId;
use crate::wire::{SignedEnvelope, SignedPayload, Versioned};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;

/// How long a certificate is valid from its issue.
pub const VALIDITY_MS: u64 = 3_600_000;

/// Clock difference allowed either way: a device stops using its certificate this long before
/// it expires, a forwarder accepts it until this long after.
pub const SKEW_MS: u64 = 120_000;

/// Most authors whose verified certificate a forwarder keeps.
pub const CACHED_AUTHORS: usize = 4096;

/// Wire version of [`MembershipCert`].
pub const CERT_VERSION: u16 = crate::wire::WIRE_VERSION;

/// Coordinator → member: "`node` is enrolled", valid from `issued_at_ms` to `expires_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MembershipCert {
    /// Wire version.
    pub v: u16,
    /// The member.
    pub node: NodeId,
    /// Coordinator time of issue, unix milliseconds.
    pub issued_at_ms: u64,
    /// End of validity, unix milliseconds.
    pub expires_at_ms: u64,
}

impl Versioned for MembershipCert {
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for MembershipCert {
    const CONTEXT: &'static [u8] = b"entroshard/v1/membership";
    const MAX_BYTES: usize = 256;
}

/// Signs a certificate for `node`, valid [`VALIDITY_MS`] from `now_ms`.
pub fn issue(coordinator: &NodeKey, node: NodeId, now_ms: u64) -> SignedEnvelope {
    SignedEnvelope::seal(
        coordinator,
        &MembershipCert {
            v: CERT_VERSION,
            node,
            issued_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(VALIDITY_MS),
        },
    )
}

/// Why a forwarder refuses a message's certificate. Each is the sender's doing: an honest
/// device publishes only with its own valid certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertRefusal {
    /// The message carries no certificate.
    #[error("no membership certificate")]
    Missing,
    /// Not signed by the pinned coordinator, or the signature or encoding is bad.
    #[error("membership certificate not signed by the coordinator")]
    Forged,
    /// The certificate names another node than the message's author.
    #[error("membership certificate names another node")]
    OtherNode,
    /// Past its expiry by more than [`SKEW_MS`].
    #[error("membership certificate expired")]
    Expired,
}

impl CertRefusal {
    /// Metric and log label.
    pub fn label(self) -> &'static str {
        match self {
            CertRefusal::Missing => "missing",
            CertRefusal::Forged => "forged",
            CertRefusal::OtherNode => "other_node",
            CertRefusal::Expired => "expired",
        }
    }
}

/// Opens `cert` and checks it vouches for `author` at `now_ms`; returns its expiry.
pub fn check(
    cert: Option<&SignedEnvelope>,
    coordinator: &NodeId,
    author: &NodeId,
    now_ms: u64,
) -> Result<u64, CertRefusal> {
    let envelope = cert.ok_or(CertRefusal::Missing)?;
    let opened: MembershipCert = envelope
        .open(coordinator)
        .map_err(|_| CertRefusal::Forged)?;
    if &opened.node != author {
        return Err(CertRefusal::OtherNode);
    }
    live(opened.expires_at_ms, now_ms)?;
    Ok(opened.expires_at_ms)
}

fn live(expires_at_ms: u64, now_ms: u64) -> Result<(), CertRefusal> {
    if now_ms > expires_at_ms.saturating_add(SKEW_MS) {
        return Err(CertRefusal::Expired);
    }
    Ok(())
}

/// Whether a member should use a certificate expiring at `expires_at_ms` at `now_ms`: only
/// while [`SKEW_MS`] of it is left, so forwarders whose clocks run ahead still accept it.
pub fn usable(expires_at_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_add(SKEW_MS) < expires_at_ms
}

/// Whether a member should renew a certificate issued at `issued_at_ms`, expiring at
/// `expires_at_ms`: once half its lifetime has passed.
pub fn due_for_renewal(issued_at_ms: u64, expires_at_ms: u64, now_ms: u64) -> bool {
    let half = expires_at_ms.saturating_sub(issued_at_ms) / 2;
    now_ms >= issued_at_ms.saturating_add(half)
}

/// A forwarder's memory of the certificates it verified, by author: a message carrying the
/// same certificate (byte for byte: same SHA-256 over signer, payload and signature) is judged
/// by its expiry alone, without a second signature check. Bounded to [`CACHED_AUTHORS`]
/// entries of about 100 bytes; past that, expired entries are dropped and, if it is still full,
/// new authors are checked in full every time.
#[derive(Debug, Default)]
pub struct Admission {
    verified: HashMap<NodeId, ([u8; 32], u64)>,
}

/// What identifies a certificate in the cache.
fn digest(envelope: &SignedEnvelope) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(envelope.signer.as_bytes());
    h.update((envelope.payload.len() as u64).to_le_bytes());
    h.update(&envelope.payload);
    h.update(&envelope.signature);
    h.finalize().into()
}

impl Admission {
    /// [`check`], remembering what verified.
    pub fn check(
        &mut self,
        cert: Option<&SignedEnvelope>,
        coordinator: &NodeId,
        author: &NodeId,
        now_ms: u64,
    ) -> Result<u64, CertRefusal> {
        let Some(envelope) = cert else {
            // No certificate on the message: one verified earlier for this author (carried
            // before, or looked up from the coordinator) still vouches for it.
            return match self.verified.get(author) {
                Some((_, expires)) => live(*expires, now_ms).map(|()| *expires),
                None => Err(CertRefusal::Missing),
            };
        };
        let seen_as = digest(envelope);
        if let Some((seen, expires)) = self.verified.get(author)
            && *seen == seen_as
            && envelope.signer == *coordinator
        {
            live(*expires, now_ms)?;
            return Ok(*expires);
        }
        let expires = check(Some(envelope), coordinator, author, now_ms)?;
        if self.verified.len() >= CACHED_AUTHORS && !self.verified.contains_key(author) {
            self.verified.retain(|_, (_, e)| live(*e, now_ms).is_ok());
        }
        if self.verified.len() < CACHED_AUTHORS || self.verified.contains_key(author) {
            self.verified.insert(*author, (seen_as, expires));
        }
        Ok(expires)
    }

    /// Authors remembered.
    pub fn len(&self) -> usize {
        self.verified.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
