//! Share opening and verification. Input: `index ‖ value[32] ‖ len u16 LE ‖ SealedShare CBOR ‖
//! Commitments CBOR` (see `SealedInput`). Runs `sealing::open` with the fixture slot key (and
//! with the key of whatever slot the share claims), `UnverifiedShare::new(index, value)
//! .verify(commitments)` with the fuzzed commitments, and a seal → open round trip.
#![no_main]

use fuzz_support::{FX, SealedInput, decode_plain, open_sealed_checked, verify_checked};
use libfuzzer_sys::fuzz_target;
use protocols::sealing::{self, SealedShare, ShareSlot};
use protocols::sharing::{self, Commitments, UnverifiedShare};
use protocols::wire::MAX_MESSAGE_BYTES;

fuzz_target!(|data: &[u8]| {
    let fx = &*FX;
    let Some(input) = SealedInput::parse(data) else {
        return;
    };
    let commitments =
        decode_plain::<Commitments>(input.commitments, MAX_MESSAGE_BYTES, "Commitments")
            .unwrap_or_else(|| fx.commitments.clone());

    // A bare share against the fuzzed commitments.
    if let Some(v) = verify_checked(UnverifiedShare::new(input.index, input.value), &commitments) {
        assert_eq!(v.value_bytes(), input.value, "verified share changed value");
        // One share never combines (the threshold is at least 2).
        assert!(sharing::combine(&[v.clone(), v], &commitments).is_err());
    }

    // A sealed share from a holder.
    if let Some(sealed) = decode_plain::<SealedShare>(input.sealed, 2 * 1024, "SealedShare") {
        let _ = open_sealed_checked(&fx.slot_key, &fx.slot, &sealed, &commitments);
        let key = fx.master.share_key(&sealed.slot);
        let _ = open_sealed_checked(&key, &sealed.slot, &sealed, &commitments);
    }

    // Seal → open round trip for an arbitrary slot and value.
    let slot = ShareSlot {
        index: input.index,
        ..fx.slot
    };
    let key = fx.master.share_key(&slot);
    let nonce: [u8; 12] = input.value[..12].try_into().unwrap_or_default();
    let sealed = sealing::seal(&key, slot, &input.value, nonce);
    let opened = sealing::open(&key, &slot, &sealed).expect("a freshly sealed share does not open");
    assert_eq!(opened.index(), input.index);
    if slot != fx.slot {
        assert!(sealing::open(&fx.slot_key, &fx.slot, &sealed).is_err());
    }
});
