//! Long tests, started first so that they overlap the rest. libtest starts tests in the order of
//! their names, as many at a time as the machine has cores (two in CI), and the fleet tests wait
//! for their slots (`common::fleet_slot`): a long test named after the last fleet test starts only
//! when the other fleets are done and runs on alone (the simulator's small scenario did, about
//! 40 s of a CI run at `609d611`; the NAT region cut, 68 s of a run at `45749e5`). This module's
//! name sorts before every other, so its tests start first and overlap the others (decisions 0069,
//! 0073).

// The NAT testbed's region scenario: a fleet that mostly waits out a minute's cut, so a second
// fleet gets the machine's spare core beside it.
mod nat_region_cut;
// The simulator's small scenario: 50 in-process devices for a minute of timers; needs the `lab`
// feature's simulator crate.
#[cfg(feature = "lab")]
mod simulator_small_scenario;
