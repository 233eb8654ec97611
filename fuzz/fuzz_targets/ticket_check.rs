//! `ticket::check_ticket` at a holder with fixed coordinator / requester / holder ids, a fixed
//! clock and a fixed set of held epochs. Three inputs per run: the bytes as a wire envelope,
//! that envelope's payload re-signed by the coordinator, and the raw bytes as a
//! coordinator-signed ticket payload (so the checks after the signature see arbitrary tickets).
#![no_main]

use fuzz_support::{FX, decode_envelope, resign, run_ticket_checks};
use libfuzzer_sys::fuzz_target;
use protocols::ticket::Ticket;

fuzz_target!(|data: &[u8]| {
    let coordinator = &FX.coordinator;
    if let Some(env) = decode_envelope(data) {
        let _ = run_ticket_checks(&env);
        let _ = run_ticket_checks(&resign::<Ticket>(coordinator, &env.payload));
    } else {
        let _ = run_ticket_checks(&resign::<Ticket>(coordinator, data));
    }
});
