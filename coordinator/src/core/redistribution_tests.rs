//! Rotation by redistribution on virtual time, against real holders (the agent's own handlers,
//! which run `protocols::redistribution`'s old- and new-holder code, over real redb stores) and
//! the real coordinator database: the key survives unchanged, a bad dealer or a false complaint
//! is named and the rotation completes from the honest, too few dealers leave epoch e in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::deletions::{Delivery, delete_orders};
use super::super::holder_audits::HolderFault;
use super::super::test_world::{
    EXPIRES_MS, World, coordinator_keys, created, holder_key, rotation,
};
use super::super::{Outcome, PlacementError};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::redistribution::{dealing_digest, sub_context};
use protocols::share_box;
use protocols::sharing::{self, VerifiedShare};
use protocols::wire::{
    self, Complaint, ComplaintReason, DealRef, Reply, SignedEnvelope, SubDeal, SubShareReport,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const WORLD: usize = 8;

fn secret_of(shares: &[VerifiedShare], record: &crate::db::SessionRecord) -> [u8; 32] {
    let k = record.commitments.threshold();
    assert!(shares.len() >= k, "{} of {k} shares", shares.len());
    *sharing::combine(&shares[..k], &record.commitments)
        .unwrap()
        .user_key(&record.policy_digest)
        .expose()
}

/// Rewrites a signed reply of `node` (a `Reply<SignedEnvelope>` holding a `T`) with `change`,
/// signed again with the holder's own key: the holder itself misbehaves.
fn resign<T: wire::SignedPayload>(
    node: NodeId,
    reply: Vec<u8>,
    change: impl FnOnce(&mut T),
) -> Vec<u8> {
    let Ok(decoded) = wire::decode::<Reply<SignedEnvelope>>(&reply, 1 << 20) else {
        return reply;
    };
    let Ok(envelope) = decoded.result else {
        return reply;
    };
    let Ok(mut payload) = envelope.open::<T>(&node) else {
        return reply;
    };
    change(&mut payload);
    let key: NodeKey = holder_key(WORLD, &node);
    wire::encode(&Reply {
        v: decoded.v,
        result: Ok::<_, wire::Refusal>(SignedEnvelope::seal(&key, &payload)),
    })
}

#[tokio::test]
async fn a_rotation_keeps_c0_and_k_new_shares_rebuild_the_same_key() {
    let mut w = World::new(WORLD, 21);
    let before = created(&mut w, 5, 3).await;
    let key_before = secret_of(&w.recorded_shares(&before), &before);
    // Three new holders, two old ones again (at new indices).
    let next: Vec<NodeId> = w.nodes().into_iter().skip(3).collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
    assert!(p.faults().is_empty(), "{:?}", p.faults());
    let after = run.committed.unwrap();
    assert_eq!(
        w.db.session(&before.session).unwrap().as_ref(),
        Some(&after)
    );
    assert_eq!(after.epoch, before.epoch + 1);
    assert_eq!(after.rotations, 1);
    assert_eq!(after.commitments.0[0], before.commitments.0[0], "C_0 kept");
    assert_ne!(after.commitments, before.commitments, "a fresh polynomial");
    let holders: Vec<NodeId> = after.holders.iter().map(|h| h.node).collect();
    assert_eq!(holders, next);
    let mut shares = w.recorded_shares(&after);
    assert_eq!(shares.len(), 5);
    assert_eq!(secret_of(&shares, &after), key_before);
    // Any k of them: the last three too.
    shares.drain(..2);
    assert_eq!(secret_of(&shares, &after), key_before);
    // The old epoch is gone from its holders, and nothing is left owed.
    assert!(w.db.owed_deletions().unwrap().is_empty());
    w.assert_no_stray_share("rotated");
}

#[tokio::test]
async fn a_dealer_whose_box_fails_is_named_and_the_rotation_completes_from_the_honest() {
    let mut w = World::new(WORLD, 22);
    let before = created(&mut w, 5, 3).await;
    let key_before = secret_of(&w.recorded_shares(&before), &before);
    let cheat = before.holders[1].node;
    let next: Vec<NodeId> = w.nodes().into_iter().skip(3).collect();
    let victim = w.holders[&next[0]].share_key.public();
    let mut rng = StdRng::seed_from_u64(5);
    // The cheat's sub-share for the first new holder is a random scalar: its commitments are of
    // its share (the public check passes), the box opens, the value fails them.
    w.tamper = Some(Box::new(move |node, reply| {
        if node != cheat {
            return reply;
        }
        resign::<SubDeal>(node, reply, |deal| {
            let digest = dealing_digest(&deal.commitments);
            let boxed = &mut deal.sub_shares[0];
            let context = sub_context(&deal.session, deal.to, deal.dealer, boxed.index, &digest);
            let mut wrong = [0u8; 32];
            wrong[..4].copy_from_slice(&424_242u32.to_le_bytes());
            boxed.boxed = share_box::box_to(&victim, &context, &wrong, &mut rng).unwrap();
        })
    }));
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
    let faults = p.faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].0, cheat);
    assert!(matches!(faults[0].1, HolderFault::BadShare(_)));
    let after = run.committed.unwrap();
    assert_eq!(after.holders.len(), 5, "every new holder combined");
    assert_eq!(secret_of(&w.recorded_shares(&after), &after), key_before);
    w.tamper = None;
    w.assert_no_stray_share("bad dealer");
}

