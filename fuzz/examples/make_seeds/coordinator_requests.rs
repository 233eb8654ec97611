//! Seeds of the target for the coordinator's own request and gossip handlers
//! (`coordinator_requests`).

use fuzz_support::FX;
use protocols::wire::*;

/// Seeds of `coordinator_requests` (layout: `fuzz_support::coordinator::CoordinatorInput`),
/// each checked to come to the outcome its name says against the real coordinator.
pub fn coordinator_requests() -> Vec<(&'static str, Vec<u8>)> {
    use fuzz_support::coordinator::{
        COORDINATOR, Caller, CoordinatorInput, JOIN_TOKEN, Kind, LIVE_SESSION, Outcome, hex,
    };
    let call = |request: CoordinatorRequest| {
        encode(&CoordinatorCall {
            v: WIRE_VERSION,
            request,
        })
    };
    let mut create = vec![5u8, 3];
    create.extend_from_slice(&60u64.to_le_bytes());
    create.push(0b10);
    create.extend_from_slice(b"seed session");
    let raw_create = call(CoordinatorRequest::CreateSession(SessionCreate {
        v: WIRE_VERSION,
        policy: SessionPolicy {
            n: 5,
            k: 3,
            ttl_s: 600,
            requesters: vec![],
            label: "raw".into(),
        },
    }));
    let raw_ticket = call(CoordinatorRequest::GetTicket(TicketRequest {
        v: WIRE_VERSION,
        session: LIVE_SESSION,
    }));
    let raw_join = call(CoordinatorRequest::Join(JoinRequest {
        token: hex(&JOIN_TOKEN),
    }));
    let heartbeat = encode(&super::heartbeat(PowerState::Mains));
    let contribution = encode(&super::contribution());
    let mut signed_status = vec![0u8];
    signed_status.extend_from_slice(&super::env(&FX.peer, &super::heartbeat(PowerState::Mains)));
    let mut unsigned_status = signed_status.clone();
    unsigned_status[0] = 4;
    let mut other_topic = signed_status.clone();
    other_topic[0] = 2;
    let mut unknown_session = vec![2u8];
    unknown_session.extend_from_slice(&[0x77; 16]);
    let b = CoordinatorInput::build;
    use Caller::*;
    use Outcome::*;
    let seeds: Vec<(&'static str, Vec<u8>, Outcome)> = vec![
        (
            "record",
            b(Stranger, Kind::Raw, &call(CoordinatorRequest::GetRecord)),
            Answered,
        ),
        (
            "membership",
            b(Enrolled, Kind::Raw, &call(CoordinatorRequest::GetMembership)),
            Answered,
        ),
        (
            "membership_stranger",
            b(Stranger, Kind::Raw, &call(CoordinatorRequest::GetMembership)),
            Refused,
        ),
        (
            "oversized",
            b(Stranger, Kind::Oversized, &[0, 0x10, 0, 0]),
            Refused,
        ),
        (
            "garbage",
            b(Authorised, Kind::Raw, &[0xa1, 0x01, 0xff]),
            Refused,
        ),
        (
            "create_authorised_empty_pool",
            b(Authorised, Kind::Create, &create),
            Refused,
        ),
        (
            "create_stranger",
            b(Stranger, Kind::Create, &create),
            Refused,
        ),
        (
            "create_raw_unauthorised",
            b(Unauthorised, Kind::Raw, &raw_create),
            Refused,
        ),
        (
            "ticket_creator",
            b(Authorised, Kind::Ticket, &[0]),
            Answered,
        ),
        (
            "ticket_named",
            b(Unauthorised, Kind::Ticket, &[0]),
            Answered,
        ),
        (
            "ticket_enrolled_peer",
            b(Enrolled, Kind::Ticket, &[0]),
            Refused,
        ),
        ("ticket_expired", b(Authorised, Kind::Ticket, &[1]), Refused),
        (
            "ticket_unknown",
            b(Authorised, Kind::Ticket, &unknown_session),
            Refused,
        ),
        (
            "ticket_raw_stranger",
            b(Stranger, Kind::Raw, &raw_ticket),
            Refused,
        ),
        (
            "ticket_raw_creator",
            b(Authorised, Kind::Raw, &raw_ticket),
            Answered,
        ),
        ("join_stranger", b(Stranger, Kind::Join, &[0]), Answered),
        ("join_enrolled", b(Enrolled, Kind::Join, &[0]), Answered),
        ("join_expired", b(Stranger, Kind::Join, &[1]), Refused),
        ("join_not_hex", b(Stranger, Kind::Join, b"\x02zz"), Refused),
        ("join_raw", b(Unauthorised, Kind::Raw, &raw_join), Answered),
        (
            "heartbeat_enrolled",
            b(Enrolled, Kind::Heartbeat, &heartbeat),
            Accepted,
        ),
        (
            "heartbeat_stranger",
            b(Stranger, Kind::Heartbeat, &heartbeat),
            Accepted,
        ),
        (
            "contribution_enrolled",
            b(Enrolled, Kind::Contribution, &contribution),
            Accepted,
        ),
        (
            "contribution_stranger",
            b(Stranger, Kind::Contribution, &contribution),
            Accepted,
        ),
        (
            "gossip_signed",
            b(Enrolled, Kind::Gossip, &signed_status),
            Accepted,
        ),
        (
            "gossip_wrong_author",
            b(Stranger, Kind::Gossip, &signed_status),
            Refused,
        ),
        (
            "gossip_unsigned",
            b(Enrolled, Kind::Gossip, &unsigned_status),
            Refused,
        ),
        (
            "gossip_other_topic",
            b(Enrolled, Kind::Gossip, &other_topic),
            Refused,
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, input, expected)| {
            let parsed = CoordinatorInput::parse(&input).expect("seed parses");
            assert_eq!(
                COORDINATOR.run(&parsed),
                expected,
                "coordinator seed {name} does not do what its name says"
            );
            (name, input)
        })
        .collect()
}
