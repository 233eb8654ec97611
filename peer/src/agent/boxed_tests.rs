//! A holder's handlers with shares boxed to it, over a real store: a boxed store order is
//! opened and checked before it is stored (a share that fails its commitments is refused
//! `bad_share`), and a fetch with a reply key gets the share boxed again to that key only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::DetachedHandlers;
use super::measure::Measurement;
use crate::node::{Protocol, RequestFrame};
use crate::store::{HeldShare, ShareStore};
use chacha20::ChaCha20Rng;
use protocols::holder_box::{self, open_fetched, slot_context};
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionSecret;
use protocols::reshare::{Dealt, Placement};
use protocols::share_box::{self, BoxSecret};
use protocols::sharing::VerifiedShare;
use protocols::ticket::{Ticket, TicketHolder};
use protocols::wire::{
    self, BoxedFetch, BoxedFetchReply, FetchedShare, HolderCall, HolderOrder, Refusal, Reply,
    ShareFetch, SignedEnvelope, StoreAck, StoreBoxedShare, WIRE_VERSION, WIRE_VERSION_2,
};
use rand_core::SeedableRng;
use std::sync::Arc;

struct Holder {
    handlers: DetachedHandlers,
    store: Arc<ShareStore>,
    key: NodeKey,
    share_key: BoxSecret,
    coordinator: NodeKey,
    _dir: tempfile::TempDir,
}

/// A holder's request handlers over a new share store (its directory lives as long as the
/// returned one): identity from `node_seed`, share key from `box_seed`, taking orders signed by
/// `coordinator`.
pub(super) fn handlers_on_a_new_store(
    node_seed: u8,
    box_seed: u8,
    coordinator: NodeId,
    boot_id: &str,
) -> (DetachedHandlers, Arc<ShareStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ShareStore::open(&dir.path().join("shares.redb"), 16).unwrap());
    let measurement = Measurement {
        binary_sha256: [0xaa; 32],
        config_digest: [1; 32],
        boot_id: boot_id.into(),
    };
    let handlers = DetachedHandlers::new(
        NodeKey::from_secret_bytes(&[node_seed; 32]),
        BoxSecret::from_uniform_bytes(&[box_seed; 64]),
        coordinator,
        store.clone(),
        measurement,
        1e12,
    );
    (handlers, store, dir)
}

fn holder() -> Holder {
    let key = NodeKey::from_secret_bytes(&[21; 32]);
    let share_key = BoxSecret::from_uniform_bytes(&[22; 64]);
    let coordinator = NodeKey::from_secret_bytes(&[23; 32]);
    let (handlers, store, dir) =
        handlers_on_a_new_store(21, 22, coordinator.node_id(), "boxed-tests");
    Holder {
        handlers,
        store,
        key,
        share_key,
        coordinator,
        _dir: dir,
    }
}

const SESSION: SessionId = SessionId([5; 16]);

/// A (3, 2) dealing whose first holder is `h`, boxed to `h`'s share key.
fn dealing(h: &Holder, rng: &mut ChaCha20Rng) -> (holder_box::BoxedDealing, Vec<VerifiedShare>) {
    let secret = SessionSecret::derive(&[1; 32], &[2; 32], &SESSION).unwrap();
    let placements = [h.key.node_id(), NodeId([2; 32]), NodeId([3; 32])]
        .into_iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node, index })
        .collect();
    let dealt = Dealt::fresh(SESSION, 0, &secret, placements, 2, 2, rng).unwrap();
    let shares = dealt.deliveries().iter().map(|(_, s)| s.clone()).collect();
    let mine = h.share_key.public();
    let others = BoxSecret::from_uniform_bytes(&[9; 64]).public();
    let me = h.key.node_id();
    let boxed = dealt
        .seal_to_holders(|n| Some(if n == &me { mine } else { others }), rng)
        .unwrap();
    (boxed, shares)
}

fn store_call(h: &Holder, order: &StoreBoxedShare) -> Vec<u8> {
    wire::encode(&HolderCall {
        v: WIRE_VERSION,
        order: HolderOrder::StoreBoxed(SignedEnvelope::seal(&h.coordinator, order)),
    })
}

async fn ask(h: &Holder, protocol: Protocol, from: &NodeKey, bytes: Vec<u8>) -> Vec<u8> {
    let remote = crate::identity::peer_id(&from.node_id()).unwrap();
    h.handlers
        .answer(protocol, remote, RequestFrame::Bytes(bytes))
        .await
}

fn order_for(d: &holder_box::BoxedDealing, i: usize) -> StoreBoxedShare {
    let b = &d.boxes()[i];
    StoreBoxedShare {
        v: WIRE_VERSION_2,
        slot: d.slot(&b.placement),
        boxed: b.boxed.clone(),
        commitments: d.commitments().clone(),
        expires_at_ms: u64::MAX,
    }
}

