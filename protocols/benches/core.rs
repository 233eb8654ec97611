//! Criterion benchmarks of the protocol core: sharing, sealing, key derivation, the
//! coordinator's per-session pipeline, entropy processing, quorum selection and tickets.
//!
//! Run with `cargo bench -p entroshard-protocols --bench core`. Every input is built
//! from a seeded ChaCha20 generator outside the timed closures, so runs are comparable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "core_parts/entropy_quorum.rs"]
mod entropy_quorum;

use std::hint::black_box;
use std::time::Duration;

use chacha20::ChaCha20Rng;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use protocols::holder_box;
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId, ShareIndex};
use protocols::keys::SessionSecret;
use protocols::sealing::{self, SealedShare, SealingMasterKey, ShareSlot};
use protocols::share_box::{self, BoxSecret};
use protocols::sharing::{self, Commitments, ShareChecker, UnverifiedShare, VerifiedShare};
use protocols::ticket::{self, Ticket, TicketHolder};
use protocols::wire::{MAX_MESSAGE_BYTES, SignedEnvelope, WIRE_VERSION};
use rand_core::{Rng, SeedableRng};

/// A fixed "now" (unix milliseconds) shared by every bench that takes a clock.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// A deterministic generator; each bench uses its own seed.
pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// `N` bytes from `rng`.
pub fn bytes<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

fn session_secret(rng: &mut ChaCha20Rng) -> (SessionSecret, SessionId) {
    let session = SessionId(bytes(rng));
    let secret = SessionSecret::derive(&bytes(rng), &bytes(rng), &session)
        .expect("a random derivation is never the zero scalar");
    (secret, session)
}

/// Share indices `1..=n`.
fn indices(n: u8) -> Vec<ShareIndex> {
    (1..=n).collect()
}

/// A fresh k-of-n sharing of a random secret.
fn sharing_of(n: u8, k: usize, seed: u8) -> (Vec<VerifiedShare>, Commitments) {
    let mut rng = rng(seed);
    let (secret, _) = session_secret(&mut rng);
    sharing::split(&secret, &indices(n), k, &mut rng).expect("valid parameters")
}

const SHAPES: [(u8, usize, &str); 2] = [(5, 3, "5of3"), (16, 11, "16of11")];

fn bench_split(c: &mut Criterion) {
    let mut group = c.benchmark_group("split");
    for (n, k, name) in SHAPES {
        let mut rng = rng(1);
        let (secret, _) = session_secret(&mut rng);
        let idx = indices(n);
        group.bench_function(name, |b| {
            b.iter(|| sharing::split(black_box(&secret), &idx, k, &mut rng).unwrap());
        });
    }
    group.finish();
}

