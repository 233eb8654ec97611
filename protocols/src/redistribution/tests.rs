//! The holders' side of a redistribution, run end to end in memory with the coordinator's relay
//! played by the test: the new shares rebuild the unchanged secret, a bad dealer is reported and
//! judged at fault, an unfounded complaint is judged against its author, boxes open only with
//! their key and context, and retries are idempotent as the protocol's crash points need.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::new_holder::{PendingRedistributions, ack_from_stored};
use super::old_holder::answer_redeal;
use super::*;
use crate::holder_box::{open_at_holder, slot_context};
use crate::identity::NodeKey;
use crate::keys::SessionSecret;
use crate::sealing::ShareSlot;
use crate::share_box::{BoxSecret, Boxed};
use crate::sharing::redistribute::public_share;
use crate::sharing::{VerifiedShare, combine, split};
use crate::wire::{
    Combine, DealRef, Redeal, SignedEnvelope, SubDeal, SubShareReport, SubShares, WIRE_VERSION_2,
};
use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;

const SESSION: SessionId = SessionId([7; 16]);
const FROM: Epoch = 3;

struct Old {
    key: NodeKey,
    share_key: BoxSecret,
    slot: ShareSlot,
    boxed: Boxed,
}

struct New {
    key: NodeKey,
    share_key: BoxSecret,
    index: ShareIndex,
    pending: PendingRedistributions,
}

struct World {
    secret: SessionSecret,
    commitments: Commitments,
    old: Vec<Old>,
    new: Vec<New>,
    new_threshold: u8,
}

fn world(seed: u64, n: usize, k: usize, n2: usize, k2: usize, rng: &mut ChaCha20Rng) -> World {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let secret = SessionSecret::derive(&bytes, &[2; 32], &SESSION).unwrap();
    let indices: Vec<ShareIndex> = (1..=n as u8).collect();
    let (shares, commitments) = split(&secret, &indices, k, rng).unwrap();
    let old = shares
        .iter()
        .map(|s| {
            let key = NodeKey::from_secret_bytes(&[s.index(); 32]);
            let share_key = BoxSecret::generate(rng);
            let slot = ShareSlot {
                session: SESSION,
                epoch: FROM,
                holder: key.node_id(),
                index: s.index(),
            };
            let boxed = share_box::box_to(
                &share_key.public(),
                &slot_context(&slot),
                &s.value_bytes(),
                rng,
            )
            .unwrap();
            Old {
                key,
                share_key,
                slot,
                boxed,
            }
        })
        .collect();
    let new = (0..n2)
        .map(|j| New {
            key: NodeKey::from_secret_bytes(&[100 + j as u8; 32]),
            share_key: BoxSecret::generate(rng),
            // Fresh indices, not those of the old epoch.
            index: 40 + 3 * j as u8,
            pending: PendingRedistributions::new(4, 60_000),
        })
        .collect();
    World {
        secret,
        commitments,
        old,
        new,
        new_threshold: k2 as u8,
    }
}

fn redeal(w: &World) -> Redeal {
    Redeal {
        v: WIRE_VERSION_2,
        session: SESSION,
        from: FROM,
        to: FROM + 1,
        new_threshold: w.new_threshold,
        new_holders: w
            .new
            .iter()
            .map(|h| NewHolder {
                node: h.key.node_id(),
                index: h.index,
                share_key: h.share_key.public(),
            })
            .collect(),
        old_commitments: w.commitments.clone(),
    }
}

/// Old holder `i` answers the redeal; its answer is signed as the peer would.
fn sub_deal_signed(w: &World, i: usize, rng: &mut ChaCha20Rng) -> SignedEnvelope {
    let o = &w.old[i];
    let deal = answer_redeal(
        &o.share_key,
        &o.slot,
        &o.boxed,
        &w.commitments,
        &redeal(w),
        rng,
    )
    .unwrap();
    SignedEnvelope::seal(&o.key, &deal)
}

