//! Writes small valid seed inputs for every fuzz target into `seeds/<target>/`.
//!
//!     cd fuzz && cargo run --example make-seeds            # writes ./seeds (next to Cargo.toml)
//!     cargo run --example make-seeds -- /some/other/dir
//!
//! Deterministic: fixed keys (the fixtures of `fuzz_support`), fixed nonces, so re-running it
//! rewrites identical files. The seeds that should pass the holder's / coordinator's checks are
//! checked to do so before they are written.

#[path = "make_seeds/coordinator_requests.rs"]
mod seeds_coordinator_requests;
#[path = "make_seeds/outside_protocols.rs"]
mod seeds_outside_protocols;

use std::fs;
use std::path::{Path, PathBuf};

use fuzz_support::{
    EPOCH, FX, HOLDER_INDEX, SESSION, SealedInput, run_evidence_checks, run_ticket_checks,
};
use protocols::attestation::{Evidence, HealthCounters};
use protocols::identity::NodeKey;
use protocols::sealing;
use protocols::sharing::{CommitmentBytes, Commitments};
use protocols::ticket::{OpeningKeyEntry, Ticket, TicketGrant, TicketRefusal};
use protocols::wire::*;

const MAX_SEED: usize = 4 * 1024;

struct Out {
    root: PathBuf,
    written: usize,
}

impl Out {
    fn target(&mut self, target: &str, seeds: Vec<(&str, Vec<u8>)>) {
        let dir = self.root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove old seeds");
        }
        fs::create_dir_all(&dir).expect("create seed dir");
        for (name, bytes) in seeds {
            assert!(
                bytes.len() < MAX_SEED,
                "{target}/{name} is {} bytes",
                bytes.len()
            );
            fs::write(dir.join(format!("{name}.bin")), &bytes).expect("write seed");
            self.written += 1;
        }
    }
}

/// The holder target's live ticket, expiring at 10 000 ms (the protocol targets' seeds check it
/// against fixed clocks, not the real one).
fn ticket() -> Ticket {
    Ticket {
        expires_at_ms: 10_000,
        ..fuzz_support::holder::live_ticket()
    }
}

fn evidence() -> Evidence {
    let fx = &*FX;
    Evidence {
        v: WIRE_VERSION,
        node: fx.peer.node_id(),
        nonce: fx.challenge.nonce,
        binary_sha256: [0xaa; 32],
        config_digest: [1; 32],
        boot_id: "0b8c-boot".into(),
        uptime_s: 30,
        health: HealthCounters {
            samples: 1_000,
            rct_failures: 0,
            apt_failures: 1,
            sources_active: 2,
            sources_cut_off: 0,
        },
        at_ms: 10_100,
        share_key: None,
    }
}

fn contribution() -> Contribution {
    Contribution {
        v: WIRE_VERSION,
        seq: 7,
        sent_at_ms: 1_700_000_000_000,
        sealed: (0..96u8).collect(),
        membership: None,
    }
}

fn contribution_body(bytes: usize) -> ContributionBody {
    ContributionBody {
        v: WIRE_VERSION,
        conditioned: (0..bytes).map(|i| (i * 37) as u8).collect(),
        accounting: SourceAccounting {
            source: "jitter".into(),
            bits_per_sample: 4,
            raw_samples: 4 * 171,
            h_millibits: 1875,
            estimator: "Lag Prediction (§6.3.8)".into(),
        },
    }
}

fn heartbeat(power: PowerState) -> StatusHeartbeat {
    StatusHeartbeat {
        v: WIRE_VERSION,
        seq: 3,
        at_ms: 1_700_000_000_000,
        power,
        region: "eu-west".into(),
        operator: "op-a".into(),
        uptime_s: 3_600,
        free_store_slots: 100,
        shares_held: 4,
        listen_addrs: vec!["/ip4/10.0.0.2/udp/4001/quic-v1".into()],
        sources: vec![
            SourceHealth {
                source: "thermal:zone0".into(),
                state: SourceState::Healthy,
                samples: 10_000,
                failures: 0,
            },
            SourceHealth {
                source: "jitter".into(),
                state: SourceState::CutOff,
                samples: 20,
                failures: 3,
            },
        ],
        membership: None,
    }
}