fn bench_verify_share(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_share");
    for (n, k, name) in SHAPES {
        let (shares, commitments) = sharing_of(n, k, 2);
        let share = &shares[usize::from(n) / 2];
        let (index, value) = (share.index(), share.value_bytes());
        UnverifiedShare::new(index, value)
            .verify(&commitments)
            .expect("a dealt share verifies");
        group.bench_function(name, |b| {
            b.iter_batched(
                || UnverifiedShare::new(index, value),
                |u| u.verify(black_box(&commitments)).unwrap(),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// What a requester does per fetch with a kept checker (decision 0008): one share checked as it
/// arrives (public share already known), and combining k with the kept Lagrange weights.
fn bench_checker(c: &mut Criterion) {
    let mut group = c.benchmark_group("checker");
    for (n, k, name) in SHAPES {
        let (shares, commitments) = sharing_of(n, k, 4);
        let raw: Vec<(u8, [u8; 32])> = shares
            .iter()
            .take(k)
            .map(|s| (s.index(), s.value_bytes()))
            .collect();
        let mut checker = ShareChecker::new(&commitments).expect("commitments decode");
        let verified: Vec<VerifiedShare> = raw
            .iter()
            .map(|(i, v)| checker.verify(UnverifiedShare::new(*i, *v)).unwrap())
            .collect();
        group.bench_function(format!("verify_one_warm/{name}"), |b| {
            let (i, v) = raw[0];
            b.iter(|| {
                checker
                    .verify(UnverifiedShare::new(i, black_box(v)))
                    .unwrap()
            });
        });
        group.bench_function(format!("combine_k_warm/{name}"), |b| {
            b.iter(|| checker.combine(black_box(&verified)).unwrap());
        });
        group.bench_function(format!("first_fetch_k/{name}"), |b| {
            b.iter(|| {
                let mut fresh = ShareChecker::new(black_box(&commitments)).unwrap();
                let got: Vec<VerifiedShare> = raw
                    .iter()
                    .map(|(i, v)| fresh.verify(UnverifiedShare::new(*i, *v)).unwrap())
                    .collect();
                fresh.combine(&got).unwrap()
            });
        });
    }
    group.finish();
}

fn bench_combine(c: &mut Criterion) {
    let mut group = c.benchmark_group("combine");
    for (n, k, name) in SHAPES {
        let (shares, commitments) = sharing_of(n, k, 3);
        // What a requester holds after opening and verifying every holder's share.
        let verified: Vec<VerifiedShare> = shares
            .iter()
            .map(|s| {
                UnverifiedShare::new(s.index(), s.value_bytes())
                    .verify(&commitments)
                    .unwrap()
            })
            .collect();
        sharing::combine(&verified, &commitments).expect("n shares combine");
        group.bench_function(name, |b| {
            b.iter(|| sharing::combine(black_box(&verified), &commitments).unwrap());
        });
    }
    group.finish();
}

fn slot(rng: &mut ChaCha20Rng, index: ShareIndex) -> ShareSlot {
    ShareSlot {
        session: SessionId(bytes(rng)),
        epoch: 3,
        holder: NodeId(bytes(rng)),
        index,
    }
}

fn bench_sealing(c: &mut Criterion) {
    let mut rng = rng(4);
    let master = SealingMasterKey::from_bytes(bytes(&mut rng));
    let slot = slot(&mut rng, 4);
    let key = master.share_key(&slot);
    let value: [u8; 32] = sharing_of(5, 3, 5).0[3].value_bytes();
    let nonce: [u8; 12] = bytes(&mut rng);
    let sealed = sealing::seal(&key, slot, &value, nonce);
    sealing::open(&key, &slot, &sealed).expect("a sealed share opens");

    c.bench_function("derive_share_key", |b| {
        b.iter(|| master.share_key(black_box(&slot)));
    });
    c.benchmark_group("seal").bench_function("share", |b| {
        b.iter(|| sealing::seal(&key, black_box(slot), black_box(&value), nonce));
    });
    c.benchmark_group("open").bench_function("share", |b| {
        b.iter(|| sealing::open(&key, &slot, black_box(&sealed)).unwrap());
    });
}

/// A fetch's box work: the holder opens its stored box and boxes the share again to the
/// requester's reply key; the requester opens the answer.
fn bench_fetch_boxes(c: &mut Criterion) {
    let mut rng = rng(12);
    let slot = slot(&mut rng, 4);
    let value: [u8; 32] = sharing_of(5, 3, 13).0[3].value_bytes();
    let share_key = BoxSecret::generate(&mut rng);
    let stored = share_box::box_to(
        &share_key.public(),
        &holder_box::slot_context(&slot),
        &value,
        &mut rng,
    )
    .unwrap();
    let reply = BoxSecret::generate(&mut rng);
    let reply_key = reply.public();
    let nonce: [u8; 16] = bytes(&mut rng);
    let answer =
        holder_box::rebox_for_fetch(&share_key, &slot, &stored, &nonce, &reply_key, &mut rng)
            .unwrap();
    let mut group = c.benchmark_group("fetch_boxes");
    group.bench_function("holder_rebox", |b| {
        b.iter(|| {
            holder_box::rebox_for_fetch(
                &share_key,
                &slot,
                black_box(&stored),
                &nonce,
                &reply_key,
                &mut rng,
            )
            .unwrap()
        });
    });
    group.bench_function("requester_open", |b| {
        b.iter(|| {
            holder_box::open_fetched_unverified(&reply, &slot, &nonce, black_box(&answer)).unwrap()
        });
    });
    group.bench_function("reply_secret", |b| {
        b.iter(|| BoxSecret::generate(&mut rng).public());
    });
    group.finish();
}

fn bench_derive(c: &mut Criterion) {
    let mut rng = rng(6);
    let generator_output: [u8; 32] = bytes(&mut rng);
    let os_random: [u8; 32] = bytes(&mut rng);
    let session = SessionId(bytes(&mut rng));
    let secret = SessionSecret::derive(&generator_output, &os_random, &session).unwrap();
    let policy_digest: [u8; 32] = bytes(&mut rng);

    let mut group = c.benchmark_group("derive");
    group.bench_function("session_secret", |b| {
        b.iter(|| {
            SessionSecret::derive(
                black_box(&generator_output),
                black_box(&os_random),
                black_box(&session),
            )
            .unwrap()
        });
    });
    group.bench_function("user_key", |b| {
        b.iter(|| secret.user_key(black_box(&policy_digest)));
    });
    group.finish();
}

/// The coordinator's work for one new session, minus I/O: derive the secret, split it
/// 3-of-5, derive the five slot keys and seal the five shares.
fn bench_session_pipeline(c: &mut Criterion) {
    let mut rng = rng(7);
    let master = SealingMasterKey::from_bytes(bytes(&mut rng));
    let holders: Vec<NodeId> = (0..5).map(|_| NodeId(bytes(&mut rng))).collect();
    let generator_output: [u8; 32] = bytes(&mut rng);
    let os_random: [u8; 32] = bytes(&mut rng);
    let session = SessionId(bytes(&mut rng));
    let idx = indices(5);

    let run = |rng: &mut ChaCha20Rng| -> (Vec<SealedShare>, Commitments) {
        let secret = SessionSecret::derive(&generator_output, &os_random, &session).unwrap();
        let (shares, commitments) = sharing::split(&secret, &idx, 3, rng).unwrap();
        let sealed = shares
            .iter()
            .zip(&holders)
            .map(|(share, holder)| {
                let slot = ShareSlot {
                    session,
                    epoch: 0,
                    holder: *holder,
                    index: share.index(),
                };
                let key = master.share_key(&slot);
                sealing::seal(&key, slot, &share.value_bytes(), bytes(rng))
            })
            .collect();
        (sealed, commitments)
    };
    let (sealed, commitments) = run(&mut rng);
    assert_eq!((sealed.len(), commitments.threshold()), (5, 3));

    let mut group = c.benchmark_group("session_pipeline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("derive_split_seal_n5", |b| b.iter(|| run(&mut rng)));
    group.finish();
}

fn ticket_fixture() -> (NodeKey, NodeId, NodeId, Ticket) {
    let mut rng = rng(8);
    let coordinator = NodeKey::from_secret_bytes(&bytes(&mut rng));
    let requester = NodeKey::from_secret_bytes(&bytes(&mut rng)).node_id();
    let holders: Vec<TicketHolder> = (1..=16u8)
        .map(|index| TicketHolder {
            node: NodeKey::from_secret_bytes(&bytes(&mut rng)).node_id(),
            index,
            addrs: vec![
                format!("/ip4/10.{index}.0.7/udp/4001/quic-v1"),
                format!("/ip6/fd00::{index:x}/tcp/4001"),
            ],
        })
        .collect();
    let local = holders[7].node;
    let (_, commitments) = sharing_of(16, 11, 9);
    let ticket = Ticket {
        v: WIRE_VERSION,
        coordinator: coordinator.node_id(),
        session: SessionId(bytes(&mut rng)),
        epoch: 2,
        requester,
        holders,
        commitments,
        policy_digest: bytes(&mut rng),
        issued_at_ms: NOW_MS,
        expires_at_ms: NOW_MS + 300_000,
        nonce: bytes(&mut rng),
    };
    (coordinator, requester, local, ticket)
}

fn bench_wire(c: &mut Criterion) {
    let (coordinator, requester, local, ticket) = ticket_fixture();
    let coordinator_id = coordinator.node_id();
    let wire = SignedEnvelope::seal(&coordinator, &ticket).to_bytes();
    let now = NOW_MS + 1_000;
    let check = |bytes: &[u8]| {
        let envelope = SignedEnvelope::from_bytes(bytes, MAX_MESSAGE_BYTES).unwrap();
        ticket::check_ticket(&envelope, &coordinator_id, now, &requester, &local, |_| {
            vec![2]
        })
        .unwrap()
    };
    assert_eq!(check(&wire).index, 8);

    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("ticket_encode", |b| {
        b.iter(|| SignedEnvelope::seal(&coordinator, black_box(&ticket)).to_bytes());
    });
    group.bench_function("ticket_decode_verify", |b| {
        b.iter(|| check(black_box(&wire)));
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = crypto;
    config = config();
    targets = bench_split, bench_verify_share, bench_checker, bench_combine, bench_sealing, bench_fetch_boxes, bench_derive,
        bench_session_pipeline, bench_wire
}
criterion_group! {
    name = entropy_and_quorum;
    config = config();
    targets = entropy_quorum::bench_entropy, entropy_quorum::bench_quorum
}
criterion_main!(crypto, entropy_and_quorum);
