//! Wire formats: versioned CBOR messages, bounded decoding and signed envelopes.

pub mod boxed_messages;
pub mod codec;
pub mod entropy_messages;
pub mod envelope;
pub mod messages;
pub mod proof_messages;
pub mod redeal_messages;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod roundtrip_tests;

pub use boxed_messages::*;
pub use codec::{
    MAX_MESSAGE_BYTES, Versioned, WIRE_VERSION, WIRE_VERSION_2, WireError, decode, decode_bounded,
    encode, probe_version,
};
pub use entropy_messages::*;
pub use envelope::{SignedEnvelope, SignedPayload};
pub use messages::*;
pub use proof_messages::*;
pub use redeal_messages::*;
