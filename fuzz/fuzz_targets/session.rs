//! Requester ↔ coordinator session messages: `SessionCreate` (and its policy's n/k through
//! `sharing::check_parameters`), `SessionCreated` (its grant's ticket opened as the
//! coordinator's and checked at the fixture holder), and `TicketRequest`.
#![no_main]

use fuzz_support::{FX, decode_versioned, open_checked, run_ticket_checks};
use libfuzzer_sys::fuzz_target;
use protocols::sharing;
use protocols::ticket::Ticket;
use protocols::wire::{MAX_MESSAGE_BYTES, SessionCreate, SessionCreated, TicketRequest};

fuzz_target!(|data: &[u8]| {
    let fx = &*FX;
    if let Some(create) =
        decode_versioned::<SessionCreate>(data, MAX_MESSAGE_BYTES, "SessionCreate")
    {
        let (n, k) = (usize::from(create.policy.n), usize::from(create.policy.k));
        let ok = sharing::check_parameters(n, k).is_ok();
        assert_eq!(
            ok,
            (2..=n).contains(&k) && n <= 255,
            "check_parameters({n}, {k})"
        );
    }
    if let Some(created) =
        decode_versioned::<SessionCreated>(data, MAX_MESSAGE_BYTES, "SessionCreated")
    {
        let env = &created.grant.ticket;
        if let Some(ticket) = open_checked::<Ticket>(env, &fx.coordinator.node_id(), "Ticket") {
            std::hint::black_box(ticket.threshold());
            let _ = run_ticket_checks(env);
        }
        for entry in &created.grant.opening_keys {
            std::hint::black_box(entry.key.ct_eq(&fx.slot_key));
        }
    }
    let _ = decode_versioned::<TicketRequest>(data, MAX_MESSAGE_BYTES, "TicketRequest");
});
