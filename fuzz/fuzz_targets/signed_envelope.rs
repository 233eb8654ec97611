//! `SignedEnvelope::from_bytes`, then `open::<T>` / `open_from_any_signer::<T>` for every
//! signed payload type. Also re-signs the carried payload with a fixed key (choosing the
//! payload type from the first signature byte) so that the decode after verification sees
//! arbitrary bytes too.
#![no_main]

use fuzz_support::{FX, decode_envelope, open_checked, resign};
use libfuzzer_sys::fuzz_target;
use protocols::attestation::Evidence;
use protocols::ticket::Ticket;
use protocols::wire::{
    Contribution, DeleteShares, SignedEnvelope, StatusHeartbeat, StoreShare, WireError,
};

fn open_all(env: &SignedEnvelope) {
    let fx = &*FX;
    let expected = [fx.coordinator.node_id(), fx.peer.node_id(), env.signer];
    for who in &expected {
        let _ = open_checked::<Ticket>(env, who, "Ticket");
        let _ = open_checked::<Evidence>(env, who, "Evidence");
        let _ = open_checked::<Contribution>(env, who, "Contribution");
        let _ = open_checked::<StatusHeartbeat>(env, who, "StatusHeartbeat");
        let _ = open_checked::<StoreShare>(env, who, "StoreShare");
        let _ = open_checked::<DeleteShares>(env, who, "DeleteShares");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(env) = decode_envelope(data) else {
        return;
    };
    // Limits are enforced on the envelope as a whole.
    if let Some(max) = data.len().checked_sub(1) {
        assert!(matches!(
            SignedEnvelope::from_bytes(data, max),
            Err(WireError::Oversized { .. })
        ));
    }
    assert_eq!(
        SignedEnvelope::from_bytes(&env.to_bytes(), data.len()).as_ref(),
        Ok(&env)
    );
    open_all(&env);

    // The same payload under a genuine signature of the key the envelope names (if we hold it).
    let fx = &*FX;
    let key = if env.signer == fx.peer.node_id() {
        &fx.peer
    } else {
        &fx.coordinator
    };
    let selector = env.signature.first().copied().unwrap_or(0) % 6;
    let resigned = match selector {
        0 => resign::<Ticket>(key, &env.payload),
        1 => resign::<Evidence>(key, &env.payload),
        2 => resign::<Contribution>(key, &env.payload),
        3 => resign::<StatusHeartbeat>(key, &env.payload),
        4 => resign::<StoreShare>(key, &env.payload),
        _ => resign::<DeleteShares>(key, &env.payload),
    };
    let who = key.node_id();
    match selector {
        0 => drop(open_checked::<Ticket>(&resigned, &who, "Ticket")),
        1 => drop(open_checked::<Evidence>(&resigned, &who, "Evidence")),
        2 => drop(open_checked::<Contribution>(
            &resigned,
            &who,
            "Contribution",
        )),
        3 => drop(open_checked::<StatusHeartbeat>(
            &resigned,
            &who,
            "StatusHeartbeat",
        )),
        4 => drop(open_checked::<StoreShare>(&resigned, &who, "StoreShare")),
        _ => drop(open_checked::<DeleteShares>(
            &resigned,
            &who,
            "DeleteShares",
        )),
    }
});
