//! A device's statement of its share key: `(NodeId, PK_h)` signed by its identity, carried in
//! its attestation evidence (docs/protocol/redistribution.md, "Keys").

use crate::identity::NodeKey;
use crate::ids::NodeId;
use crate::share_box::BoxPublic;
use crate::wire::{SignedEnvelope, SignedPayload, Versioned, WIRE_VERSION};
use serde::{Deserialize, Serialize};

/// "Shares for `node` are boxed to `share_key`", signed by `node`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareKeyStatement {
    /// Wire version.
    pub v: u16,
    /// The device.
    pub node: NodeId,
    /// Its share key `PK_h = sk_h·G` (ristretto255, compressed).
    pub share_key: BoxPublic,
}

impl Versioned for ShareKeyStatement {
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for ShareKeyStatement {
    const CONTEXT: &'static [u8] = b"entroshard/v1/share-key";
    const MAX_BYTES: usize = 256;
}

/// The statement of `share_key` signed by `key`.
pub fn sign(key: &NodeKey, share_key: BoxPublic) -> SignedEnvelope {
    SignedEnvelope::seal(
        key,
        &ShareKeyStatement {
            v: WIRE_VERSION,
            node: key.node_id(),
            share_key,
        },
    )
}

/// Why a share key statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareKeyError {
    /// Not signed by the node, or not a statement.
    #[error("share key statement does not verify: {0}")]
    Envelope(crate::wire::WireError),
    /// The statement names another node.
    #[error("share key statement names another node")]
    WrongNode,
    /// The key is not a valid, non-identity ristretto255 point.
    #[error("share key is not a valid point")]
    BadPoint,
}

/// The share key `statement` gives for `node`, after checking that `node` signed it, that it
/// names `node` and that the key is a usable point.
pub fn verify(statement: &SignedEnvelope, node: &NodeId) -> Result<BoxPublic, ShareKeyError> {
    let s: ShareKeyStatement = statement.open(node).map_err(ShareKeyError::Envelope)?;
    if &s.node != node {
        return Err(ShareKeyError::WrongNode);
    }
    s.share_key.check().map_err(|_| ShareKeyError::BadPoint)?;
    Ok(s.share_key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::share_box::BoxSecret;

    #[test]
    fn a_signed_share_key_verifies_for_its_node_only() {
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let other = NodeKey::from_secret_bytes(&[4; 32]);
        let pk = BoxSecret::from_bytes(&[5; 32]).unwrap().public();
        let statement = sign(&key, pk);
        assert_eq!(verify(&statement, &key.node_id()).unwrap(), pk);
        assert!(matches!(
            verify(&statement, &other.node_id()),
            Err(ShareKeyError::Envelope(_))
        ));
    }

    #[test]
    fn a_statement_for_another_node_or_a_bad_point_is_refused() {
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let other = NodeKey::from_secret_bytes(&[4; 32]);
        let pk = BoxSecret::from_bytes(&[5; 32]).unwrap().public();
        let foreign = SignedEnvelope::seal(
            &key,
            &ShareKeyStatement {
                v: WIRE_VERSION,
                node: other.node_id(),
                share_key: pk,
            },
        );
        assert_eq!(
            verify(&foreign, &key.node_id()),
            Err(ShareKeyError::WrongNode)
        );
        for bad in [[0u8; 32], [0xff; 32]] {
            let statement = sign(&key, BoxPublic(bad));
            assert_eq!(
                verify(&statement, &key.node_id()),
                Err(ShareKeyError::BadPoint)
            );
        }
    }

    #[test]
    fn a_tampered_statement_is_refused() {
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let pk = BoxSecret::from_bytes(&[5; 32]).unwrap().public();
        let mut statement = sign(&key, pk);
        let last = statement.payload.len() - 1;
        statement.payload[last] ^= 1;
        assert!(verify(&statement, &key.node_id()).is_err());
    }
}