fn sub_shares(w: &World, j: usize, deals: &[SignedEnvelope]) -> SubShares {
    SubShares {
        v: WIRE_VERSION_2,
        session: SESSION,
        to: FROM + 1,
        holder: w.new[j].key.node_id(),
        index: w.new[j].index,
        new_threshold: w.new_threshold,
        old_commitments: w.commitments.clone(),
        deals: deals.to_vec(),
    }
}

fn check(
    w: &mut World,
    j: usize,
    deals: &[SignedEnvelope],
    rng: &mut ChaCha20Rng,
) -> SubShareReport {
    let order = sub_shares(w, j, deals);
    let h = &mut w.new[j];
    h.pending
        .check_sub_shares(&h.share_key, &h.key.node_id(), &order, 1_000, rng)
        .unwrap()
}

fn combine_order(w: &World, j: usize, qualified: Vec<DealRef>) -> Combine {
    Combine {
        v: WIRE_VERSION_2,
        session: SESSION,
        to: FROM + 1,
        holder: w.new[j].key.node_id(),
        index: w.new[j].index,
        qualified,
        expires_at_ms: u64::MAX,
    }
}

/// The new share of holder `j`, opened from its at-rest box and checked against `C'`.
fn open_new(w: &World, j: usize, combined: &new_holder::CombinedShare) -> VerifiedShare {
    open_at_holder(
        &w.new[j].share_key,
        &combined.slot,
        &combined.boxed,
        &combined.commitments,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn new_shares_combined_by_the_holders_rebuild_the_unchanged_secret(
        seed in any::<u64>(),
        (n, k) in (2usize..=6).prop_flat_map(|n| (Just(n), 2..=n)),
        (n2, k2) in (2usize..=6).prop_flat_map(|n| (Just(n), 2..=n)),
        extra in 0usize..3,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut w = world(seed, n, k, n2, k2, &mut rng);
        // At least k old holders sub-deal, perhaps more; the last ones, not the first.
        let dealers = (k + extra).min(n);
        let deals: Vec<SignedEnvelope> = (n - dealers..n).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
        let reports: Vec<SubShareReport> = (0..n2).map(|j| check(&mut w, j, &deals, &mut rng)).collect();
        for r in &reports {
            prop_assert_eq!(r.valid.len(), dealers);
            prop_assert!(r.complaints.is_empty());
        }
        // The coordinator's Q: the k lowest dealers every holder found valid.
        let mut q = reports[0].valid.clone();
        q.sort();
        q.truncate(k);
        let mut new_shares = Vec::new();
        let mut new_commitments = None;
        for j in 0..n2 {
            let order = combine_order(&w, j, q.clone());
            let h = &mut w.new[j];
            let combined = h.pending.combine(&h.share_key, &h.key.node_id(), &order, 1_000, &mut rng).unwrap();
            // Kept until the caller stored the new share.
            prop_assert_eq!(h.pending.len(), 1);
            prop_assert!(h.pending.forget(&SESSION, FROM + 1));
            prop_assert!(h.pending.is_empty());
            prop_assert_eq!(combined.commitments.0[0], w.commitments.0[0]);
            prop_assert_eq!(combined.commitments.threshold(), k2);
            let share = open_new(&w, j, &combined);
            prop_assert_eq!(
                combined.ack.public_share,
                public_share(&combined.commitments, share.index()).unwrap().compress().to_bytes()
            );
            new_shares.push(share);
            new_commitments = Some(combined.commitments);
        }
        let c = new_commitments.unwrap();
        let rebuilt = combine(&new_shares[n2 - k2..], &c).unwrap();
        prop_assert!(rebuilt == w.secret);
    }
}

#[test]
fn a_tampered_sub_share_is_reported_named_and_judged_the_dealers_fault() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut w = world(1, 4, 3, 3, 2, &mut rng);
    let mut deals: Vec<SignedEnvelope> = (0..4).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
    // Dealer 2 boxes a wrong value to new holder 0, under the right context, and signs it.
    let mut bad: SubDeal = deals[1].open(&w.old[1].key.node_id()).unwrap();
    let digest = dealing_digest(&bad.commitments);
    let ctx = sub_context(&SESSION, FROM + 1, 2, w.new[0].index, &digest);
    bad.sub_shares[0].boxed =
        share_box::box_to(&w.new[0].share_key.public(), &ctx, &[9; 32], &mut rng).unwrap();
    deals[1] = SignedEnvelope::seal(&w.old[1].key, &bad);
    let report = check(&mut w, 0, &deals, &mut rng);
    assert_eq!(
        report.valid.iter().map(|d| d.dealer).collect::<Vec<_>>(),
        [1, 3, 4]
    );
    assert_eq!(report.complaints.len(), 1);
    let complaint = &report.complaints[0];
    assert_eq!(complaint.deal, DealRef { dealer: 2, digest });
    assert_eq!(complaint.reason, ComplaintReason::FailsCommitments);
    let holder_key = w.new[0].share_key.public();
    assert_eq!(
        judge_complaint(
            &w.commitments,
            2,
            &bad,
            w.new[0].index,
            &holder_key,
            complaint
        ),
        Verdict::DealerAtFault
    );
    // The other holders' boxes of that dealer were fine.
    let other = check(&mut w, 1, &deals, &mut rng);
    assert!(other.complaints.is_empty());
    // A complaint against an honest dealing, even with a valid reveal, names its author.
    let honest: SubDeal = deals[0].open(&w.old[0].key.node_id()).unwrap();
    let mine = honest
        .sub_shares
        .iter()
        .find(|s| s.index == w.new[0].index)
        .unwrap();
    let forged = Complaint {
        deal: DealRef {
            dealer: 1,
            digest: dealing_digest(&honest.commitments),
        },
        reason: ComplaintReason::FailsCommitments,
        reveal: Some(w.new[0].share_key.reveal(&mine.boxed, &mut rng).unwrap()),
    };
    assert_eq!(
        judge_complaint(
            &w.commitments,
            2,
            &honest,
            w.new[0].index,
            &holder_key,
            &forged
        ),
        Verdict::ComplainerAtFault
    );
    let no_reveal = Complaint {
        reveal: None,
        ..forged
    };
    assert_eq!(
        judge_complaint(
            &w.commitments,
            2,
            &honest,
            w.new[0].index,
            &holder_key,
            &no_reveal
        ),
        Verdict::ComplainerAtFault
    );
}

