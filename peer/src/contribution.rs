//! Contributions sealed to the coordinator with a one-way Noise pattern (snow), bound to sender and sequence.
//!
//! The Noise `N` pattern encrypts to the coordinator's static X25519 key with a fresh ephemeral
//! key per message. The prologue binds the sender's NodeId and the sequence number, so a sealed
//! body lifted into another peer's signed envelope, or replayed under another sequence number,
//! does not open.

use protocols::ids::NodeId;
use protocols::wire::{self, ContributionBody, WireError};
use thiserror::Error;
use zeroize::Zeroizing;

const PATTERN: &str = "Noise_N_25519_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"entroshard/v1/contribution";
/// Largest sealed contribution accepted (body + 48 bytes of Noise overhead, with room).
pub const MAX_SEALED_BYTES: usize = 6 * 1024;

/// Sealing or opening failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ContributionError {
    /// The Noise layer refused: wrong key, tampered bytes, or another sender or sequence.
    #[error("contribution does not open: {0}")]
    Noise(String),
    /// The opened body does not decode.
    #[error("contribution body refused: {0}")]
    Body(#[from] WireError),
    /// The sealed bytes are over the limit.
    #[error("sealed contribution of {0} bytes is over the limit")]
    Oversized(usize),
}

fn prologue(sender: &NodeId, seq: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(PROLOGUE.len() + 40);
    p.extend_from_slice(PROLOGUE);
    p.extend_from_slice(sender.as_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p
}

fn params() -> Result<snow::params::NoiseParams, ContributionError> {
    PATTERN
        .parse()
        .map_err(|e: snow::Error| ContributionError::Noise(e.to_string()))
}

/// Seals a body for the coordinator's static key, as `sender` with sequence `seq`.
pub fn seal(
    coordinator_static: &[u8; 32],
    sender: &NodeId,
    seq: u64,
    body: &ContributionBody,
) -> Result<Vec<u8>, ContributionError> {
    let noise = |e: snow::Error| ContributionError::Noise(e.to_string());
    let prologue = prologue(sender, seq);
    let mut hs = snow::Builder::new(params()?)
        .prologue(&prologue)
        .map_err(noise)?
        .remote_public_key(coordinator_static)
        .map_err(noise)?
        .build_initiator()
        .map_err(noise)?;
    let plain = Zeroizing::new(wire::encode(body));
    let mut out = vec![0u8; plain.len() + 128];
    let len = hs.write_message(&plain, &mut out).map_err(noise)?;
    out.truncate(len);
    Ok(out)
}

/// Opens a sealed body with the coordinator's static secret, for the claimed sender and sequence.
pub fn open(
    static_secret: &[u8; 32],
    sender: &NodeId,
    seq: u64,
    sealed: &[u8],
) -> Result<ContributionBody, ContributionError> {
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(ContributionError::Oversized(sealed.len()));
    }
    let noise = |e: snow::Error| ContributionError::Noise(e.to_string());
    let prologue = prologue(sender, seq);
    let mut hs = snow::Builder::new(params()?)
        .prologue(&prologue)
        .map_err(noise)?
        .local_private_key(static_secret)
        .map_err(noise)?
        .build_responder()
        .map_err(noise)?;
    let mut plain = Zeroizing::new(vec![0u8; sealed.len()]);
    let len = hs.read_message(sealed, &mut plain).map_err(noise)?;
    let body = plain
        .get(..len)
        .ok_or_else(|| ContributionError::Noise("length".into()))?;
    Ok(wire::decode(body, MAX_SEALED_BYTES)?)
}

/// An X25519 keypair for the coordinator's Noise static key, from 32 secret bytes.
pub fn static_public(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::wire::{SourceAccounting, WIRE_VERSION};

    fn body() -> ContributionBody {
        ContributionBody {
            v: WIRE_VERSION,
            conditioned: vec![0xa5; 128],
            accounting: SourceAccounting {
                source: "sim:x".into(),
                bits_per_sample: 8,
                raw_samples: 1280,
                h_millibits: 1000,
                estimator: "declared".into(),
            },
        }
    }

    #[test]
    fn sealed_contribution_opens_only_for_the_coordinator_sender_and_sequence() {
        let secret = [7u8; 32];
        let public = static_public(&secret);
        let sender = NodeId([1; 32]);
        let sealed = seal(&public, &sender, 5, &body()).unwrap();
        assert_eq!(open(&secret, &sender, 5, &sealed).unwrap(), body());
        assert!(
            open(&secret, &sender, 6, &sealed).is_err(),
            "another sequence"
        );
        assert!(
            open(&secret, &NodeId([2; 32]), 5, &sealed).is_err(),
            "another sender"
        );
        assert!(
            open(&[8u8; 32], &sender, 5, &sealed).is_err(),
            "another coordinator"
        );
        let mut tampered = sealed.clone();
        tampered[40] ^= 1;
        assert!(open(&secret, &sender, 5, &tampered).is_err(), "tampered");
    }

    #[test]
    fn two_seals_of_the_same_body_differ() {
        let public = static_public(&[7u8; 32]);
        let a = seal(&public, &NodeId([1; 32]), 1, &body()).unwrap();
        let b = seal(&public, &NodeId([1; 32]), 1, &body()).unwrap();
        assert_ne!(a, b);
    }
}
