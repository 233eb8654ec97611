#![allow(clippy::unwrap_used)]

use super::*;
use crate::keys::SessionSecret;
use crate::sharing;
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;

fn secret_key(i: u8) -> BoxSecret {
    BoxSecret::from_uniform_bytes(&[i; 64])
}

fn placements(n: u8) -> Vec<Placement> {
    (0..n)
        .map(|i| Placement {
            node: NodeId([10 + i; 32]),
            index: i + 1,
        })
        .collect()
}

fn key_of(node: &NodeId) -> Option<BoxPublic> {
    Some(secret_key(node.0[0]).public())
}

/// A (5, 3) dealing boxed to its holders, with the secret and each share's plaintext bytes
/// (kept by the test only, to look for them).
fn boxed(rng: &mut ChaCha20Rng) -> (SessionSecret, BoxedDealing, Vec<[u8; 32]>) {
    let secret = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap();
    let dealt = Dealt::fresh(SessionId([3; 16]), 0, &secret, placements(5), 3, 4, rng).unwrap();
    let plain = dealt
        .deliveries()
        .iter()
        .map(|(_, s)| s.value_bytes())
        .collect();
    (secret, dealt.seal_to_holders(key_of, rng).unwrap(), plain)
}

#[test]
fn each_holder_opens_its_own_box_only_and_gets_a_share_that_checks() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let (secret, dealing, _) = boxed(&mut rng);
    let mut shares = Vec::new();
    for b in dealing.boxes() {
        let slot = dealing.slot(&b.placement);
        let own = secret_key(b.placement.node.0[0]);
        shares.push(open_at_holder(&own, &slot, &b.boxed, dealing.commitments()).unwrap());
        let other = secret_key(b.placement.node.0[0] + 1);
        assert!(open_at_holder(&other, &slot, &b.boxed, dealing.commitments()).is_err());
        let mut moved = slot;
        moved.epoch += 1;
        assert!(open_at_holder(&own, &moved, &b.boxed, dealing.commitments()).is_err());
    }
    let rebuilt = sharing::combine(&shares[1..4], dealing.commitments()).unwrap();
    assert!(rebuilt == secret);
}

#[test]
fn a_boxed_dealing_holds_no_share_bytes() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let (_, dealing, plain) = boxed(&mut rng);
    let dump = format!("{dealing:?}");
    for b in dealing.boxes() {
        for p in &plain {
            assert!(!b.boxed.sealed.windows(32).any(|w| w == p));
            assert!(!b.boxed.ephemeral.eq(p));
            assert!(!dump.contains(&format!("{p:?}")));
        }
    }
}

#[test]
fn a_holder_without_a_share_key_stops_the_dealing() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let secret = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap();
    let dealt = Dealt::fresh(
        SessionId([3; 16]),
        0,
        &secret,
        placements(5),
        3,
        4,
        &mut rng,
    )
    .unwrap();
    let missing = NodeId([12; 32]);
    let err = dealt
        .seal_to_holders(|n| (n != &missing).then(|| key_of(n)).flatten(), &mut rng)
        .unwrap_err();
    assert_eq!(err, HolderBoxError::NoShareKey(missing));
}

#[test]
fn a_share_that_fails_its_commitments_is_refused_by_the_holder() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let (_, dealing, _) = boxed(&mut rng);
    let b = &dealing.boxes()[0];
    let slot = dealing.slot(&b.placement);
    // A box of some other value under the right key and context: the dealing is faulty.
    let forged = share_box::box_to(
        &key_of(&b.placement.node).unwrap(),
        &slot_context(&slot),
        &[7; 32],
        &mut rng,
    )
    .unwrap();
    let own = secret_key(b.placement.node.0[0]);
    assert!(matches!(
        open_at_holder(&own, &slot, &forged, dealing.commitments()),
        Err(HolderBoxError::Commitments(_))
    ));
}

#[test]
fn a_reboxed_share_opens_for_its_fetch_only_and_the_key_is_rebuilt() {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let (secret, dealing, _) = boxed(&mut rng);
    let reply = BoxSecret::generate(&mut rng);
    let nonce = [9; 16];
    let mut shares = Vec::new();
    for b in &dealing.boxes()[..3] {
        let slot = dealing.slot(&b.placement);
        let own = secret_key(b.placement.node.0[0]);
        let answer =
            rebox_for_fetch(&own, &slot, &b.boxed, &nonce, &reply.public(), &mut rng).unwrap();
        // Another fetch (nonce), another requester key, another slot: it does not open.
        assert!(open_fetched(&reply, &slot, &[8; 16], &answer, dealing.commitments()).is_err());
        let stranger = BoxSecret::generate(&mut rng);
        assert!(open_fetched(&stranger, &slot, &nonce, &answer, dealing.commitments()).is_err());
        let mut other = slot;
        other.index += 1;
        assert!(open_fetched(&reply, &other, &nonce, &answer, dealing.commitments()).is_err());
        shares.push(open_fetched(&reply, &slot, &nonce, &answer, dealing.commitments()).unwrap());
    }
    let rebuilt = sharing::combine(&shares, dealing.commitments()).unwrap();
    assert!(rebuilt == secret);
}

#[test]
fn a_boxed_dealing_commits_after_enough_acknowledgements_from_its_holders() {
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let (_, mut dealing, _) = boxed(&mut rng);
    assert_eq!(
        dealing.acknowledge(&NodeId([99; 32])),
        Err(ReshareError::UnknownHolder(NodeId([99; 32])))
    );
    for i in 0..4 {
        dealing.acknowledge(&NodeId([10 + i; 32])).unwrap();
    }
    assert_eq!(dealing.acknowledged(), 4);
    let committed = dealing.commit().unwrap();
    assert_eq!(committed.holders().len(), 4);
    assert_eq!(committed.epoch(), 0);
    let (_, mut short, _) = boxed(&mut rng);
    short.acknowledge(&NodeId([10; 32])).unwrap();
    assert_eq!(
        short.commit().unwrap_err(),
        ReshareError::NotEnoughAcks { have: 1, need: 4 }
    );
}