#[test]
fn a_sub_dealing_of_another_share_is_reported_and_cannot_enter_the_new_epoch() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut w = world(2, 3, 2, 3, 2, &mut rng);
    let deals: Vec<SignedEnvelope> = (0..3).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
    // Old holder 1 passes off holder 2's (signed) dealing as its own: D_10 != P_1.
    let mut stolen: SubDeal = deals[1].open(&w.old[1].key.node_id()).unwrap();
    stolen.dealer = 1;
    let forged = vec![
        SignedEnvelope::seal(&w.old[0].key, &stolen),
        deals[2].clone(),
    ];
    let report = check(&mut w, 0, &forged, &mut rng);
    assert_eq!(report.complaints.len(), 1);
    assert_eq!(report.complaints[0].reason, ComplaintReason::NotOfItsShare);
    assert_eq!(
        judge_complaint(
            &w.commitments,
            2,
            &stolen,
            w.new[0].index,
            &w.new[0].share_key.public(),
            &report.complaints[0]
        ),
        Verdict::DealerAtFault
    );
    // A Combine naming it finds no kept dealing; the pending sub-shares stay for a corrected one.
    let order = combine_order(&w, 0, vec![report.complaints[0].deal, report.valid[0]]);
    let h = &mut w.new[0];
    assert_eq!(
        h.pending
            .combine(&h.share_key, &h.key.node_id(), &order, 1_000, &mut rng)
            .unwrap_err(),
        RedistributionError::MissingDealing { dealer: 1 }
    );
    assert_eq!(h.pending.len(), 1);
}

