//! Seeds of the targets for code outside `protocols`: the frame codec, the holder's handlers,
//! the share store's and the coordinator database's records, and the admin socket.

use coordinator::admin::AdminCall;
use coordinator::db::fuzzing::encode_stored_record;
use coordinator::db::{
    CoordinatorSecrets, Enrolment, Holder, JoinToken, PendingEpoch, SessionRecord,
};
use fuzz_support::holder::{
    Body, FAR_FUTURE_MS, HOLDER, HolderInput, Remote, holder_share, live_ticket,
};
use fuzz_support::{EPOCH, FX, SESSION};
use peer::node::Protocol;
use peer::store::{RECORD_KEY_LEN, decode_stored_record};
use protocols::sealing::SealedShare;
use protocols::wire::*;
use serde::Serialize;

/// A length-prefixed frame as `peer::node::codec::FramedCodec` and the admin socket write it.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Seeds of `frame_codec`.
pub fn frame_codec() -> Vec<(&'static str, Vec<u8>)> {
    let fetch = encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket: SignedEnvelope::seal(&FX.coordinator, &live_ticket()),
    });
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend([7u8; 10]);
    vec![
        ("empty_frame", framed(&[])),
        ("share_fetch_frame", framed(&fetch)),
        ("attest_limit_frame", framed(&[0x81; 1024])),
        ("oversized_announcement", u32::MAX.to_be_bytes().to_vec()),
        ("truncated_body", truncated),
    ]
}

/// Seeds of `holder_requests` (layout: `fuzz_support::holder::HolderInput`).
pub fn holder_requests() -> Vec<(&'static str, Vec<u8>)> {
    let fx = &*FX;
    let coord = &fx.coordinator;
    let live = SignedEnvelope::seal(coord, &live_ticket());
    let fetch = encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket: live.clone(),
    });
    let store_order = StoreShare {
        v: WIRE_VERSION,
        share: holder_share(),
        expires_at_ms: FAR_FUTURE_MS,
    };
    let mut next_epoch = store_order.clone();
    next_epoch.share.slot.epoch = EPOCH + 1;
    let store_call = encode(&HolderCall {
        v: WIRE_VERSION,
        order: HolderOrder::Store(SignedEnvelope::seal(coord, &next_epoch)),
    });
    let delete = DeleteShares {
        v: WIRE_VERSION,
        session: SESSION,
        epoch: EPOCH,
    };
    let mut expired = live_ticket();
    expired.expires_at_ms = 10_000;
    let build = HolderInput::build;
    let seeds = vec![
        (
            "fetch_served",
            build(Protocol::Fetch, Remote::Requester, Body::Raw, false, &fetch),
        ),
        (
            "fetch_by_outsider",
            build(Protocol::Fetch, Remote::Outsider, Body::Raw, false, &fetch),
        ),
        (
            "fetch_signed_ticket",
            build(
                Protocol::Fetch,
                Remote::Requester,
                Body::SignedByCoordinator,
                false,
                &encode(&live_ticket()),
            ),
        ),
        (
            "fetch_expired_ticket",
            build(
                Protocol::Fetch,
                Remote::Requester,
                Body::SignedByCoordinator,
                false,
                &encode(&expired),
            ),
        ),
        (
            "fetch_envelope",
            build(
                Protocol::Fetch,
                Remote::Requester,
                Body::Envelope,
                false,
                &live.to_bytes(),
            ),
        ),
        (
            "fetch_oversized",
            build(
                Protocol::Fetch,
                Remote::Requester,
                Body::Oversized,
                false,
                &u32::MAX.to_be_bytes(),
            ),
        ),
        (
            "store_next_epoch",
            build(
                Protocol::Store,
                Remote::Coordinator,
                Body::Raw,
                false,
                &store_call,
            ),
        ),
        (
            "store_by_outsider",
            build(
                Protocol::Store,
                Remote::Outsider,
                Body::Raw,
                false,
                &store_call,
            ),
        ),
        (
            "store_signed_order",
            build(
                Protocol::Store,
                Remote::Coordinator,
                Body::SignedByCoordinator,
                false,
                &encode(&store_order),
            ),
        ),
        (
            "delete_signed_order",
            build(
                Protocol::Store,
                Remote::Coordinator,
                Body::SignedByCoordinator,
                true,
                &encode(&delete),
            ),
        ),
        (
            "attest_challenge",
            build(
                Protocol::Attest,
                Remote::Coordinator,
                Body::Raw,
                false,
                &encode(&fx.challenge),
            ),
        ),
        (
            "attest_by_requester",
            build(
                Protocol::Attest,
                Remote::Requester,
                Body::Raw,
                false,
                &encode(&fx.challenge),
            ),
        ),
        (
            "coord_on_holder",
            build(Protocol::Coord, Remote::Requester, Body::Raw, false, &fetch),
        ),
    ];
    // Each seed does what its name says against the real holder (its store is put back after
    // every request that changes it).
    let served = [
        "fetch_served",
        "fetch_signed_ticket",
        "fetch_envelope",
        "store_next_epoch",
        "store_signed_order",
        "delete_signed_order",
        "attest_challenge",
    ];
    for (name, input) in &seeds {
        let parsed = HolderInput::parse(input).expect("seed parses");
        assert_eq!(
            HOLDER.run(&parsed),
            served.contains(name),
            "holder seed {name} does not do what its name says"
        );
    }
    seeds
}

/// A share store record as the store writes it (`peer/src/store/record.rs`); checked against the
/// store's own decoder before it is written as a seed.
#[derive(Serialize)]
struct ShareRecord<'a> {
    v: u16,
    share: &'a SealedShare,
    expires_at_ms: u64,
}

