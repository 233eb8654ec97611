//! A rotation by redistribution run through the holders' real handlers over real redb stores,
//! with the coordinator's part played by the test: five old holders of a (5, 3) session, four
//! of which sub-deal; five new holders (three of them old holders too) check, report and
//! combine; then a normal boxed fetch of three new shares rebuilds the original key. Bad orders
//! and bad dealers are refused or reported, and the node keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::DetachedHandlers;
use crate::node::{Protocol, RequestFrame};
use crate::store::{HeldShare, ShareStore};
use chacha20::ChaCha20Rng;
use protocols::holder_box::{BoxedDealing, open_fetched};
use protocols::identity::NodeKey;
use protocols::ids::{Epoch, NodeId, SessionId, ShareIndex};
use protocols::keys::SessionSecret;
use protocols::redistribution::{dealing_digest, sub_context};
use protocols::reshare::{Dealt, Placement};
use protocols::sealing::ShareSlot;
use protocols::share_box::{self, BoxSecret};
use protocols::sharing::redistribute::{check_dealing, public_share};
use protocols::sharing::{Commitments, combine};
use protocols::ticket::{Ticket, TicketHolder};
use protocols::wire::{
    self, BoxedFetch, BoxedFetchReply, Combine, CombineAck, ComplaintReason, DealRef, FetchedShare,
    HolderCall, HolderOrder, NewHolder, Redeal, Refusal, Reply, SignedEnvelope, StoreAck,
    StoreBoxedShare, SubDeal, SubShareReport, SubShares, WIRE_VERSION, WIRE_VERSION_2,
};
use rand_core::SeedableRng;
use std::sync::Arc;

const SESSION: SessionId = SessionId([9; 16]);
const LIMIT: usize = 64 * 1024;

struct Holder {
    handlers: DetachedHandlers,
    store: Arc<ShareStore>,
    node: NodeId,
    share_key: BoxSecret,
    _dir: tempfile::TempDir,
}

fn holder(seed: u8, coordinator: &NodeKey) -> Holder {
    let (handlers, store, dir) = super::boxed_tests::handlers_on_a_new_store(
        seed,
        seed,
        coordinator.node_id(),
        "redeal-tests",
    );
    Holder {
        handlers,
        store,
        node: NodeKey::from_secret_bytes(&[seed; 32]).node_id(),
        share_key: BoxSecret::from_uniform_bytes(&[seed; 64]),
        _dir: dir,
    }
}

async fn ask(h: &Holder, protocol: Protocol, from: &NodeKey, bytes: Vec<u8>) -> Vec<u8> {
    let remote = crate::identity::peer_id(&from.node_id()).unwrap();
    h.handlers
        .answer(protocol, remote, RequestFrame::Bytes(bytes))
        .await
}

fn call(order: HolderOrder) -> Vec<u8> {
    wire::encode(&HolderCall {
        v: WIRE_VERSION,
        order,
    })
}

/// Five holders (0..5), of which the old quorum is 0..5 and the new quorum 2..7 with fresh
/// indices; the coordinator deals epoch 0 (k = 3) boxed to the old quorum and stores it.
struct Fleet {
    coordinator: NodeKey,
    holders: Vec<Holder>,
    /// The session being rotated.
    session: SessionId,
    secret: SessionSecret,
    old: BoxedDealing,
    new: Vec<(usize, ShareIndex)>,
}

async fn fleet(rng: &mut ChaCha20Rng) -> Fleet {
    let coordinator = NodeKey::from_secret_bytes(&[99; 32]);
    let holders: Vec<Holder> = (0..7).map(|i| holder(50 + i, &coordinator)).collect();
    let secret = SessionSecret::derive(&[4; 32], &[5; 32], &SESSION).unwrap();
    let old = deal(&holders, &coordinator, SESSION, &secret, rng).await;
    let new = (2..7).map(|i| (i, 100 + 7 * i as u8)).collect();
    Fleet {
        coordinator,
        holders,
        session: SESSION,
        secret,
        old,
        new,
    }
}