#[tokio::test]
async fn a_dealing_not_of_its_share_is_named_at_once() {
    let mut w = World::new(WORLD, 23);
    let before = created(&mut w, 5, 3).await;
    let cheat = before.holders[4].node;
    let c0 = before.commitments.0[0];
    // The cheat sub-deals something else than its share: D_i0 = C_0 ≠ P_i.
    w.tamper = Some(Box::new(move |node, reply| {
        if node != cheat {
            return reply;
        }
        resign::<SubDeal>(node, reply, |deal| deal.commitments.0[0] = c0)
    }));
    let next: Vec<NodeId> = w.nodes().into_iter().skip(2).take(5).collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
    assert_eq!(p.faults().len(), 1, "{:?}", p.faults());
    assert_eq!(p.faults()[0].0, cheat);
    let after = run.committed.unwrap();
    assert_eq!(after.commitments.0[0], before.commitments.0[0]);
}

#[tokio::test]
async fn a_false_complaint_names_the_complainer_who_is_dropped() {
    let mut w = World::new(WORLD, 24);
    let before = created(&mut w, 5, 3).await;
    let key_before = secret_of(&w.recorded_shares(&before), &before);
    let next: Vec<NodeId> = w.nodes().into_iter().skip(3).collect();
    let liar = next[2];
    w.tamper = Some(Box::new(move |node, reply| {
        if node != liar {
            return reply;
        }
        resign::<SubShareReport>(node, reply, |report| {
            let Some(kept) = report.valid.first().copied() else {
                return;
            };
            report.complaints.push(Complaint {
                deal: DealRef { ..kept },
                reason: ComplaintReason::NoSubShare,
                reveal: None,
            });
        })
    }));
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    // min_acks = max(3, 5 − 1) = 4: the four honest new holders commit.
    assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
    assert_eq!(p.faults().len(), 1, "{:?}", p.faults());
    assert_eq!(p.faults()[0].0, liar);
    let after = run.committed.unwrap();
    assert_eq!(after.holders.len(), 4);
    assert!(!after.holders.iter().any(|h| h.node == liar));
    assert_eq!(secret_of(&w.recorded_shares(&after), &after), key_before);
    w.tamper = None;
    w.restart().await;
    w.assert_no_stray_share("false complaint");
}

#[tokio::test]
async fn a_holder_whose_stored_share_was_changed_says_so_is_named_and_the_rotation_completes() {
    let mut w = World::new(WORLD, 27);
    let before = created(&mut w, 5, 3).await;
    let changed = before.holders[1].node;
    change_stored_share(&w, &before, changed);
    let next: Vec<NodeId> = w.nodes().into_iter().skip(2).take(5).collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
    assert_eq!(p.faults().len(), 1, "{:?}", p.faults());
    assert_eq!(p.faults()[0].0, changed);
    assert!(
        matches!(&p.faults()[0].1, HolderFault::BadShare(why) if why.contains("cannot be dealt")),
        "{:?}",
        p.faults()
    );
    assert_eq!(
        run.committed.unwrap().commitments.0[0],
        before.commitments.0[0]
    );
}

