//! Every wire message type decoded from the same bytes: `wire::decode::<T>` for each versioned
//! message and `wire::decode_bounded::<T>` for the unversioned parts that travel inside them.
//! Checks: no panic, oversized input refused, decoded version is ours, encode/decode stable.
#![no_main]

use fuzz_support::{decode_plain, decode_versioned};
use libfuzzer_sys::fuzz_target;
use protocols::attestation::{Challenge, Evidence};
use protocols::sealing::{SealedShare, ShareOpeningKey, ShareSlot};
use protocols::sharing::Commitments;
use protocols::ticket::{Ticket, TicketGrant, TicketRefusal};
use protocols::wire::*;
use protocols::wire::{self, MAX_MESSAGE_BYTES};

fuzz_target!(|data: &[u8]| {
    macro_rules! versioned {
        ($($t:ty),* $(,)?) => {$(
            let _ = decode_versioned::<$t>(data, MAX_MESSAGE_BYTES, stringify!($t));
        )*};
    }
    macro_rules! plain {
        ($($t:ty),* $(,)?) => {$(
            let _ = decode_plain::<$t>(data, MAX_MESSAGE_BYTES, stringify!($t));
        )*};
    }
    versioned!(
        SignedEnvelope,
        Contribution,
        ContributionBody,
        AuditRequest,
        AuditWindow,
        StatusHeartbeat,
        StoreShare,
        StoreReply,
        DeleteShares,
        SessionCreate,
        SessionCreated,
        TicketRequest,
        ShareFetch,
        ShareFetchReply,
        StoreBoxedShare,
        BoxedFetch,
        BoxedFetchReply,
        Redeal,
        SubDeal,
        SubShares,
        SubShareReport,
        Combine,
        SubDealReply,
        CombineReply,
        Ticket,
        TicketGrant,
        Challenge,
        Evidence,
    );
    plain!(
        SealedShare,
        ShareSlot,
        ShareOpeningKey,
        Commitments,
        Refusal,
        TicketRefusal,
        SessionPolicy,
        EntropyReceipt,
        SourceAccounting,
        SourceHealth,
        PowerState,
        StoreAck,
        NewHolder,
        SealedSubShare,
        DealRef,
        Complaint,
        CombineAck,
    );
    // Replies are generic: also the payload-less form every busy node sends.
    let _ = decode_versioned::<Reply<()>>(data, MAX_MESSAGE_BYTES, "Reply<()>");
    // The busy reply decodes as a refusal of every reply type.
    let busy = wire::busy_reply();
    for reply in [
        decode_versioned::<ShareFetchReply>(&busy, MAX_MESSAGE_BYTES, "busy ShareFetchReply")
            .map(|r| r.result.err()),
        decode_versioned::<StoreReply>(&busy, MAX_MESSAGE_BYTES, "busy StoreReply")
            .map(|r| r.result.err()),
    ] {
        assert_eq!(
            reply,
            Some(Some(Refusal::RateLimited)),
            "busy_reply does not decode"
        );
    }
    // Any CBOR at all: exercises the size, depth and trailing-byte guards on their own.
    if let Ok(v) = wire::decode_bounded::<ciborium::Value>(data, MAX_MESSAGE_BYTES) {
        std::hint::black_box(format!("{v:?}"));
    }
    // A limit one byte short of the input must always refuse it as oversized.
    if let Some(max) = data.len().checked_sub(1) {
        assert!(matches!(
            wire::decode_bounded::<ciborium::Value>(data, max),
            Err(WireError::Oversized { .. })
        ));
    }
});
