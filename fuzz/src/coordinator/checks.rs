//! The checks `coordinator_requests` makes on each reply and gossip verdict: the reply decodes as
//! the `Reply` type of the request it answers, and what succeeded was allowed for its caller.

use super::{Caller, JOIN_TOKEN, LIVE_SESSION, Outcome};
use crate::fixtures::FX;
use peer::node::{CONTRIBUTIONS_TOPIC, GossipVerdict, Protocol, RequestFrame, STATUS_TOPIC};
use protocols::ids::{NodeId, SessionId};
use protocols::ticket::{Ticket, TicketGrant};
use protocols::wire::{
    self, Contribution, CoordinatorCall, CoordinatorRecord, CoordinatorRequest, Joined, Reply,
    SessionCreated, SignedEnvelope, StatusHeartbeat, WIRE_VERSION,
};

/// Decodes a reply as `Reply<T>`; a reply that does not decode is a finding.
fn decode_reply<T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug>(
    reply: &[u8],
) -> Option<T> {
    let reply: Reply<T> = wire::decode(reply, wire::MAX_MESSAGE_BYTES)
        .unwrap_or_else(|e| panic!("the coordinator's reply does not decode: {e}"));
    assert_eq!(reply.v, WIRE_VERSION, "reply of another version");
    match reply.result {
        Ok(t) => Some(t),
        Err(refusal) => {
            std::hint::black_box(refusal.to_string());
            None
        }
    }
}

/// Checks a reply against the request it answers (decoded as the coordinator decodes it).
pub(super) fn check_reply(frame: &RequestFrame, caller: Caller, reply: &[u8]) -> Outcome {
    let fx = &*FX;
    let call = match frame {
        RequestFrame::Bytes(b) => {
            wire::decode::<CoordinatorCall>(b, Protocol::Coord.limits().0).ok()
        }
        RequestFrame::Oversized { .. } => None,
    };
    let answered = match call.map(|c| c.request) {
        None => {
            assert!(
                decode_reply::<()>(reply).is_none(),
                "a request that does not decode was answered"
            );
            false
        }
        Some(CoordinatorRequest::GetRecord) => {
            let envelope = decode_reply::<SignedEnvelope>(reply)
                .unwrap_or_else(|| panic!("the coordinator refused its own record"));
            let record: CoordinatorRecord = envelope
                .open(&fx.coordinator.node_id())
                .unwrap_or_else(|e| panic!("the coordinator's record does not open: {e}"));
            assert_eq!(record.v, WIRE_VERSION);
            true
        }
        Some(CoordinatorRequest::CreateSession(_)) => {
            let created = decode_reply::<SessionCreated>(reply);
            if created.is_some() {
                assert_eq!(
                    caller,
                    Caller::Authorised,
                    "a session was created for {caller:?}"
                );
            }
            created.is_some()
        }
        Some(CoordinatorRequest::GetTicket(req)) => match decode_reply::<TicketGrant>(reply) {
            Some(grant) => {
                check_grant(&grant, caller, &req.session);
                true
            }
            None => false,
        },
        Some(CoordinatorRequest::Join(join)) => match decode_reply::<Joined>(reply) {
            Some(joined) => {
                assert_eq!(
                    hex_decode(join.token.trim()).as_deref(),
                    Some(&JOIN_TOKEN[..]),
                    "a join succeeded without the live token"
                );
                assert_eq!(
                    (joined.region.as_str(), joined.operator.as_str()),
                    ("eu-west", "op-a")
                );
                true
            }
            None => false,
        },
        Some(CoordinatorRequest::GetMembershipOf(_)) => {
            decode_reply::<SignedEnvelope>(reply).is_some()
        }
        Some(CoordinatorRequest::GetMembership) => match decode_reply::<SignedEnvelope>(reply) {
            Some(envelope) => {
                let cert: protocols::membership::MembershipCert = envelope
                    .open(&fx.coordinator.node_id())
                    .unwrap_or_else(|e| panic!("a membership certificate does not open: {e}"));
                assert_eq!(cert.node, caller.key().node_id(), "a certificate for another node");
                assert_eq!(
                    cert.expires_at_ms - cert.issued_at_ms,
                    protocols::membership::VALIDITY_MS
                );
                true
            }
            None => false,
        },
    };
    if answered {
        Outcome::Answered
    } else {
        Outcome::Refused
    }
}

/// A ticket was granted: it is the coordinator's, for the live session, naming the caller,
/// who is its creator or named by its policy.
fn check_grant(grant: &TicketGrant, caller: Caller, asked: &SessionId) {
    let fx = &*FX;
    let ticket: Ticket = grant
        .ticket
        .open(&fx.coordinator.node_id())
        .unwrap_or_else(|e| panic!("a granted ticket does not open: {e}"));
    assert_eq!(ticket.session, *asked, "a ticket for another session");
    assert_eq!(
        ticket.session, LIVE_SESSION,
        "a ticket for an expired or unknown session"
    );
    assert_eq!(
        ticket.requester,
        caller.key().node_id(),
        "a ticket naming someone else"
    );
    assert!(
        matches!(caller, Caller::Authorised | Caller::Unauthorised),
        "a ticket for {caller:?}, whom the session does not name"
    );
    assert_eq!(
        grant.opening_keys.len(),
        ticket.holders.len(),
        "opening keys do not match the holders"
    );
}

/// Checks a gossip verdict: accepted only on a known topic, with an author, when the message
/// opens as that topic's payload signed by the author.
pub(super) fn check_gossip(
    topic: &str,
    signed: bool,
    caller: Caller,
    data: &[u8],
    verdict: &GossipVerdict,
) -> Outcome {
    if !matches!(verdict, GossipVerdict::Accept) {
        return Outcome::Refused;
    }
    assert!(signed, "unsigned gossip was accepted");
    let author: NodeId = caller.key().node_id();
    let envelope = SignedEnvelope::from_bytes(data, 16 * 1024)
        .unwrap_or_else(|e| panic!("accepted gossip is not an envelope: {e}"));
    let opens = match topic {
        STATUS_TOPIC => envelope.open::<StatusHeartbeat>(&author).is_ok(),
        CONTRIBUTIONS_TOPIC => envelope.open::<Contribution>(&author).is_ok(),
        _ => panic!("gossip on unknown topic {topic} was accepted"),
    };
    assert!(
        opens,
        "accepted gossip does not open as its author's {topic} message"
    );
    Outcome::Accepted
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}
