//! The pure protocol core of entroshard: wire messages and codecs, entropy math, secret
//! sharing, sealing, tickets, attestation evidence and quorum selection.
//!
//! No I/O, no async, no clock or global RNG reads: time and randomness are arguments,
//! so every rule is testable without a network and the simulator runs the same code.
#![warn(missing_docs)]

pub mod attestation;
pub use ::entropy;
pub mod holder_box;
pub mod identity;
pub mod ids;
pub mod keys;
pub mod membership;
pub mod quorum;
pub mod ratelimit;
pub mod redistribution;
pub mod reshare;
pub mod sealing;
pub mod share_box;
pub mod share_proof;
pub mod sharing;
pub mod ticket;
pub mod wire;

#[cfg(test)]
mod test_sizes;