/// The coordinator deals epoch 0 of `session` (k = 3) boxed to holders 0..5 and stores it.
async fn deal(
    holders: &[Holder],
    coordinator: &NodeKey,
    session: SessionId,
    secret: &SessionSecret,
    rng: &mut ChaCha20Rng,
) -> BoxedDealing {
    let placements = (0..5)
        .map(|i| Placement {
            node: holders[i].node,
            index: i as u8 + 1,
        })
        .collect();
    let dealt = Dealt::fresh(session, 0, secret, placements, 3, 3, rng).unwrap();
    let keys: Vec<(NodeId, share_box::BoxPublic)> = holders
        .iter()
        .map(|h| (h.node, h.share_key.public()))
        .collect();
    let old = dealt
        .seal_to_holders(|n| keys.iter().find(|(m, _)| m == n).map(|(_, k)| *k), rng)
        .unwrap();
    for (i, b) in old.boxes().iter().enumerate() {
        let order = StoreBoxedShare {
            v: WIRE_VERSION_2,
            slot: old.slot(&b.placement),
            boxed: b.boxed.clone(),
            commitments: old.commitments().clone(),
            expires_at_ms: u64::MAX,
        };
        let raw = ask(
            &holders[i],
            Protocol::Store,
            coordinator,
            call(HolderOrder::StoreBoxed(SignedEnvelope::seal(
                coordinator,
                &order,
            ))),
        )
        .await;
        let ack: Reply<StoreAck> = wire::decode(&raw, LIMIT).unwrap();
        assert!(ack.result.is_ok(), "{ack:?}");
    }
    old
}

impl Fleet {
    fn redeal(&self) -> Redeal {
        Redeal {
            v: WIRE_VERSION_2,
            session: self.session,
            from: 0,
            to: 1,
            new_threshold: 3,
            new_holders: self
                .new
                .iter()
                .map(|&(i, index)| NewHolder {
                    node: self.holders[i].node,
                    index,
                    share_key: self.holders[i].share_key.public(),
                })
                .collect(),
            old_commitments: self.old.commitments().clone(),
        }
    }

    /// Old holder `i` (index i + 1) answers `redeal`: its signed SubDeal, checked as the
    /// coordinator does (signer, public check `D_i0 == P_i`).
    async fn sub_deal(&self, i: usize, redeal: &Redeal) -> Result<SignedEnvelope, Refusal> {
        let order = call(HolderOrder::Redeal(SignedEnvelope::seal(
            &self.coordinator,
            redeal,
        )));
        let raw = ask(&self.holders[i], Protocol::Store, &self.coordinator, order).await;
        let reply: Reply<SignedEnvelope> = wire::decode(&raw, LIMIT).unwrap();
        let envelope = reply.result?;
        let deal: SubDeal = envelope.open(&self.holders[i].node).unwrap();
        assert_eq!(deal.dealer, i as u8 + 1);
        check_dealing(self.old.commitments(), deal.dealer, &deal.commitments).unwrap();
        Ok(envelope)
    }

    async fn sub_shares(
        &self,
        j: usize,
        deals: &[SignedEnvelope],
    ) -> Result<SubShareReport, Refusal> {
        let (i, index) = self.new[j];
        let order = SubShares {
            v: WIRE_VERSION_2,
            session: self.session,
            to: 1,
            holder: self.holders[i].node,
            index,
            new_threshold: 3,
            old_commitments: self.old.commitments().clone(),
            deals: deals.to_vec(),
        };
        let bytes = call(HolderOrder::SubShares(SignedEnvelope::seal(
            &self.coordinator,
            &order,
        )));
        let raw = ask(&self.holders[i], Protocol::Store, &self.coordinator, bytes).await;
        let reply: Reply<SignedEnvelope> = wire::decode(&raw, LIMIT).unwrap();
        Ok(reply.result?.open(&self.holders[i].node).unwrap())
    }

    async fn combine(&self, j: usize, qualified: &[DealRef]) -> Result<CombineAck, Refusal> {
        let (i, index) = self.new[j];
        let order = Combine {
            v: WIRE_VERSION_2,
            session: self.session,
            to: 1,
            holder: self.holders[i].node,
            index,
            qualified: qualified.to_vec(),
            expires_at_ms: u64::MAX,
        };
        let bytes = call(HolderOrder::Combine(SignedEnvelope::seal(
            &self.coordinator,
            &order,
        )));
        let raw = ask(&self.holders[i], Protocol::Store, &self.coordinator, bytes).await;
        let reply: Reply<CombineAck> = wire::decode(&raw, LIMIT).unwrap();
        reply.result
    }

