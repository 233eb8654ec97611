//! Orders that do not fit are refused, whole and with a reason: an old holder's orders that do
//! not fit its stored share, relayed sub-dealings that do not verify, more pending
//! redistributions than the cap; and the largest redistribution's order fits its bound.

use super::*;
use crate::wire::{MAX_SUB_SHARES_BYTES, encode};
#[test]
fn an_old_holder_refuses_orders_that_do_not_fit_its_stored_share() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let w = world(3, 3, 2, 3, 2, &mut rng);
    let o = &w.old[0];
    let answer = |r: &Redeal, rng: &mut ChaCha20Rng| {
        answer_redeal(&o.share_key, &o.slot, &o.boxed, &w.commitments, r, rng)
    };
    let mut other = w.commitments.clone();
    other.0[1] = w.commitments.0[0];
    type Expected = fn(&RedistributionError) -> bool;
    let cases: Vec<(Redeal, Expected)> = vec![
        (
            Redeal {
                old_commitments: other,
                ..redeal(&w)
            },
            |e| matches!(e, RedistributionError::OldCommitmentsDiffer),
        ),
        (
            Redeal {
                from: FROM + 1,
                ..redeal(&w)
            },
            |e| matches!(e, RedistributionError::BadOrder(_)),
        ),
        (
            Redeal {
                to: FROM + 2,
                ..redeal(&w)
            },
            |e| matches!(e, RedistributionError::BadOrder(_)),
        ),
        (
            Redeal {
                session: SessionId([8; 16]),
                ..redeal(&w)
            },
            |e| matches!(e, RedistributionError::BadOrder(_)),
        ),
        (
            Redeal {
                new_threshold: 1,
                ..redeal(&w)
            },
            |e| matches!(e, RedistributionError::Sharing(_)),
        ),
        (
            Redeal {
                new_threshold: 4,
                ..redeal(&w)
            },
            |e| matches!(e, RedistributionError::Sharing(_)),
        ),
    ];
    for (r, expected) in cases {
        let e = answer(&r, &mut rng).unwrap_err();
        assert!(expected(&e), "{e:?}");
    }
    let mut twice = redeal(&w);
    twice.new_holders[1].index = twice.new_holders[0].index;
    assert!(matches!(
        answer(&twice, &mut rng),
        Err(RedistributionError::Sharing(
            SharingError::DuplicateIndex { .. }
        ))
    ));
    let mut bad_key = redeal(&w);
    bad_key.new_holders[2].share_key = share_box::BoxPublic([0; 32]);
    assert!(matches!(
        answer(&bad_key, &mut rng),
        Err(RedistributionError::Box(BoxError::BadPoint))
    ));
    // Its stored box opened with another key, or the box of another slot, is refused.
    let e = answer_redeal(
        &w.old[1].share_key,
        &o.slot,
        &o.boxed,
        &w.commitments,
        &redeal(&w),
        &mut rng,
    )
    .unwrap_err();
    assert!(matches!(e, RedistributionError::StoredShare(_)), "{e:?}");
}

#[test]
fn pending_redistributions_are_capped_and_expire() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut w = world(6, 3, 2, 2, 2, &mut rng);
    let deals: Vec<SignedEnvelope> = (0..2).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
    w.new[0].pending = PendingRedistributions::new(1, 10_000);
    check(&mut w, 0, &deals, &mut rng);
    let mut other = sub_shares(&w, 0, &deals);
    other.to = FROM + 5;
    let h = &mut w.new[0];
    let me = h.key.node_id();
    // Another redistribution while one is pending: refused (its deals are not even opened).
    assert_eq!(
        h.pending
            .check_sub_shares(&h.share_key, &me, &other, 2_000, &mut rng)
            .unwrap_err(),
        RedistributionError::TooManyPending { cap: 1 }
    );
    // Once the first is older than the bound, it is dropped and the other is checked.
    let e = h
        .pending
        .check_sub_shares(&h.share_key, &me, &other, 12_000, &mut rng)
        .unwrap_err();
    assert!(
        matches!(e, RedistributionError::BadDeal { position: 0, .. }),
        "{e:?}"
    );
    assert!(h.pending.is_empty());
}

#[test]
fn sub_shares_relayed_wrongly_are_refused_whole() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let w = world(7, 3, 2, 2, 2, &mut rng);
    let deals: Vec<SignedEnvelope> = (0..2).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
    let h = &w.new[0];
    let me = h.key.node_id();
    let mut pending = PendingRedistributions::new(4, 60_000);
    let mut refused = |order: SubShares| {
        pending
            .check_sub_shares(&h.share_key, &me, &order, 0, &mut rng)
            .unwrap_err()
    };
    // A flipped bit in a relayed dealing.
    let mut flipped = deals.clone();
    flipped[1].payload[5] ^= 1;
    assert!(matches!(
        refused(sub_shares(&w, 0, &flipped)),
        RedistributionError::BadDeal { position: 1, .. }
    ));
    // The same dealer twice, no dealer at all, another holder's order.
    assert!(matches!(
        refused(sub_shares(&w, 0, &[deals[0].clone(), deals[0].clone()])),
        RedistributionError::BadDeal { position: 1, .. }
    ));
    assert!(matches!(
        refused(sub_shares(&w, 0, &[])),
        RedistributionError::BadOrder(_)
    ));
    assert!(matches!(
        refused(sub_shares(&w, 1, &deals)),
        RedistributionError::BadOrder(_)
    ));
    assert!(pending.is_empty());
}

#[test]
fn the_sub_shares_of_the_largest_redistribution_fit_their_bound() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    for (n, k) in [(5, 3), (MAX_REDEAL_HOLDERS, MAX_REDEAL_HOLDERS)] {
        let w = world(8, n, k, n, k, &mut rng);
        let deals: Vec<SignedEnvelope> = (0..n).map(|i| sub_deal_signed(&w, i, &mut rng)).collect();
        let order = SignedEnvelope::seal(&w.old[0].key, &sub_shares(&w, 0, &deals));
        let len = encode(&order).len();
        assert!(len <= MAX_SUB_SHARES_BYTES, "n = {n}: {len} bytes");
        // Measured: n = 5 (k = 3), 4,780 bytes; n = k = 32, 162,379 bytes (decision 0056).
    }
}
