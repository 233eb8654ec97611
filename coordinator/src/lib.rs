//! The coordinator: enrolment, attestation, contribution intake and mixing, session keys,
//! quorum placement, tickets, rotation. Built on `peer`'s node and the `protocols` core.

pub mod admin;
pub mod config;
pub mod db;
pub mod intake;
pub mod metrics;
pub mod peers;
pub mod service;