    /// A requester fetches the shares of `epoch` from the new holders `js` with a boxed fetch
    /// and rebuilds the key.
    async fn fetch_and_rebuild(
        &self,
        js: &[usize],
        commitments: &Commitments,
        epoch: Epoch,
        rng: &mut ChaCha20Rng,
    ) -> SessionSecret {
        let requester = NodeKey::from_secret_bytes(&[77; 32]);
        let ticket = Ticket {
            v: WIRE_VERSION,
            coordinator: self.coordinator.node_id(),
            session: self.session,
            epoch,
            requester: requester.node_id(),
            holders: self
                .new
                .iter()
                .map(|&(i, index)| TicketHolder {
                    node: self.holders[i].node,
                    index,
                    addrs: Vec::new(),
                })
                .collect(),
            commitments: commitments.clone(),
            policy_digest: [0; 32],
            issued_at_ms: 0,
            expires_at_ms: u64::MAX,
            nonce: [3; 16],
        };
        let ticket = SignedEnvelope::seal(&self.coordinator, &ticket);
        let mut shares = Vec::new();
        for &j in js {
            let (i, index) = self.new[j];
            let reply_secret = BoxSecret::generate(rng);
            let fetch = BoxedFetch {
                v: WIRE_VERSION_2,
                ticket: ticket.clone(),
                reply_key: reply_secret.public(),
            };
            let raw = ask(
                &self.holders[i],
                Protocol::Fetch,
                &requester,
                wire::encode(&fetch),
            )
            .await;
            let reply: BoxedFetchReply = wire::decode(&raw, LIMIT).unwrap();
            let Ok(FetchedShare::Reboxed { index: got, boxed }) = reply.result else {
                panic!("expected a reboxed share, got {:?}", reply.result);
            };
            assert_eq!(got, index);
            let slot = ShareSlot {
                session: self.session,
                epoch,
                holder: self.holders[i].node,
                index,
            };
            shares.push(open_fetched(&reply_secret, &slot, &[3; 16], &boxed, commitments).unwrap());
        }
        combine(&shares, commitments).unwrap()
    }
}

#[tokio::test]
async fn a_rotation_by_redistribution_through_the_handlers_keeps_the_key_fetchable() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let f = fleet(&mut rng).await;
    let redeal = f.redeal();
    // Old holder 5 (index 5) stays silent; four sub-deal.
    let mut deals = Vec::new();
    for i in 0..4 {
        deals.push(f.sub_deal(i, &redeal).await.unwrap());
    }
    let mut reports = Vec::new();
    for j in 0..f.new.len() {
        let report = f.sub_shares(j, &deals).await.unwrap();
        assert_eq!(report.valid.len(), 4);
        assert!(report.complaints.is_empty());
        reports.push(report);
    }
    // Q: the three lowest old indices every new holder found valid.
    let mut q = reports[0].valid.clone();
    q.sort();
    q.truncate(3);
    let mut new_commitments = None;
    for j in 0..f.new.len() {
        let ack = f.combine(j, &q).await.unwrap();
        assert_eq!(ack.commitments.0[0], f.old.commitments().0[0]);
        assert_eq!(
            ack.public_share,
            public_share(&ack.commitments, f.new[j].1)
                .unwrap()
                .compress()
                .to_bytes()
        );
        // Asked again (its answer lost): the same answer, from the store.
        assert_eq!(f.combine(j, &q).await.unwrap(), ack);
        let (i, _) = f.new[j];
        let stored = f.holders[i].store.get(&SESSION, 1).unwrap().unwrap();
        assert!(matches!(stored.share, HeldShare::Boxed(_)));
        new_commitments.get_or_insert(ack.commitments.clone());
        assert_eq!(new_commitments.as_ref(), Some(&ack.commitments));
    }
    let c = new_commitments.unwrap();
    // Old holders that are new holders too keep epoch 0 until the coordinator deletes it.
    assert_eq!(f.holders[2].store.epochs(&SESSION).unwrap(), vec![0, 1]);
    // A normal boxed fetch of three new shares (not the first three) rebuilds the key.
    let rebuilt = f.fetch_and_rebuild(&[1, 3, 4], &c, 1, &mut rng).await;
    assert!(rebuilt == f.secret);
    // Nothing of a sub-share or a new share is in any store in the clear: every record is a box.
    for h in &f.holders {
        for info in h.store.list().unwrap() {
            let held = h.store.get(&info.session, info.epoch).unwrap().unwrap();
            assert!(matches!(held.share, HeldShare::Boxed(_)));
        }
    }
}