/// Changes the share `node` stores for epoch 0 of `record` under it: it still opens (boxed to
/// it again) but fails the commitments, as the simulator's tampering holders do.
fn change_stored_share(w: &World, record: &crate::db::SessionRecord, node: NodeId) {
    let holder = &w.holders[&node];
    let mut stored = holder.store.get(&record.session, 0).unwrap().unwrap();
    let peer::store::HeldShare::Boxed(b) = &mut stored.share else {
        panic!("a share dealt now is boxed");
    };
    let context = protocols::holder_box::slot_context(&b.slot);
    let mut value = *holder.share_key.open(&context, &b.boxed).unwrap();
    value[0] ^= 0x01;
    b.boxed = share_box::box_to(
        &holder.share_key.public(),
        &context,
        &value,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    holder.store.delete_epoch(&record.session, 0).unwrap();
    holder
        .store
        .put_held(&stored.share, stored.expires_at_ms)
        .unwrap();
}

#[tokio::test]
async fn old_holders_away_during_the_rotation_prove_their_share_before_deleting_it_and_a_changed_one_is_named()
 {
    let mut w = World::new(WORLD, 29);
    let before = created(&mut w, 5, 3).await;
    let (changed, honest) = (before.holders[1].node, before.holders[3].node);
    change_stored_share(&w, &before, changed);
    w.down.extend([changed, honest]);
    let next: Vec<NodeId> = w
        .nodes()
        .into_iter()
        .filter(|n| !w.down.contains(n))
        .take(5)
        .collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
    assert!(p.faults().is_empty(), "away is no fault: {:?}", p.faults());
    // Both still owe epoch 0's deletion, each with the share it must prove first.
    let owed = w.db.owed_deletions().unwrap();
    assert_eq!(owed.len(), 2, "{owed:?}");
    assert!(owed.iter().all(|d| d.epoch == 0 && d.prove.is_some()));
    // They come back; the upkeep's delivery asks each to prove, then delete.
    w.down.clear();
    let orders = delete_orders(&w.signer(), &owed, &mut StdRng::seed_from_u64(2));
    let mut delivery = Delivery::new(&owed, &orders, w.now, 10_000, 0);
    w.drive(&mut delivery, None).await;
    assert_eq!(delivery.faults().len(), 1, "{:?}", delivery.faults());
    assert_eq!(delivery.faults()[0].0, changed);
    assert!(
        matches!(&delivery.faults()[0].1, HolderFault::BadShare(why) if why.contains("share proof")),
        "{:?}",
        delivery.faults()
    );
    assert!(w.db.owed_deletions().unwrap().is_empty(), "both settled");
    for node in [changed, honest] {
        assert!(
            w.holders[&node]
                .store
                .get(&before.session, 0)
                .unwrap()
                .is_none(),
            "epoch 0 deleted once proven"
        );
    }
    // Asked again (an answer lost after the deletion), "not found" settles without blame.
    let again = delete_orders(&w.signer(), &owed, &mut StdRng::seed_from_u64(3));
    let mut delivery = Delivery::new(&owed, &again, w.now, 10_000, 0);
    w.drive(&mut delivery, None).await;
    assert!(delivery.faults().is_empty(), "{:?}", delivery.faults());
    assert_eq!(delivery.acknowledged().len(), 2);
}

#[tokio::test]
async fn fewer_than_k_dealers_abandon_the_rotation_and_epoch_e_stays_fetchable() {
    let mut w = World::new(WORLD, 25);
    let before = created(&mut w, 5, 3).await;
    let c0 = before.commitments.0[0];
    // Three of the five old holders are down: two dealings, three needed.
    w.down.extend(before.holders.iter().take(3).map(|h| h.node));
    let next: Vec<NodeId> = w.nodes().into_iter().skip(3).collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &before, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(
        run.outcome,
        Some(Outcome::RolledBack(PlacementError::TooFewDealers {
            have: 2,
            need: 3,
            not_ready: 0
        })),
        "{run:?}"
    );
    assert!(run.committed.is_none());
    assert_eq!(w.db.session(&before.session).unwrap(), Some(before.clone()));
    assert!(w.db.pending_epochs().unwrap().is_empty());
    w.down.clear();
    w.restart().await;
    w.assert_rebuilds(&before, &c0, "abandoned");
    w.assert_no_stray_share("abandoned");
}

#[tokio::test]
async fn a_session_dealt_before_share_keys_is_not_redistributed_and_stays_as_it_was() {
    let mut w = World::new(WORLD, 26);
    let nodes: Vec<NodeId> = w.nodes().into_iter().take(5).collect();
    let (dealt, mut record) = w.deal_session(&nodes, 3);
    // Stored the old way: sealed under the coordinator's master key (decision 0053's upgrade).
    for (i, (placement, share)) in dealt.deliveries().iter().enumerate() {
        let order = w.signer().store_order(
            record.session,
            0,
            placement,
            share,
            EXPIRES_MS,
            [i as u8; 12],
        );
        assert!(w.deliver(placement.node, order).await.is_some());
    }
    record.holders = crate::db::holders_of(
        &dealt
            .deliveries()
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>(),
    );
    w.db.commit_epoch_owing(&record, &[]).unwrap();
    let next: Vec<NodeId> = w.nodes().into_iter().skip(3).collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &record, &next);
    let run = w.drive(&mut p, None).await;
    // Every old holder answers `not_ready`: postponed, nothing named, epoch 0 as it was.
    assert_eq!(
        run.outcome,
        Some(Outcome::RolledBack(PlacementError::TooFewDealers {
            have: 0,
            need: 3,
            not_ready: 5
        })),
        "{run:?}"
    );
    assert!(p.faults().is_empty());
    assert_eq!(w.db.session(&record.session).unwrap(), Some(record.clone()));
    for n in &nodes {
        assert!(
            w.holders[n]
                .store
                .get(&record.session, 0)
                .unwrap()
                .is_some()
        );
    }
    w.assert_no_stray_share("not redistributed");
}

