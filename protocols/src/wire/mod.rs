//! Wire formats: versioned CBOR messages, bounded decoding and signed envelopes.

pub mod codec;
pub mod entropy_messages;
pub mod envelope;
pub mod messages;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod roundtrip_tests;

pub use codec::{
    MAX_MESSAGE_BYTES, Versioned, WIRE_VERSION, WireError, decode, decode_bounded, encode,
};
pub use entropy_messages::*;
pub use envelope::{SignedEnvelope, SignedPayload};
pub use messages::*;