#[tokio::test]
async fn a_bad_dealer_is_reported_and_the_rotation_completes_without_it() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let f = fleet(&mut rng).await;
    let redeal = f.redeal();
    let mut deals = Vec::new();
    for i in 0..4 {
        deals.push(f.sub_deal(i, &redeal).await.unwrap());
    }
    // Old holder 2 (index 2) boxes a wrong sub-share to the first new holder and signs it.
    let old_key = NodeKey::from_secret_bytes(&[51; 32]);
    let mut bad: SubDeal = deals[1].open(&f.holders[1].node).unwrap();
    let digest = dealing_digest(&bad.commitments);
    let (first, y) = f.new[0];
    let at = bad.sub_shares.iter().position(|s| s.index == y).unwrap();
    bad.sub_shares[at].boxed = share_box::box_to(
        &f.holders[first].share_key.public(),
        &sub_context(&SESSION, 1, 2, y, &digest),
        &[1; 32],
        &mut rng,
    )
    .unwrap();
    deals[1] = SignedEnvelope::seal(&old_key, &bad);
    let report = f.sub_shares(0, &deals).await.unwrap();
    assert_eq!(report.complaints.len(), 1);
    assert_eq!(report.complaints[0].deal, DealRef { dealer: 2, digest });
    assert_eq!(
        report.complaints[0].reason,
        ComplaintReason::FailsCommitments
    );
    assert!(report.complaints[0].reveal.is_some());
    let mut reports = vec![report];
    for j in 1..f.new.len() {
        reports.push(f.sub_shares(j, &deals).await.unwrap());
    }
    // A Combine naming the bad dealing is refused by the holder that complained ...
    let mut with_bad = reports[1].valid.clone();
    with_bad.sort();
    with_bad.truncate(3);
    assert!(matches!(
        f.combine(0, &with_bad).await,
        Err(Refusal::Malformed(_))
    ));
    // ... and the coordinator's Q leaves dealer 2 out: indices 1, 3, 4.
    let q: Vec<DealRef> = reports[0].valid.clone();
    assert_eq!(q.iter().map(|d| d.dealer).collect::<Vec<_>>(), [1, 3, 4]);
    let mut c = None;
    for j in 0..f.new.len() {
        c = Some(f.combine(j, &q).await.unwrap().commitments);
    }
    let rebuilt = f
        .fetch_and_rebuild(&[0, 2, 4], &c.unwrap(), 1, &mut rng)
        .await;
    assert!(rebuilt == f.secret);
}

#[tokio::test]
async fn redistribution_orders_that_do_not_fit_are_refused_and_the_holder_keeps_serving() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let f = fleet(&mut rng).await;
    let redeal = f.redeal();
    // From a stranger: unauthorised.
    let stranger = NodeKey::from_secret_bytes(&[40; 32]);
    let raw = ask(
        &f.holders[0],
        Protocol::Store,
        &stranger,
        call(HolderOrder::Redeal(SignedEnvelope::seal(
            &stranger, &redeal,
        ))),
    )
    .await;
    let reply: Reply<()> = wire::decode(&raw, LIMIT).unwrap();
    assert_eq!(reply.result, Err(Refusal::Unauthorized));
    // Of an epoch this holder does not hold; with old commitments that are not its share's;
    // onto a quorum with a repeated index.
    let absent = Redeal {
        from: 4,
        to: 5,
        ..redeal.clone()
    };
    assert_eq!(f.sub_deal(0, &absent).await, Err(Refusal::NotFound));
    let mut other = redeal.clone();
    other.old_commitments.0.swap(0, 1);
    assert!(matches!(
        f.sub_deal(0, &other).await,
        Err(Refusal::Malformed(_))
    ));
    let mut repeated = redeal.clone();
    repeated.new_holders[1].index = repeated.new_holders[0].index;
    assert!(matches!(
        f.sub_deal(0, &repeated).await,
        Err(Refusal::Malformed(_))
    ));
    // A holder that is not an old holder (holder 5) has nothing to sub-deal.
    assert_eq!(f.sub_deal(5, &redeal).await, Err(Refusal::NotFound));
    // Combine with no sub-shares pending: not found. SubShares with a forged relay: malformed.
    let deal = f.sub_deal(0, &redeal).await.unwrap();
    assert_eq!(
        f.combine(
            0,
            &[DealRef {
                dealer: 1,
                digest: [0; 32]
            }]
        )
        .await,
        Err(Refusal::NotFound)
    );
    let mut forged = deal.clone();
    forged.payload[3] ^= 1;
    assert!(matches!(
        f.sub_shares(0, &[forged]).await,
        Err(Refusal::Malformed(_))
    ));
    // The holder keeps serving: asked properly, it sub-deals; its epoch-0 share is untouched.
    assert!(f.sub_deal(0, &redeal).await.is_ok());
    assert_eq!(f.holders[0].store.epochs(&SESSION).unwrap(), vec![0]);
}

#[tokio::test]
async fn a_holder_keeps_at_most_eight_pending_redistributions_and_refuses_more_as_not_ready() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut f = fleet(&mut rng).await;
    for s in 0..=super::redeal::MAX_PENDING_REDISTRIBUTIONS as u8 {
        let session = SessionId([s + 20; 16]);
        f.old = deal(&f.holders, &f.coordinator, session, &f.secret, &mut rng).await;
        f.session = session;
        let redeal = f.redeal();
        let mut deals = Vec::new();
        for i in 0..3 {
            deals.push(f.sub_deal(i, &redeal).await.unwrap());
        }
        let answer = f.sub_shares(0, &deals).await;
        if usize::from(s) < super::redeal::MAX_PENDING_REDISTRIBUTIONS {
            assert_eq!(answer.unwrap().valid.len(), 3);
        } else {
            let refused = answer.unwrap_err();
            assert!(matches!(refused, Refusal::NotReady(_)), "{refused:?}");
            assert!(refused.to_string().contains("pending"), "{refused}");
        }
    }
}
