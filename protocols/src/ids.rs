//! Identifiers shared by every protocol: nodes, sessions, epochs and share indices.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's identity: its Ed25519 public key (the libp2p PeerId is derived from it
/// by the `peer` crate; `protocols` stays free of libp2p).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct NodeId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl NodeId {
    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Short hex form for logs (first 6 bytes).
    pub fn short(&self) -> String {
        hex8(&self.0[..6])
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex8(&self.0))
    }
}

/// A session's identifier: 16 random bytes chosen by the coordinator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct SessionId(#[serde(with = "serde_bytes")] pub [u8; 16]);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", hex8(&self.0))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex8(&self.0))
    }
}

/// A sharing epoch of a session: 0 at creation, +1 at each rotation.
pub type Epoch = u32;

/// A share's x-coordinate, 1..=255 (0 is refused: it would be the secret itself).
pub type ShareIndex = u8;

/// Lower-case hex of a byte string.
pub fn hex8(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