fn sealed_for_holder() -> sealing::SealedShare {
    let fx = &*FX;
    let (_, value) = fx
        .shares
        .iter()
        .find(|(i, _)| *i == HOLDER_INDEX)
        .expect("holder share");
    sealing::seal(&fx.slot_key, fx.slot, value, [0x22; 12])
}

fn store_share() -> StoreShare {
    StoreShare {
        v: WIRE_VERSION,
        share: sealed_for_holder(),
        expires_at_ms: 10_000,
    }
}

fn delete_shares() -> DeleteShares {
    DeleteShares {
        v: WIRE_VERSION,
        session: SESSION,
        epoch: EPOCH - 1,
    }
}

fn session_created() -> SessionCreated {
    let fx = &*FX;
    SessionCreated {
        v: WIRE_VERSION,
        session: SESSION,
        grant: TicketGrant {
            v: WIRE_VERSION,
            ticket: SignedEnvelope::seal(&fx.coordinator, &ticket()),
            opening_keys: vec![OpeningKeyEntry {
                index: HOLDER_INDEX,
                key: fx.slot_key.clone(),
            }],
        },
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
    }
}

fn session_create() -> SessionCreate {
    SessionCreate {
        v: WIRE_VERSION,
        policy: SessionPolicy {
            n: 5,
            k: 3,
            ttl_s: 3_600,
            requesters: vec![FX.requester.node_id()],
            label: "vpn-psk".into(),
        },
    }
}

