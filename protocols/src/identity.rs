//! A node's Ed25519 signing identity, kept secret and wiped on drop.

use crate::ids::NodeId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A node's Ed25519 secret key. Its public half is the node's [`NodeId`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct NodeKey {
    secret: [u8; 32],
    #[zeroize(skip)]
    id: NodeId,
}

impl NodeKey {
    /// Makes a fresh identity from a caller-supplied CSPRNG.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let key = Self::from_secret_bytes(&secret);
        secret.zeroize();
        key
    }

    /// Restores an identity from its 32 secret bytes.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(secret);
        let id = NodeId(signing.verifying_key().to_bytes());
        Self {
            secret: *secret,
            id,
        }
    }

    /// The secret bytes, for writing to a 0600 file. Handle with care.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// This node's public identity.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// Signs `context ‖ 0x00 ‖ message`.
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; 64] {
        let signing = SigningKey::from_bytes(&self.secret);
        signing.sign(&domain_separated(context, message)).to_bytes()
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({:?}, [redacted])", self.id)
    }
}

/// Checks a signature made by [`NodeKey::sign`] (strict verification: no malleable forms).
pub fn verify(signer: &NodeId, context: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(signer.as_bytes()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(&domain_separated(context, message), &sig)
        .is_ok()
}

fn domain_separated(context: &[u8], message: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(context.len() + 1 + message.len());
    buf.extend_from_slice(context);
    buf.push(0);
    buf.extend_from_slice(message);
    buf
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_only_for_its_context_message_and_signer() {
        let a = NodeKey::from_secret_bytes(&[1; 32]);
        let b = NodeKey::from_secret_bytes(&[2; 32]);
        let sig = a.sign(b"ctx", b"hello");
        assert!(verify(&a.node_id(), b"ctx", b"hello", &sig));
        assert!(!verify(&a.node_id(), b"ctx2", b"hello", &sig));
        assert!(!verify(&a.node_id(), b"ctx", b"hellp", &sig));
        assert!(!verify(&b.node_id(), b"ctx", b"hello", &sig));
        assert!(!verify(&a.node_id(), b"ctx", b"hello", &sig[..63]));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let a = NodeKey::from_secret_bytes(&[0xab; 32]);
        let shown = format!("{a:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains("abab"));
    }
}
