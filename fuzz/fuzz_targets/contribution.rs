//! Gossip contributions: `Contribution` (at its own 8 KiB limit and the global one),
//! `ContributionBody`, and a `Contribution` opened from an envelope (as received, and with
//! the raw bytes as a payload signed by the fixture peer).
#![no_main]

use fuzz_support::{FX, decode_envelope, decode_versioned, open_checked, resign};
use libfuzzer_sys::fuzz_target;
use protocols::wire::{Contribution, ContributionBody, MAX_MESSAGE_BYTES, SignedPayload};

fuzz_target!(|data: &[u8]| {
    let fx = &*FX;
    let _ = decode_versioned::<Contribution>(data, Contribution::MAX_BYTES, "Contribution");
    let _ = decode_versioned::<Contribution>(data, MAX_MESSAGE_BYTES, "Contribution");
    let _ = decode_versioned::<ContributionBody>(data, MAX_MESSAGE_BYTES, "ContributionBody");
    if let Some(env) = decode_envelope(data) {
        let _ = open_checked::<Contribution>(&env, &fx.peer.node_id(), "Contribution");
    } else {
        let env = resign::<Contribution>(&fx.peer, data);
        let _ = open_checked::<Contribution>(&env, &fx.peer.node_id(), "Contribution");
    }
});
