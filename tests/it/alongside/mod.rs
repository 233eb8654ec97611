//! Long tests that start no fleet of processes, run alongside the fleets. libtest starts tests in
//! the order of their names, as many at a time as the machine has cores (two in CI), and the fleet
//! tests wait for their slots (`common::fleet_slot`): a long test named after the last fleet test
//! starts only when the fleets are done and runs on alone (the simulator's small scenario did,
//! about 40 s of a CI run at `609d611`). This module's name sorts before every other, so its
//! tests start first and overlap the fleets (decision 0069).

// The simulator's small scenario: 50 in-process devices for a minute of timers; needs the `lab`
// feature's simulator crate.
#[cfg(feature = "lab")]
mod simulator_small_scenario;
