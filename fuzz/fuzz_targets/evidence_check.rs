//! `attestation::check_evidence` with a fixed peer, challenge, policy and clock. As in
//! `ticket_check`, the bytes are tried as an envelope, as that envelope's payload re-signed by
//! the peer, and (when they are not an envelope) as a peer-signed evidence payload.
#![no_main]

use fuzz_support::{FX, decode_envelope, resign, run_evidence_checks};
use libfuzzer_sys::fuzz_target;
use protocols::attestation::Evidence;

fuzz_target!(|data: &[u8]| {
    let peer = &FX.peer;
    if let Some(env) = decode_envelope(data) {
        let _ = run_evidence_checks(&env);
        let _ = run_evidence_checks(&resign::<Evidence>(peer, &env.payload));
    } else {
        let _ = run_evidence_checks(&resign::<Evidence>(peer, data));
    }
});
