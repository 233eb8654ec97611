//! Coordinator → holder storage messages: `StoreShare` (2 KiB), `StoreBoxedShare` (version 2,
//! 12 KiB), `StoreReply` (`Reply<StoreAck>`), `DeleteShares` (1 KiB), and the signed ones
//! opened from coordinator envelopes (as received, and with the raw bytes signed by the
//! coordinator).
#![no_main]

use fuzz_support::{FX, decode_envelope, decode_versioned, open_checked, resign};
use libfuzzer_sys::fuzz_target;
use protocols::wire::{
    DeleteShares, MAX_MESSAGE_BYTES, SignedPayload, StoreBoxedShare, StoreReply, StoreShare,
};

fuzz_target!(|data: &[u8]| {
    let fx = &*FX;
    let coordinator = fx.coordinator.node_id();
    let _ = decode_versioned::<StoreShare>(data, StoreShare::MAX_BYTES, "StoreShare");
    let _ =
        decode_versioned::<StoreBoxedShare>(data, StoreBoxedShare::MAX_BYTES, "StoreBoxedShare");
    if let Some(StoreReply {
        result: Err(refusal),
        ..
    }) = decode_versioned::<StoreReply>(data, MAX_MESSAGE_BYTES, "StoreReply")
    {
        std::hint::black_box(refusal.to_string());
    }
    let _ = decode_versioned::<DeleteShares>(data, DeleteShares::MAX_BYTES, "DeleteShares");
    if let Some(env) = decode_envelope(data) {
        let _ = open_checked::<StoreShare>(&env, &coordinator, "StoreShare");
        let _ = open_checked::<StoreBoxedShare>(&env, &coordinator, "StoreBoxedShare");
        let _ = open_checked::<DeleteShares>(&env, &coordinator, "DeleteShares");
    } else {
        let env = resign::<StoreBoxedShare>(&fx.coordinator, data);
        let _ = open_checked::<StoreBoxedShare>(&env, &coordinator, "StoreBoxedShare");
        let env = resign::<StoreShare>(&fx.coordinator, data);
        let _ = open_checked::<StoreShare>(&env, &coordinator, "StoreShare");
        let env = resign::<DeleteShares>(&fx.coordinator, data);
        let _ = open_checked::<DeleteShares>(&env, &coordinator, "DeleteShares");
    }
});
