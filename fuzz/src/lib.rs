//! Shared fixtures and invariant checks for the entroshard fuzz targets and the seed generator.
//!
//! Every target feeds untrusted bytes to a decoder or checker of `protocols` and must never
//! panic. Beyond "no panic", the helpers here assert the security properties the checkers
//! promise (a ticket that passes was signed by the coordinator and names this holder, evidence
//! that passes answers our challenge, ...). A failed assertion is a finding, like a panic.
//!
//! The fixed identities, times and keys below are also what `examples/make_seeds.rs` uses,
//! so the seeds pass every check and the fuzzer starts from the deepest paths.

pub mod checkers;
pub mod coordinator;
pub mod fixtures;
pub mod holder;

pub use checkers::*;
pub use fixtures::*;
