//! Every end-to-end test of the `entroshard` package in one test binary (decision 0059): the
//! shared helpers in `tests/common/` are compiled once and the binary linked once, not 28 times.
//! One file per subject as before; run one with `cargo test --test it NAME::` (for example
//! `cargo test --test it nat_mesh:: -- --nocapture`). Tests that start a fleet of daemons take a
//! fleet slot (`common::fleet_slot`): two fleets never start at once, and a second runs beside a
//! first only while the machine has a core to spare (decision 0070).

mod alongside;
#[path = "../common/mod.rs"]
mod common;
// Runs a `lab` tool, which a build without the `lab` feature refuses.
#[cfg(feature = "lab")]
mod bench_cli;
mod cli_backup;
mod cli_bad_input;
mod cli_bad_input_daemons;
mod cli_peer_standing;
mod cli_revocation;
// Runs a `lab` tool, which a build without the `lab` feature refuses.
#[cfg(feature = "lab")]
mod completions_and_man;
mod coordinator_db_crash;
mod coordinator_e2e;
mod coordinator_quarantine;
mod demo;
mod entropy_audit;
mod entropy_cli;
mod faults_coordinator_crash;
mod faults_holder_crash;
mod hostile_ports;
mod hostile_refusals;
mod hostile_tunnel;
mod join_token;
mod monitoring;
mod nat_mesh;
mod nat_mesh_scenarios;
mod packaging_units;
mod peer_agent;
mod pi_emulated_mesh;
mod pi_systemd_notify;
mod real_sources;
mod requester_cli;
// The simulator's own tests live here, not in `simulator/tests/`: `cargo test` runs test binaries
// one after another, and here the small scenario (a minute of timers) runs beside the fleets
// instead of after them (in `alongside`, so that it starts first). Both need the `lab` feature's
// simulator crate.
#[cfg(feature = "lab")]
mod simulator_shipped_scenarios;
