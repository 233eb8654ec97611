//! The redistribution messages round-trip, travel signed, and are refused (never a panic) when
//! truncated, oversized, of version 1 or signed by someone else; the largest messages a
//! redistribution of [`MAX_REDEAL_HOLDERS`] holders makes fit their bounds.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::identity::NodeKey;
use crate::sharing::CommitmentBytes;
use crate::wire::{HolderCall, HolderOrder, MAX_MESSAGE_BYTES, WireError, decode, encode};
use proptest::prelude::*;
use serde::de::DeserializeOwned;

const LIMIT: usize = 1 << 20;

fn roundtrip<T: Serialize + DeserializeOwned + Versioned + PartialEq + std::fmt::Debug>(
    value: T,
) -> Result<(), TestCaseError> {
    let bytes = encode(&value);
    let back: T = decode(&bytes, LIMIT).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(encode(&back), bytes);
    prop_assert_eq!(back, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn redeal_round_trips(mut m in any::<Redeal>()) {
        m.v = WIRE_VERSION_2;
        roundtrip(m)?;
    }

    #[test]
    fn sub_deal_round_trips(mut m in any::<SubDeal>()) {
        m.v = WIRE_VERSION_2;
        roundtrip(m)?;
    }

    #[test]
    fn sub_shares_round_trips(mut m in any::<SubShares>()) {
        m.v = WIRE_VERSION_2;
        roundtrip(m)?;
    }

    #[test]
    fn sub_share_report_round_trips(mut m in any::<SubShareReport>()) {
        m.v = WIRE_VERSION_2;
        roundtrip(m)?;
    }

    #[test]
    fn combine_round_trips(mut m in any::<Combine>()) {
        m.v = WIRE_VERSION_2;
        roundtrip(m)?;
    }

    #[test]
    fn combine_reply_round_trips(ack in any::<CombineAck>()) {
        roundtrip(CombineReply::ok(ack))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_redistribution_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Redeal>(&bytes, LIMIT);
        let _ = decode::<SubDeal>(&bytes, LIMIT);
        let _ = decode::<SubShares>(&bytes, LIMIT);
        let _ = decode::<SubShareReport>(&bytes, LIMIT);
        let _ = decode::<Combine>(&bytes, LIMIT);
        let _ = decode::<CombineReply>(&bytes, LIMIT);
        let _ = decode::<SubDealReply>(&bytes, LIMIT);
    }
}

fn commitments(n: usize) -> Commitments {
    Commitments(vec![CommitmentBytes([6; 32]); n])
}

fn boxed() -> Boxed {
    Boxed {
        ephemeral: [1; 32],
        sealed: vec![2; crate::share_box::BOXED_BYTES],
    }
}

/// The largest sub-dealing: threshold and quorum of [`MAX_REDEAL_HOLDERS`].
fn largest_sub_deal(dealer: ShareIndex) -> SubDeal {
    SubDeal {
        v: WIRE_VERSION_2,
        session: SessionId([1; 16]),
        to: u32::MAX,
        dealer,
        commitments: commitments(MAX_REDEAL_HOLDERS),
        sub_shares: (0..MAX_REDEAL_HOLDERS as u8)
            .map(|i| SealedSubShare {
                index: 200 + i,
                boxed: boxed(),
            })
            .collect(),
    }
}

#[test]
fn the_largest_redistribution_messages_fit_their_bounds_and_the_holder_order() {
    let old = NodeKey::from_secret_bytes(&[1; 32]);
    let coordinator = NodeKey::from_secret_bytes(&[2; 32]);
    let redeal = Redeal {
        v: WIRE_VERSION_2,
        session: SessionId([1; 16]),
        from: u32::MAX - 1,
        to: u32::MAX,
        new_threshold: 255,
        new_holders: (0..MAX_REDEAL_HOLDERS as u8)
            .map(|i| NewHolder {
                node: NodeId([0xff; 32]),
                index: 200 + i,
                share_key: BoxPublic([0xff; 32]),
            })
            .collect(),
        old_commitments: commitments(255),
    };
    let envelope = SignedEnvelope::seal(&coordinator, &redeal);
    assert_eq!(
        envelope.open::<Redeal>(&coordinator.node_id()).unwrap(),
        redeal
    );
    let deal = SignedEnvelope::seal(&old, &largest_sub_deal(255));
    assert_eq!(
        deal.open::<SubDeal>(&old.node_id()).unwrap(),
        largest_sub_deal(255)
    );
    let sub_shares = SubShares {
        v: WIRE_VERSION_2,
        session: SessionId([1; 16]),
        to: u32::MAX,
        holder: NodeId([0xff; 32]),
        index: 255,
        new_threshold: 255,
        old_commitments: commitments(255),
        deals: (0..MAX_REDEAL_HOLDERS as u8)
            .map(|i| SignedEnvelope::seal(&old, &largest_sub_deal(200 + i)))
            .collect(),
    };
    let envelope = SignedEnvelope::seal(&coordinator, &sub_shares);
    assert_eq!(
        envelope.open::<SubShares>(&coordinator.node_id()).unwrap(),
        sub_shares
    );
    let call = encode(&HolderCall {
        v: 1,
        order: HolderOrder::SubShares(envelope),
    });
    assert!(call.len() <= MAX_SUB_SHARES_BYTES + 1024, "{}", call.len());
    let report = SubShareReport {
        v: WIRE_VERSION_2,
        session: SessionId([1; 16]),
        to: u32::MAX,
        index: 255,
        valid: Vec::new(),
        complaints: (0..MAX_REDEAL_HOLDERS as u8)
            .map(|i| Complaint {
                deal: DealRef {
                    dealer: i,
                    digest: [0xff; 32],
                },
                reason: ComplaintReason::FailsCommitments,
                reveal: Some(Reveal {
                    shared: [0xff; 32],
                    challenge: [0xff; 32],
                    response: [0xff; 32],
                }),
            })
            .collect(),
    };
    let signed = SignedEnvelope::seal(&old, &report);
    assert_eq!(
        signed.open::<SubShareReport>(&old.node_id()).unwrap(),
        report
    );
    let combine = Combine {
        v: WIRE_VERSION_2,
        session: SessionId([1; 16]),
        to: u32::MAX,
        holder: NodeId([0xff; 32]),
        index: 255,
        qualified: (1..=MAX_REDEAL_HOLDERS as u8)
            .map(|dealer| DealRef {
                dealer,
                digest: [0xff; 32],
            })
            .collect(),
        expires_at_ms: u64::MAX,
    };
    let signed = SignedEnvelope::seal(&coordinator, &combine);
    assert_eq!(
        signed.open::<Combine>(&coordinator.node_id()).unwrap(),
        combine
    );
}

#[test]
fn a_sub_deal_over_its_bound_wrongly_signed_or_of_version_1_is_refused() {
    let old = NodeKey::from_secret_bytes(&[1; 32]);
    let mut huge = largest_sub_deal(1);
    huge.sub_shares.extend(largest_sub_deal(1).sub_shares);
    huge.sub_shares.extend(largest_sub_deal(1).sub_shares);
    let envelope = SignedEnvelope::seal(&old, &huge);
    assert!(matches!(
        envelope.open::<SubDeal>(&old.node_id()),
        Err(WireError::Oversized { .. })
    ));
    let envelope = SignedEnvelope::seal(&old, &largest_sub_deal(1));
    let other = NodeKey::from_secret_bytes(&[3; 32]);
    assert_eq!(
        envelope.open::<SubDeal>(&other.node_id()),
        Err(WireError::UnexpectedSigner)
    );
    // The same bytes are no other message: a signature's context is its type's.
    assert_eq!(
        envelope.open::<SubShareReport>(&old.node_id()),
        Err(WireError::BadSignature)
    );
    let v1 = SubDeal {
        v: 1,
        ..largest_sub_deal(1)
    };
    assert_eq!(
        decode::<SubDeal>(&encode(&v1), MAX_MESSAGE_BYTES),
        Err(WireError::UnknownVersion {
            found: 1,
            supported: WIRE_VERSION_2
        })
    );
    let bytes = encode(&largest_sub_deal(1));
    for cut in (0..bytes.len()).step_by(7) {
        assert!(decode::<SubDeal>(&bytes[..cut], MAX_MESSAGE_BYTES).is_err());
    }
    assert!(matches!(
        decode::<SubDeal>(&bytes, bytes.len() - 1),
        Err(WireError::Oversized { .. })
    ));
}