#[test]
fn a_sub_share_opens_only_for_its_holder_under_its_own_context() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let w = world(4, 3, 2, 3, 2, &mut rng);
    let deal: SubDeal = sub_deal_signed(&w, 0, &mut rng)
        .open(&w.old[0].key.node_id())
        .unwrap();
    let digest = dealing_digest(&deal.commitments);
    let boxed = &deal.sub_shares[0].boxed;
    let y = w.new[0].index;
    let ctx = sub_context(&SESSION, FROM + 1, 1, y, &digest);
    assert!(w.new[0].share_key.open(&ctx, boxed).is_ok());
    assert!(w.new[1].share_key.open(&ctx, boxed).is_err());
    for wrong in [
        sub_context(&SESSION, FROM + 2, 1, y, &digest),
        sub_context(&SessionId([0; 16]), FROM + 1, 1, y, &digest),
        sub_context(&SESSION, FROM + 1, 2, y, &digest),
        sub_context(&SESSION, FROM + 1, 1, w.new[1].index, &digest),
        sub_context(&SESSION, FROM + 1, 1, y, &[0; 32]),
    ] {
        assert!(w.new[0].share_key.open(&wrong, boxed).is_err());
    }
}

#[test]
fn a_second_sub_dealing_is_kept_beside_the_first_and_combine_picks_the_one_it_names() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut w = world(5, 3, 2, 2, 2, &mut rng);
    let first: Vec<SignedEnvelope> = (0..2).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
    // Dealer 1 is asked again (the coordinator's answer window passed) and deals afresh.
    let again = sub_deal_signed(&w, 0, &mut rng);
    assert_ne!(again, first[0]);
    let r1 = check(&mut w, 0, &first, &mut rng);
    let r2 = check(&mut w, 0, &[again.clone(), first[1].clone()], &mut rng);
    assert_ne!(r1.valid[0], r2.valid[0]);
    assert_eq!(w.new[0].pending.len(), 1);
    let q = vec![r2.valid[0], r2.valid[1]];
    let order = combine_order(&w, 0, q);
    let h = &mut w.new[0];
    let combined = h
        .pending
        .combine(&h.share_key, &h.key.node_id(), &order, 1_000, &mut rng)
        .unwrap();
    assert_eq!(combined.commitments.0[0], w.commitments.0[0]);
    // Combined again before it was stored: the same new share and acknowledgement.
    let again = h
        .pending
        .combine(&h.share_key, &h.key.node_id(), &order, 1_000, &mut rng)
        .unwrap();
    assert_eq!(again.ack, combined.ack);
    assert!(h.pending.forget(&SESSION, FROM + 1));
    // Asked to combine again: nothing is pending, the answer comes from what was stored.
    assert_eq!(
        h.pending
            .combine(&h.share_key, &h.key.node_id(), &order, 1_000, &mut rng)
            .unwrap_err(),
        RedistributionError::NothingPending
    );
    assert_eq!(
        ack_from_stored(&combined.slot, &combined.commitments).unwrap(),
        combined.ack
    );
    // The other holder, given the first dealing of dealer 1 only, cannot combine the second.
    check(&mut w, 1, &first, &mut rng);
    let order = combine_order(&w, 1, vec![r2.valid[0], r2.valid[1]]);
    let h = &mut w.new[1];
    assert_eq!(
        h.pending
            .combine(&h.share_key, &h.key.node_id(), &order, 1_000, &mut rng)
            .unwrap_err(),
        RedistributionError::MissingDealing { dealer: 1 }
    );
}

#[path = "bounds_tests.rs"]
mod bounds;
