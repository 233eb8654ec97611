//! Signed envelope: Ed25519 over the exact encoded payload bytes, verified before decoding.

use super::codec::{self, Versioned, WIRE_VERSION, WireError};
use crate::identity::{self, NodeKey};
use crate::ids::NodeId;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A payload type that travels signed. `CONTEXT` separates signature domains.
pub trait SignedPayload: Serialize + DeserializeOwned + Versioned {
    /// Domain-separation string for this payload's signatures.
    const CONTEXT: &'static [u8];
    /// Upper bound on the encoded payload.
    const MAX_BYTES: usize = codec::MAX_MESSAGE_BYTES;
}

/// Signed bytes with the signer's identity. The payload is opaque until verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SignedEnvelope {
    /// Wire version.
    pub v: u16,
    /// Who signed.
    pub signer: NodeId,
    /// The exact encoded payload that was signed.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Ed25519 signature over `CONTEXT ‖ 0 ‖ payload`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl Versioned for SignedEnvelope {
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedEnvelope {
    /// Encodes and signs a payload.
    pub fn seal<T: SignedPayload>(key: &NodeKey, payload: &T) -> Self {
        let payload = codec::encode(payload);
        let signature = key.sign(T::CONTEXT, &payload).to_vec();
        Self {
            v: WIRE_VERSION,
            signer: key.node_id(),
            payload,
            signature,
        }
    }

    /// The envelope's own encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes an envelope (not yet verified) from wire bytes.
    pub fn from_bytes(bytes: &[u8], max: usize) -> Result<Self, WireError> {
        codec::decode(bytes, max)
    }

    /// Verifies the signature of `expected` over the carried bytes, then decodes them.
    pub fn open<T: SignedPayload>(&self, expected: &NodeId) -> Result<T, WireError> {
        if &self.signer != expected {
            return Err(WireError::UnexpectedSigner);
        }
        self.open_from_any_signer().map(|(_, value)| value)
    }

    /// Verifies the signature of whoever the envelope names, then decodes.
    /// The caller must decide whether that signer is acceptable.
    pub fn open_from_any_signer<T: SignedPayload>(&self) -> Result<(NodeId, T), WireError> {
        if self.payload.len() > T::MAX_BYTES {
            return Err(WireError::Oversized {
                len: self.payload.len(),
                max: T::MAX_BYTES,
            });
        }
        if !identity::verify(&self.signer, T::CONTEXT, &self.payload, &self.signature) {
            return Err(WireError::BadSignature);
        }
        let value = codec::decode(&self.payload, T::MAX_BYTES)?;
        Ok((self.signer, value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Note {
        v: u16,
        text: String,
    }
    impl Versioned for Note {
        fn version(&self) -> u16 {
            self.v
        }
    }
    impl SignedPayload for Note {
        const CONTEXT: &'static [u8] = b"entroshard/test/note";
    }

    fn note() -> Note {
        Note {
            v: WIRE_VERSION,
            text: "hi".into(),
        }
    }

    #[test]
    fn sealed_envelope_opens_for_its_signer() {
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let env = SignedEnvelope::seal(&key, &note());
        let bytes = env.to_bytes();
        let back = SignedEnvelope::from_bytes(&bytes, 4096).unwrap();
        assert_eq!(back.open::<Note>(&key.node_id()).unwrap(), note());
    }

    #[test]
    fn flipped_payload_bit_is_a_bad_signature() {
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let mut env = SignedEnvelope::seal(&key, &note());
        let last = env.payload.len() - 1;
        env.payload[last] ^= 1;
        assert_eq!(
            env.open::<Note>(&key.node_id()),
            Err(WireError::BadSignature)
        );
    }

    #[test]
    fn envelope_claiming_another_signer_is_refused() {
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let other = NodeKey::from_secret_bytes(&[4; 32]);
        let mut env = SignedEnvelope::seal(&key, &note());
        assert_eq!(
            env.open::<Note>(&other.node_id()),
            Err(WireError::UnexpectedSigner)
        );
        env.signer = other.node_id();
        assert_eq!(
            env.open::<Note>(&other.node_id()),
            Err(WireError::BadSignature)
        );
    }

    #[test]
    fn signature_from_another_context_does_not_verify() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Other {
            v: u16,
            text: String,
        }
        impl Versioned for Other {
            fn version(&self) -> u16 {
                self.v
            }
        }
        impl SignedPayload for Other {
            const CONTEXT: &'static [u8] = b"entroshard/test/other";
        }
        let key = NodeKey::from_secret_bytes(&[3; 32]);
        let env = SignedEnvelope::seal(&key, &note());
        assert_eq!(
            env.open::<Other>(&key.node_id()),
            Err(WireError::BadSignature)
        );
    }
}