#[tokio::test]
async fn a_holder_killed_at_any_step_of_a_rotation_leaves_one_whole_epoch_and_no_stray_share() {
    let setup = || async {
        let mut w = World::new(WORLD, 31);
        let before = created(&mut w, 5, 3).await;
        // Old holders are nodes 0..5, new ones 2..7: node 0 is old only, 2 old and new, 6 new
        // only.
        let next: Vec<NodeId> = w.nodes().into_iter().skip(2).take(5).collect();
        (w, before, next)
    };
    let total = {
        let (mut w, before, next) = setup().await;
        let sent = w.sent.len();
        let keys = coordinator_keys();
        let mut p = rotation(&w, &keys, &before, &next);
        w.drive(&mut p, None).await;
        w.sent.len() - sent
    };
    let mut points = 0;
    for victim in [0usize, 2, 6] {
        for after in 1..=total {
            let (mut w, before, next) = setup().await;
            let c0 = before.commitments.0[0];
            let node = w.nodes()[victim];
            w.kill_at = Some((node, w.sent.len() + after));
            let keys = coordinator_keys();
            let mut p = rotation(&w, &keys, &before, &next);
            let run = w.drive(&mut p, None).await;
            let context = format!("node {victim} killed before order {after} of {total}");
            assert!(
                matches!(
                    run.outcome,
                    Some(Outcome::Committed | Outcome::RolledBack(_))
                ),
                "{context}: {run:?}"
            );
            assert!(p.faults().is_empty(), "{context}: {:?}", p.faults());
            drop(p);
            // It comes back with its store and fresh memory; the upkeep delivers what is owed.
            w.revive(node);
            w.restart().await;
            let now = w.db.session(&before.session).unwrap().expect("recorded");
            match run.outcome {
                Some(Outcome::Committed) => assert_eq!(now.epoch, before.epoch + 1, "{context}"),
                _ => assert_eq!(now, before, "{context}: a rolled-back rotation changed it"),
            }
            w.assert_rebuilds(&now, &c0, &context);
            w.assert_no_stray_share(&context);
            points += 1;
        }
    }
    assert!(points >= 45, "{points} kill points");
}

/// Messages and bytes of one rotation by redistribution (issue 20's figures): an order to each old
/// holder to sub-deal, one to each new holder with the relayed sub-dealings, one to combine, and
/// the old epoch's proven deletions. Printed with `-- --nocapture`.
#[tokio::test]
async fn one_rotation_sends_four_orders_per_holder() {
    for (n, k, world) in [(5usize, 3usize, 10usize), (16, 11, 32)] {
        let mut w = World::new(world, 41);
        let before = created(&mut w, n, k).await;
        let next: Vec<NodeId> = w.nodes().into_iter().skip(n).take(n).collect();
        let (orders_before, answers_before) = (w.sent.len(), w.answered_bytes);
        let keys = coordinator_keys();
        let mut p = rotation(&w, &keys, &before, &next);
        let run = w.drive(&mut p, None).await;
        assert_eq!(run.outcome, Some(Outcome::Committed), "{run:?}");
        let orders = &w.sent[orders_before..];
        assert_eq!(orders.len(), 4 * n, "n = {n}");
        let sent: usize = orders.iter().map(Vec::len).sum();
        let answered = w.answered_bytes - answers_before;
        eprintln!(
            "rotation (n={n}, k={k}) onto {n} new holders: {} orders, {sent} bytes of orders, \
             {answered} bytes of answers",
            orders.len()
        );
    }
}