fn env<T: SignedPayload>(key: &NodeKey, payload: &T) -> Vec<u8> {
    SignedEnvelope::seal(key, payload).to_bytes()
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    let fx = &*FX;
    let coord = &fx.coordinator;
    let peer = &fx.peer;
    let mut out = Out { root, written: 0 };

    // Sanity: the "valid" seeds pass the checks the targets run.
    let ticket_env = SignedEnvelope::seal(coord, &ticket());
    assert!(
        run_ticket_checks(&ticket_env).is_some(),
        "fixture ticket does not pass"
    );
    let evidence_env = SignedEnvelope::seal(peer, &evidence());
    assert!(
        run_evidence_checks(&evidence_env).is_some(),
        "fixture evidence does not pass"
    );

    out.target(
        "wire_messages",
        vec![
            ("ticket_envelope", ticket_env.to_bytes()),
            ("ticket", encode(&ticket())),
            ("evidence", encode(&evidence())),
            ("contribution", encode(&contribution())),
            ("heartbeat", encode(&heartbeat(PowerState::Mains))),
            ("store_share", encode(&store_share())),
            (
                "store_reply",
                encode(&StoreReply::refused(Refusal::StoreFull)),
            ),
            ("busy_reply", busy_reply()),
            (
                "share_fetch_reply",
                encode(&ShareFetchReply::ok(sealed_for_holder())),
            ),
            ("session_create", encode(&session_create())),
            ("challenge", encode(&fx.challenge)),
        ],
    );

    out.target(
        "signed_envelope",
        vec![
            ("ticket", ticket_env.to_bytes()),
            ("evidence", evidence_env.to_bytes()),
            ("contribution", env(peer, &contribution())),
            (
                "heartbeat",
                env(peer, &heartbeat(PowerState::Battery { percent: 40 })),
            ),
            ("store_share", env(coord, &store_share())),
            ("delete_shares", env(coord, &delete_shares())),
        ],
    );

    let mut expired = ticket();
    expired.expires_at_ms = 4_000;
    let mut other_requester = ticket();
    other_requester.requester = fx.outsider.node_id();
    let mut stale = ticket();
    stale.epoch = EPOCH + 1;
    out.target(
        "ticket_check",
        vec![
            ("valid_envelope", ticket_env.to_bytes()),
            ("valid_payload", encode(&ticket())),
            ("expired_envelope", env(coord, &expired)),
            ("wrong_requester_payload", encode(&other_requester)),
            ("stale_epoch_payload", encode(&stale)),
            ("forged_envelope", env(&fx.outsider, &ticket())),
        ],
    );

    let mut other_nonce = evidence();
    other_nonce.nonce = [7; 32];
    let mut unknown_binary = evidence();
    unknown_binary.binary_sha256 = [0xbb; 32];
    let mut early = evidence();
    early.at_ms = 8_000;
    out.target(
        "evidence_check",
        vec![
            ("valid_envelope", evidence_env.to_bytes()),
            ("valid_payload", encode(&evidence())),
            ("other_nonce_payload", encode(&other_nonce)),
            ("unknown_binary_envelope", env(peer, &unknown_binary)),
            ("early_payload", encode(&early)),
            ("wrong_signer_envelope", env(coord, &evidence())),
        ],
    );

    out.target(
        "share_fetch",
        vec![
            (
                "fetch",
                encode(&ShareFetch {
                    v: WIRE_VERSION,
                    ticket: ticket_env.clone(),
                }),
            ),
            (
                "reply_share",
                encode(&ShareFetchReply::ok(sealed_for_holder())),
            ),
            (
                "reply_stale",
                encode(&ShareFetchReply::refused(Refusal::Ticket(
                    TicketRefusal::StaleEpoch {
                        ticket_epoch: EPOCH,
                        held: vec![EPOCH + 1],
                    },
                ))),
            ),
            (
                "reply_expired",
                encode(&ShareFetchReply::refused(Refusal::Ticket(
                    TicketRefusal::Expired {
                        expired_at_ms: 10_000,
                        now_ms: 10_001,
                    },
                ))),
            ),
            ("reply_busy", busy_reply()),
        ],
    );

    out.target(
        "contribution",
        vec![
            ("contribution", encode(&contribution())),
            ("contribution_envelope", env(peer, &contribution())),
            ("body_small", encode(&contribution_body(32))),
            ("body_full", encode(&contribution_body(4 * 32))),
        ],
    );

    out.target(
        "heartbeat",
        vec![
            ("mains", encode(&heartbeat(PowerState::Mains))),
            (
                "battery",
                encode(&heartbeat(PowerState::Battery { percent: 17 })),
            ),
            ("envelope", env(peer, &heartbeat(PowerState::Mains))),
        ],
    );

    out.target(
        "store_share",
        vec![
            ("store_share", encode(&store_share())),
            ("store_share_envelope", env(coord, &store_share())),
            (
                "store_reply_durable",
                encode(&StoreReply::ok(StoreAck {
                    session: SESSION,
                    epoch: EPOCH,
                })),
            ),
            (
                "store_reply_refused",
                encode(&StoreReply::refused(Refusal::NotReady("entropy".into()))),
            ),
            ("delete_shares", encode(&delete_shares())),
            ("delete_shares_envelope", env(coord, &delete_shares())),
        ],
    );

    out.target(
        "session",
        vec![
            ("create", encode(&session_create())),
            ("created", encode(&session_created())),
            (
                "ticket_request",
                encode(&TicketRequest {
                    v: WIRE_VERSION,
                    session: SESSION,
                }),
            ),
        ],
    );

    let sealed = encode(&sealed_for_holder());
    let commitments = encode(&fx.commitments);
    let (first_index, first_value) = fx.shares[0];
    let holder_value = fx
        .shares
        .iter()
        .find(|(i, _)| *i == HOLDER_INDEX)
        .map(|(_, v)| *v)
        .expect("holder share");
    let bad_point = encode(&Commitments(vec![CommitmentBytes([0xff; 32]); 2]));
    out.target(
        "sealed_share_open",
        vec![
            (
                "holder_share",
                SealedInput::build(HOLDER_INDEX, &holder_value, &sealed, &commitments),
            ),
            (
                "first_share",
                SealedInput::build(first_index, &first_value, &sealed, &commitments),
            ),
            (
                "bad_commitment",
                SealedInput::build(first_index, &first_value, &sealed, &bad_point),
            ),
            (
                "no_commitments",
                SealedInput::build(1, &[0; 32], &sealed, &encode(&Commitments(vec![]))),
            ),
        ],
    );

    out.target("frame_codec", seeds_outside_protocols::frame_codec());
    out.target(
        "holder_requests",
        seeds_outside_protocols::holder_requests(),
    );
    out.target(
        "share_store_record",
        seeds_outside_protocols::share_store_record(),
    );
    out.target(
        "coordinator_records",
        seeds_outside_protocols::coordinator_records(),
    );
    out.target("admin_call", seeds_outside_protocols::admin_call());
    out.target(
        "coordinator_requests",
        seeds_coordinator_requests::coordinator_requests(),
    );

    println!("wrote {} seeds under {}", out.written, out.root.display());
}
