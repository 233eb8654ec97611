//! The holder / requester sides of a share fetch: `ShareFetch` is decoded and its ticket
//! checked as the holder would (also re-signed by the coordinator); `ShareFetchReply` is
//! decoded and a returned sealed share opened with the fixture slot key and verified against
//! the fixture commitments, as the requester would. The version-2 pair likewise: `BoxedFetch`
//! (ticket checked, reply key kept) and `BoxedFetchReply`, whose re-boxed share is opened with a
//! fixture reply key under the fixture slot's fetch context and checked.
#![no_main]

use fuzz_support::{FX, decode_versioned, open_sealed_checked, resign, run_ticket_checks};
use libfuzzer_sys::fuzz_target;
use protocols::share_box::BoxSecret;
use protocols::ticket::Ticket;
use protocols::wire::{
    BoxedFetch, BoxedFetchReply, FetchedShare, MAX_MESSAGE_BYTES, ShareFetch, ShareFetchReply,
};

fuzz_target!(|data: &[u8]| {
    let fx = &*FX;
    if let Some(fetch) = decode_versioned::<ShareFetch>(data, MAX_MESSAGE_BYTES, "ShareFetch") {
        let _ = run_ticket_checks(&fetch.ticket);
        let _ = run_ticket_checks(&resign::<Ticket>(&fx.coordinator, &fetch.ticket.payload));
    }
    if let Some(reply) =
        decode_versioned::<ShareFetchReply>(data, MAX_MESSAGE_BYTES, "ShareFetchReply")
    {
        match &reply.result {
            Ok(sealed) => {
                let _ = open_sealed_checked(&fx.slot_key, &fx.slot, sealed, &fx.commitments);
                // A relabelled slot opened with that slot's own key (the holder chose the label).
                let key = fx.master.share_key(&sealed.slot);
                let _ = open_sealed_checked(&key, &sealed.slot, sealed, &fx.commitments);
            }
            Err(refusal) => {
                std::hint::black_box(refusal.to_string());
            }
        }
    }
    if let Some(fetch) = decode_versioned::<BoxedFetch>(data, MAX_MESSAGE_BYTES, "BoxedFetch") {
        let _ = run_ticket_checks(&fetch.ticket);
        std::hint::black_box(fetch.reply_key.check().is_ok());
    }
    if let Some(reply) =
        decode_versioned::<BoxedFetchReply>(data, MAX_MESSAGE_BYTES, "BoxedFetchReply")
    {
        match &reply.result {
            Ok(FetchedShare::Reboxed { boxed, .. }) => {
                let reply_secret = BoxSecret::from_uniform_bytes(&[7; 64]);
                let _ = protocols::holder_box::open_fetched(
                    &reply_secret,
                    &fx.slot,
                    &[0; 16],
                    boxed,
                    &fx.commitments,
                );
            }
            Ok(FetchedShare::Sealed(sealed)) => {
                let _ = open_sealed_checked(&fx.slot_key, &fx.slot, sealed, &fx.commitments);
            }
            Err(refusal) => {
                std::hint::black_box(refusal.to_string());
            }
        }
    }
});
