//! The coordinator: enrolment, attestation, contribution intake and mixing, session keys,
//! quorum placement, tickets, rotation. Built on `peer`'s node and the `protocols` core.

pub mod admin;
pub mod backup;
pub mod config;
pub mod core;
pub mod db;
pub mod intake;
pub mod master_key;
pub mod membership;
pub mod metrics;
mod os;
pub mod peers;
pub mod service;
