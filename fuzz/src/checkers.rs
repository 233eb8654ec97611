//! Decoders and checkers run on fuzz input, with the invariants each promises asserted: a
//! failed assertion is a finding, like a panic.

use crate::fixtures::*;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hint::black_box;

use protocols::attestation::{self, AttestationPolicy, Challenge, Evidence};
use protocols::identity::{self, NodeKey};
use protocols::ids::{Epoch, NodeId, SessionId, ShareIndex};
use protocols::sealing::{self, SealedShare, ShareOpeningKey, ShareSlot};
use protocols::sharing::{Commitments, UnverifiedShare, VerifiedShare};
use protocols::ticket::{self, MAX_CLOCK_SKEW_MS, Ticket, TicketRefusal};
use protocols::wire::{self, SignedEnvelope, SignedPayload, Versioned, WIRE_VERSION, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;
// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Encodes, re-decodes and re-encodes a decoded value: the two encodings must be identical.
pub fn check_roundtrip<T: Serialize + DeserializeOwned>(value: &T, what: &str) {
    let first = wire::encode(value);
    let back: T = wire::decode_bounded(&first, usize::MAX)
        .unwrap_or_else(|e| panic!("{what}: our own encoding does not decode: {e}"));
    let second = wire::encode(&back);
    assert_eq!(first, second, "{what}: encode/decode/encode is not stable");
}

/// `wire::decode::<T>` with the invariants every versioned decode must keep.
pub fn decode_versioned<T>(data: &[u8], max: usize, what: &str) -> Option<T>
where
    T: Serialize + DeserializeOwned + Versioned + Debug,
{
    let result = wire::decode::<T>(data, max);
    if data.len() > max {
        assert!(
            matches!(result, Err(WireError::Oversized { .. })),
            "{what}: input over the limit was not refused as oversized: {result:?}"
        );
    }
    match result {
        Ok(value) => {
            assert_eq!(
                value.version(),
                T::VERSION,
                "{what}: decoded a foreign version"
            );
            check_roundtrip(&value, what);
            black_box(format!("{value:?}"));
            Some(value)
        }
        Err(e) => {
            black_box(e.to_string());
            None
        }
    }
}

/// `wire::decode_bounded::<T>` (no version probe) with the round-trip invariant.
pub fn decode_plain<T>(data: &[u8], max: usize, what: &str) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug,
{
    match wire::decode_bounded::<T>(data, max) {
        Ok(value) => {
            assert!(data.len() <= max, "{what}: decoded an oversized input");
            check_roundtrip(&value, what);
            black_box(format!("{value:?}"));
            Some(value)
        }
        Err(e) => {
            black_box(e.to_string());
            None
        }
    }
}

/// Decodes an envelope as a node reading it off the wire would.
pub fn decode_envelope(data: &[u8]) -> Option<SignedEnvelope> {
    decode_versioned::<SignedEnvelope>(data, wire::MAX_MESSAGE_BYTES, "SignedEnvelope")
}

// ---------------------------------------------------------------------------------------------
// Signed envelopes
// ---------------------------------------------------------------------------------------------

/// Wraps `payload` in an envelope genuinely signed by `key` for `T`'s context.
/// Lets the fuzzer reach the code after signature verification with arbitrary payload bytes
/// (the "authenticated but malicious or buggy signer" case).
pub fn resign<T: SignedPayload>(key: &NodeKey, payload: &[u8]) -> SignedEnvelope {
    SignedEnvelope {
        v: WIRE_VERSION,
        signer: key.node_id(),
        payload: payload.to_vec(),
        signature: key.sign(T::CONTEXT, payload).to_vec(),
    }
}

/// Opens `env` as a `T` from `expected` and from any signer, and checks that the two agree
/// and that nothing opens without a valid signature by the signer it names.
pub fn open_checked<T>(env: &SignedEnvelope, expected: &NodeId, what: &str) -> Option<T>
where
    T: SignedPayload + Debug,
{
    let from_expected = env.open::<T>(expected);
    let from_any = env.open_from_any_signer::<T>();
    if let Ok((signer, value)) = &from_any {
        assert_eq!(
            signer, &env.signer,
            "{what}: open_from_any_signer reports another signer"
        );
        assert!(
            env.payload.len() <= T::MAX_BYTES,
            "{what}: opened a payload over the type's limit"
        );
        assert!(
            identity::verify(&env.signer, T::CONTEXT, &env.payload, &env.signature),
            "{what}: opened an envelope whose signature does not verify"
        );
        assert_eq!(
            value.version(),
            T::VERSION,
            "{what}: opened a foreign version"
        );
        check_roundtrip(value, what);
    }
    match &from_expected {
        Ok(value) => {
            assert_eq!(
                &env.signer, expected,
                "{what}: open accepted an unexpected signer"
            );
            let (_, any) = from_any
                .as_ref()
                .unwrap_or_else(|e| panic!("{what}: open ok but open_from_any_signer fails: {e}"));
            assert_eq!(
                wire::encode(value),
                wire::encode(any),
                "{what}: open and open_from_any_signer disagree"
            );
        }
        Err(e) => {
            black_box(e.to_string());
            if &env.signer == expected {
                assert!(
                    from_any.is_err(),
                    "{what}: open fails for the named signer but open_from_any_signer succeeds"
                );
            } else {
                assert_eq!(
                    e,
                    &WireError::UnexpectedSigner,
                    "{what}: wrong error for a foreign signer"
                );
            }
        }
    }
    from_expected.ok()
}

// ---------------------------------------------------------------------------------------------
// Tickets
// ---------------------------------------------------------------------------------------------

fn held(session: &SessionId) -> Vec<Epoch> {
    if *session == SESSION {
        HELD_EPOCHS.to_vec()
    } else {
        Vec::new()
    }
}

/// Runs `check_ticket` as the fixture holder would and asserts what a pass guarantees.
pub fn run_ticket_checks(env: &SignedEnvelope) -> Option<ticket::CheckedTicket> {
    let fx = &*FX;
    let coordinator = fx.coordinator.node_id();
    let requester = fx.requester.node_id();
    let local = fx.holder.node_id();
    let result = ticket::check_ticket(env, &coordinator, TICKET_NOW_MS, &requester, &local, held);
    match &result {
        Ok(checked) => {
            let t = &checked.ticket;
            assert_eq!(env.signer, coordinator, "ticket passed with another signer");
            assert!(
                identity::verify(&coordinator, Ticket::CONTEXT, &env.payload, &env.signature),
                "ticket passed without a valid coordinator signature"
            );
            assert_eq!(t.v, WIRE_VERSION);
            assert_eq!(
                t.coordinator, coordinator,
                "ticket names another coordinator"
            );
            assert_eq!(
                t.requester, requester,
                "ticket for another requester passed"
            );
            assert!(TICKET_NOW_MS < t.expires_at_ms, "expired ticket passed");
            assert!(
                t.issued_at_ms <= TICKET_NOW_MS + MAX_CLOCK_SKEW_MS,
                "ticket from the future passed"
            );
            let first = t.holders.iter().find(|h| h.node == local);
            assert_eq!(
                first.map(|h| h.index),
                Some(checked.index),
                "checked index is not this holder's"
            );
            assert_eq!(t.session, SESSION, "ticket for a session not held passed");
            assert!(
                HELD_EPOCHS.contains(&t.epoch),
                "ticket for an epoch not held passed"
            );
            black_box(t.threshold());
            // The same ticket shown by anyone else, or to a holder without the epoch, fails.
            let outsider = fx.outsider.node_id();
            assert_eq!(
                ticket::check_ticket(env, &coordinator, TICKET_NOW_MS, &outsider, &local, held)
                    .err(),
                Some(TicketRefusal::WrongRequester),
                "ticket passed for another remote"
            );
            assert!(
                ticket::check_ticket(env, &coordinator, TICKET_NOW_MS, &requester, &local, |_| {
                    Vec::new()
                })
                .is_err(),
                "ticket passed at a holder that stores nothing"
            );
            assert!(
                ticket::check_ticket(env, &coordinator, t.expires_at_ms, &requester, &local, held)
                    .is_err(),
                "ticket passed at its expiry time"
            );
        }
        Err(e) => {
            black_box(e.to_string());
            if env.signer != coordinator {
                assert_eq!(
                    e,
                    &TicketRefusal::BadSignature,
                    "foreign signer not refused as such"
                );
            }
        }
    }
    result.ok()
}

// ---------------------------------------------------------------------------------------------
// Attestation
// ---------------------------------------------------------------------------------------------

/// Runs `check_evidence` for the fixture peer and challenge and asserts what a pass guarantees.
pub fn run_evidence_checks(env: &SignedEnvelope) -> Option<Evidence> {
    let fx = &*FX;
    let peer = fx.peer.node_id();
    let ch = &fx.challenge;
    let pol = &fx.policy;
    let result = attestation::check_evidence(env, &peer, ch, pol, EVIDENCE_NOW_MS);
    match &result {
        Ok(ev) => {
            assert_eq!(env.signer, peer, "evidence passed with another signer");
            assert!(
                identity::verify(&peer, Evidence::CONTEXT, &env.payload, &env.signature),
                "evidence passed without a valid signature"
            );
            assert_eq!(ev.node, peer, "evidence about another node passed");
            assert_eq!(ev.nonce, ch.nonce, "evidence for another challenge passed");
            assert!(
                pol.allowed_binaries.contains(&ev.binary_sha256),
                "evidence from an unknown binary passed"
            );
            assert!(
                ev.at_ms >= ch.issued_at_ms.saturating_sub(pol.max_skew_ms)
                    && ev.at_ms <= EVIDENCE_NOW_MS + pol.max_skew_ms,
                "evidence outside the time window passed"
            );
            // Another challenge, a late answer, or an empty allowlist must fail.
            let other = Challenge {
                nonce: [0x66; 32],
                ..ch.clone()
            };
            assert_eq!(
                attestation::check_evidence(env, &peer, &other, pol, EVIDENCE_NOW_MS).err(),
                Some(attestation::AttestationError::NonceMismatch),
                "evidence passed for another challenge"
            );
            let late = ch.issued_at_ms + pol.answer_window_ms + 1;
            assert!(
                attestation::check_evidence(env, &peer, ch, pol, late).is_err(),
                "late evidence passed"
            );
            let empty = AttestationPolicy {
                allowed_binaries: BTreeSet::new(),
                ..pol.clone()
            };
            assert!(
                attestation::check_evidence(env, &peer, ch, &empty, EVIDENCE_NOW_MS).is_err(),
                "evidence passed an empty allowlist"
            );
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
    result.ok()
}

// ---------------------------------------------------------------------------------------------
// Sealing and sharing
// ---------------------------------------------------------------------------------------------

/// `sealing::open` with the invariants it promises; verifies what opens against `commitments`.
pub fn open_sealed_checked(
    key: &ShareOpeningKey,
    expected: &ShareSlot,
    sealed: &SealedShare,
    commitments: &Commitments,
) -> Option<VerifiedShare> {
    match sealing::open(key, expected, sealed) {
        Ok(share) => {
            assert_eq!(&sealed.slot, expected, "share opened for another slot");
            assert_eq!(
                share.index(),
                expected.index,
                "opened share has another index"
            );
            black_box(format!("{share:?}"));
            verify_checked(share, commitments)
        }
        Err(e) => {
            black_box(e.to_string());
            None
        }
    }
}

/// `UnverifiedShare::verify` with the invariants it promises.
pub fn verify_checked(share: UnverifiedShare, commitments: &Commitments) -> Option<VerifiedShare> {
    let index = share.index();
    match share.verify(commitments) {
        Ok(v) => {
            assert_ne!(index, 0, "share with index 0 verified");
            assert_eq!(v.index(), index, "verified share changed index");
            assert!(
                !commitments.0.is_empty(),
                "share verified against no commitments"
            );
            black_box(format!("{v:?}"));
            Some(v)
        }
        Err(e) => {
            black_box(e.to_string());
            None
        }
    }
}

/// Input layout of the `sealed_share_open` target:
/// `index (1) ‖ raw share value (32) ‖ len (u16 LE) ‖ SealedShare CBOR (len) ‖ Commitments CBOR`.
pub struct SealedInput<'a> {
    /// Index for the bare `UnverifiedShare`.
    pub index: ShareIndex,
    /// Value bytes for the bare `UnverifiedShare`.
    pub value: [u8; 32],
    /// Encoded `SealedShare`.
    pub sealed: &'a [u8],
    /// Encoded `Commitments`.
    pub commitments: &'a [u8],
}

impl<'a> SealedInput<'a> {
    /// Splits fuzz input into its fields; `None` if it is too short for the fixed header.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&index, rest) = data.split_first()?;
        let (value, rest) = rest.split_first_chunk::<32>()?;
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (sealed, commitments) = rest.split_at(len);
        Some(Self {
            index,
            value: *value,
            sealed,
            commitments,
        })
    }

    /// Builds an input in the layout [`SealedInput::parse`] reads.
    pub fn build(
        index: ShareIndex,
        value: &[u8; 32],
        sealed: &[u8],
        commitments: &[u8],
    ) -> Vec<u8> {
        let len = u16::try_from(sealed.len()).expect("sealed share too long");
        let mut out = Vec::with_capacity(35 + sealed.len() + commitments.len());
        out.push(index);
        out.extend_from_slice(value);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(sealed);
        out.extend_from_slice(commitments);
        out
    }
}
