//! The peer crate's integration tests in one binary (as the root package's, decision 0059):
//! `cargo test` runs test binaries one after another and links each, so six files made six
//! links and six runs in a row; here their tests run side by side. One file's tests:
//! `cargo test -p entroshard-peer --test it NAME::`.

mod common;
mod gossip_admission;
mod kademlia;
mod liveness;
mod mesh;
mod store;
mod store_crash;
