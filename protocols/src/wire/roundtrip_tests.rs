//! Property tests: every wire type survives encode → decode unchanged, and decoding never panics.

use super::codec::{Versioned, WIRE_VERSION, WireError, decode, encode};
use super::entropy_messages::*;
use super::messages::*;
use crate::attestation::{Challenge, Evidence};
use crate::ticket::{Ticket, TicketGrant};
use crate::wire::SignedEnvelope;
use proptest::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

const LIMIT: usize = 1 << 20;

fn roundtrip<T: Serialize + DeserializeOwned + Versioned>(
    mut value: T,
    set_v: impl Fn(&mut T),
) -> Result<(), TestCaseError> {
    set_v(&mut value);
    let bytes = encode(&value);
    let back: T = decode(&bytes, LIMIT).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(encode(&back), bytes);
    prop_assert_eq!(back.version(), WIRE_VERSION);
    Ok(())
}

macro_rules! roundtrip_tests {
    ($($name:ident: $t:ty),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $(
                #[test]
                fn $name(value in any::<$t>()) {
                    roundtrip(value, |m| m.v = WIRE_VERSION)?;
                }
            )*
        }
    };
}

roundtrip_tests!(
    contribution_round_trips: Contribution,
    contribution_body_round_trips: ContributionBody,
    audit_request_round_trips: AuditRequest,
    audit_window_round_trips: AuditWindow,
    status_heartbeat_round_trips: StatusHeartbeat,
    store_share_round_trips: StoreShare,
    store_reply_round_trips: StoreReply,
    delete_shares_round_trips: DeleteShares,
    session_create_round_trips: SessionCreate,
    session_created_round_trips: SessionCreated,
    ticket_request_round_trips: TicketRequest,
    share_fetch_round_trips: ShareFetch,
    share_fetch_reply_round_trips: ShareFetchReply,
    challenge_round_trips: Challenge,
    evidence_round_trips: Evidence,
    ticket_round_trips: Ticket,
    ticket_grant_round_trips: TicketGrant,
    signed_envelope_round_trips: SignedEnvelope,
    coordinator_record_round_trips: CoordinatorRecord,
    coordinator_call_round_trips: CoordinatorCall,
    holder_call_round_trips: HolderCall,
    membership_cert_round_trips: crate::membership::MembershipCert,
);

/// Gossip before membership certificates: the same fields, without `membership`.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct ContributionBeforeCertificates {
    v: u16,
    seq: u64,
    sent_at_ms: u64,
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

impl Versioned for ContributionBeforeCertificates {
    fn version(&self) -> u16 {
        self.v
    }
}

#[test]
fn gossip_without_a_certificate_encodes_as_before_and_old_decoders_skip_one() {
    let old = ContributionBeforeCertificates {
        v: WIRE_VERSION,
        seq: 7,
        sent_at_ms: 9,
        sealed: vec![1, 2, 3],
    };
    let new = Contribution {
        v: WIRE_VERSION,
        seq: 7,
        sent_at_ms: 9,
        sealed: vec![1, 2, 3],
        membership: None,
    };
    assert_eq!(encode(&new), encode(&old));
    assert_eq!(decode::<Contribution>(&encode(&old), LIMIT).unwrap(), new);
    let key = crate::identity::NodeKey::from_secret_bytes(&[5; 32]);
    let with_cert = Contribution {
        membership: Some(crate::membership::issue(&key, key.node_id(), 1)),
        ..new
    };
    assert_eq!(
        decode::<ContributionBeforeCertificates>(&encode(&with_cert), LIMIT).unwrap(),
        old
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Contribution>(&bytes, LIMIT);
        let _ = decode::<StatusHeartbeat>(&bytes, LIMIT);
        let _ = decode::<ShareFetch>(&bytes, LIMIT);
        let _ = decode::<Ticket>(&bytes, LIMIT);
        let _ = decode::<SignedEnvelope>(&bytes, LIMIT);
    }

    #[test]
    fn every_other_version_is_refused(v in any::<u16>().prop_filter("not current", |v| *v != WIRE_VERSION)) {
        let msg = TicketRequest { v, session: crate::ids::SessionId([0; 16]) };
        prop_assert_eq!(
            decode::<TicketRequest>(&encode(&msg), LIMIT).unwrap_err(),
            WireError::UnknownVersion { found: v, supported: WIRE_VERSION }
        );
    }
}

#[test]
fn busy_reply_decodes_as_a_refusal_of_any_reply_type() {
    let bytes = super::messages::busy_reply();
    let fetch: ShareFetchReply = decode(&bytes, LIMIT).unwrap();
    assert_eq!(fetch.result, Err(Refusal::RateLimited));
    let store: StoreReply = decode(&bytes, LIMIT).unwrap();
    assert_eq!(store.result, Err(Refusal::RateLimited));
}