fn store_key(session: &protocols::ids::SessionId, epoch: u32) -> [u8; RECORD_KEY_LEN] {
    let mut key = [0u8; RECORD_KEY_LEN];
    key[..16].copy_from_slice(&session.0);
    key[16..].copy_from_slice(&epoch.to_be_bytes());
    key
}

/// Seeds of `share_store_record` (layout: `key[20] ‖ record`).
pub fn share_store_record() -> Vec<(&'static str, Vec<u8>)> {
    let share = holder_share();
    let record = encode(&ShareRecord {
        v: 1,
        share: &share,
        expires_at_ms: FAR_FUTURE_MS,
    });
    let key = store_key(&SESSION, EPOCH);
    decode_stored_record(std::path::Path::new("seed"), &key, &record)
        .expect("the seed record decodes as the store reads it");
    let with_key = |key: [u8; RECORD_KEY_LEN], record: &[u8]| {
        let mut out = key.to_vec();
        out.extend_from_slice(record);
        out
    };
    let future = encode(&ShareRecord {
        v: 3,
        share: &share,
        expires_at_ms: 1,
    });
    vec![
        ("record", with_key(key, &record)),
        (
            "record_under_other_epoch",
            with_key(store_key(&SESSION, EPOCH + 1), &record),
        ),
        ("future_version", with_key(key, &future)),
    ]
}

/// Seeds of `coordinator_records`: one record of every table.
pub fn coordinator_records() -> Vec<(&'static str, Vec<u8>)> {
    let fx = &*FX;
    let holders = vec![
        Holder {
            node: fx.peer.node_id(),
            index: 1,
        },
        Holder {
            node: fx.holder.node_id(),
            index: 4,
        },
    ];
    let session = SessionRecord {
        session: SESSION,
        creator: fx.requester.node_id(),
        policy: SessionPolicy {
            n: 5,
            k: 3,
            ttl_s: 3_600,
            requesters: vec![fx.requester.node_id()],
            label: "vpn".into(),
        },
        policy_digest: [8; 32],
        epoch: EPOCH,
        holders: holders.clone(),
        commitments: fx.commitments.clone(),
        receipt: EntropyReceipt {
            contributors: vec![ReceiptLine {
                node: fx.peer.node_id(),
                credited_bits: 20_000,
                blocks: 1,
            }],
            credited_bits: 20_000,
            blocks_passed: 1,
            blocks_rejected: 0,
        },
        created_at_ms: 1_000,
        expires_at_ms: 3_601_000,
        rotations: 2,
        rotated_at_ms: 2_000,
        sealed_under: Some(protocols::sealing::SealingMasterKey::from_bytes([0x4d; 32]).id()),
        boxed: false,
    };
    let pending = PendingEpoch {
        session: SESSION,
        epoch: EPOCH + 1,
        holders,
        commitments: fx.commitments.clone(),
        started_at_ms: 2_500,
    };
    let enc = |r: Result<Vec<u8>, coordinator::db::DbError>| r.expect("seed record encodes");
    vec![
        ("session", enc(encode_stored_record(&session))),
        ("pending_epoch", enc(encode_stored_record(&pending))),
        (
            "enrolment",
            enc(encode_stored_record(&Enrolment {
                region: "eu-west".into(),
                operator: "alpha".into(),
                enrolled_at_ms: 1_000,
                share_key: None,
            })),
        ),
        (
            "join_token",
            enc(encode_stored_record(&JoinToken {
                region: "eu-west".into(),
                operator: "alpha".into(),
                expires_at_ms: 90_000,
            })),
        ),
        (
            "secrets",
            enc(encode_stored_record(&CoordinatorSecrets {
                noise_static: [0x4e; 32],
            })),
        ),
    ]
}

/// Seeds of `admin_call`: one framed command of every kind, and an oversized announcement.
pub fn admin_call() -> Vec<(&'static str, Vec<u8>)> {
    let node = FX.peer.node_id();
    let call = |c: AdminCall| framed(&encode(&c));
    vec![
        (
            "enrol",
            call(AdminCall::Enrol {
                node,
                region: "eu-west".into(),
                operator: "alpha".into(),
            }),
        ),
        (
            "join_token",
            call(AdminCall::JoinToken {
                region: "eu-west".into(),
                operator: "alpha".into(),
                ttl_s: 86_400,
            }),
        ),
        ("allow", call(AdminCall::Allow { sha256: [0xaa; 32] })),
        ("add_requester", call(AdminCall::AddRequester { node })),
        ("rotate", call(AdminCall::Rotate { session: SESSION })),
        ("status", call(AdminCall::Status)),
        ("sessions", call(AdminCall::Sessions)),
        ("disallow", call(AdminCall::Disallow { sha256: [0xaa; 32] })),
        ("allowed_binaries", call(AdminCall::AllowedBinaries)),
        (
            "remove_requester",
            call(AdminCall::RemoveRequester { node }),
        ),
        ("requesters", call(AdminCall::Requesters)),
        ("peers", call(AdminCall::Peers)),
        ("remove_peer", call(AdminCall::RemovePeer { node })),
        ("unquarantine", call(AdminCall::Unquarantine { node })),
        ("session", call(AdminCall::Session { session: SESSION })),
        (
            "revoke_session",
            call(AdminCall::RevokeSession { session: SESSION }),
        ),
        ("audit", call(AdminCall::Audit { since_ms: 0 })),
        (
            "oversized_announcement",
            (2u32 << 20).to_be_bytes().to_vec(),
        ),
    ]
}