#[tokio::test]
async fn a_boxed_share_is_checked_stored_and_served_boxed_to_the_fetchs_reply_key_only() {
    let h = holder();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let (d, shares) = dealing(&h, &mut rng);
    let raw = ask(
        &h,
        Protocol::Store,
        &h.coordinator,
        store_call(&h, &order_for(&d, 0)),
    )
    .await;
    let ack: Reply<StoreAck> = wire::decode(&raw, 1024).unwrap();
    assert_eq!(
        ack.result,
        Ok(StoreAck {
            session: SESSION,
            epoch: 0
        })
    );
    let stored = h.store.get(&SESSION, 0).unwrap().unwrap();
    assert!(matches!(stored.share, HeldShare::Boxed(_)));

    let requester = NodeKey::from_secret_bytes(&[30; 32]);
    let ticket = Ticket {
        v: WIRE_VERSION,
        coordinator: h.coordinator.node_id(),
        session: SESSION,
        epoch: 0,
        requester: requester.node_id(),
        holders: vec![TicketHolder {
            node: h.key.node_id(),
            index: 1,
            addrs: Vec::new(),
        }],
        commitments: d.commitments().clone(),
        policy_digest: [0; 32],
        issued_at_ms: 0,
        expires_at_ms: u64::MAX,
        nonce: [7; 16],
    };
    let ticket = SignedEnvelope::seal(&h.coordinator, &ticket);
    let reply_secret = BoxSecret::generate(&mut rng);
    let fetch = BoxedFetch {
        v: WIRE_VERSION_2,
        ticket: ticket.clone(),
        reply_key: reply_secret.public(),
    };
    let raw = ask(&h, Protocol::Fetch, &requester, wire::encode(&fetch)).await;
    let reply: BoxedFetchReply = wire::decode(&raw, 4096).unwrap();
    let Ok(FetchedShare::Reboxed { index, boxed }) = reply.result else {
        panic!("expected a reboxed share, got {:?}", reply.result);
    };
    assert_eq!(index, 1);
    let slot = d.slot(&d.boxes()[0].placement);
    let got = open_fetched(&reply_secret, &slot, &[7; 16], &boxed, d.commitments()).unwrap();
    assert_eq!(got.value_bytes(), shares[0].value_bytes());
    // Neither the holder's own key nor another fetch's key opens the answer.
    assert!(open_fetched(&h.share_key, &slot, &[7; 16], &boxed, d.commitments()).is_err());
    // What went over the wire and what is on disk never hold the share's bytes.
    let plain = shares[0].value_bytes();
    assert!(!raw.windows(32).any(|w| w == plain));
    let HeldShare::Boxed(b) = &stored.share else {
        unreachable!()
    };
    assert!(!b.boxed.sealed.windows(32).any(|w| w == plain));

    // A version-1 fetch (no reply key) of a boxed share is refused.
    let v1 = ShareFetch {
        v: WIRE_VERSION,
        ticket,
    };
    let raw = ask(&h, Protocol::Fetch, &requester, wire::encode(&v1)).await;
    let reply: Reply<()> = wire::decode(&raw, 4096).unwrap();
    assert!(matches!(reply.result, Err(Refusal::Malformed(_))));
}

#[tokio::test]
async fn a_boxed_share_that_fails_its_commitments_is_refused_as_bad_share_and_not_stored() {
    let h = holder();
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let (d, _) = dealing(&h, &mut rng);
    let mut order = order_for(&d, 0);
    // The coordinator boxes a value that is not the share the commitments promise.
    order.boxed = share_box::box_to(
        &h.share_key.public(),
        &slot_context(&order.slot),
        &[3; 32],
        &mut rng,
    )
    .unwrap();
    let raw = ask(&h, Protocol::Store, &h.coordinator, store_call(&h, &order)).await;
    let reply: Reply<StoreAck> = wire::decode(&raw, 1024).unwrap();
    assert!(
        matches!(reply.result, Err(Refusal::BadShare(_))),
        "{reply:?}"
    );
    assert_eq!(reply.result.unwrap_err().label(), "bad_share");
    assert_eq!(h.store.get(&SESSION, 0).unwrap(), None);
    // A box for another holder, or signed by someone else, is refused too.
    let other = order_for(&d, 1);
    let raw = ask(&h, Protocol::Store, &h.coordinator, store_call(&h, &other)).await;
    let reply: Reply<StoreAck> = wire::decode(&raw, 1024).unwrap();
    assert!(matches!(reply.result, Err(Refusal::Malformed(_))));
    let stranger = NodeKey::from_secret_bytes(&[40; 32]);
    let raw = ask(
        &h,
        Protocol::Store,
        &stranger,
        store_call(&h, &order_for(&d, 0)),
    )
    .await;
    let reply: Reply<StoreAck> = wire::decode(&raw, 1024).unwrap();
    assert_eq!(reply.result, Err(Refusal::Unauthorized));
    assert_eq!(h.store.get(&SESSION, 0).unwrap(), None);
}
