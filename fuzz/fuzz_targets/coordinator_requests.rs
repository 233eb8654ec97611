//! The coordinator's network handlers (`coordinator::service::DetachedService`: the functions
//! its loop runs for every inbound coordinator request and gossip message) over a real redb
//! database: requests as received or built (create session, get ticket, join) and heartbeat and
//! contribution gossip signed by an authorised requester, an unauthorised one, an enrolled peer
//! or a stranger. Every reply must be one of ours; sessions, tickets and enrolments go only to
//! whom they may; refused input writes nothing. Input layout: `selector ‖ rest` (see
//! `fuzz_support::coordinator::CoordinatorInput`).
#![no_main]

use fuzz_support::coordinator::{COORDINATOR, CoordinatorInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = CoordinatorInput::parse(data) {
        let _ = COORDINATOR.run(&input);
    }
});
