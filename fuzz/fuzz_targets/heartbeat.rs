//! Gossip heartbeats: `StatusHeartbeat` at its 16 KiB limit and the global one, and opened
//! from an envelope (as received, and with the raw bytes signed by the fixture peer).
#![no_main]

use fuzz_support::{FX, decode_envelope, decode_versioned, open_checked, resign};
use libfuzzer_sys::fuzz_target;
use protocols::wire::{MAX_MESSAGE_BYTES, SignedPayload, StatusHeartbeat};

fuzz_target!(|data: &[u8]| {
    let fx = &*FX;
    let _ =
        decode_versioned::<StatusHeartbeat>(data, StatusHeartbeat::MAX_BYTES, "StatusHeartbeat");
    let _ = decode_versioned::<StatusHeartbeat>(data, MAX_MESSAGE_BYTES, "StatusHeartbeat");
    if let Some(env) = decode_envelope(data) {
        let _ = open_checked::<StatusHeartbeat>(&env, &fx.peer.node_id(), "StatusHeartbeat");
    } else {
        let env = resign::<StatusHeartbeat>(&fx.peer, data);
        let _ = open_checked::<StatusHeartbeat>(&env, &fx.peer.node_id(), "StatusHeartbeat");
    }
});
