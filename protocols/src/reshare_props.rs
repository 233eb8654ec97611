//! Property tests for the reshare state machine: chains of rotations keep the secret and commitment 0, `commit` follows the distinct acknowledged holders under any interleaving, bad inputs never yield a `Dealt`, and `abort` names every dealt holder once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::sharing::{CommitmentBytes, UnverifiedShare};
use chacha20::ChaCha20Rng;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use proptest::sample::Index;
use rand_core::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Holder sets are drawn from node tags `0..POOL`, so consecutive epochs usually overlap.
const POOL: u16 = 16;
/// Tags from here on never hold a share.
const STRANGERS: u16 = 60_000;

/// A node id carrying a small tag.
fn node(tag: u16) -> NodeId {
    let mut bytes = [0u8; 32];
    bytes[..2].copy_from_slice(&tag.to_be_bytes());
    bytes[31] = 0xa5;
    NodeId(bytes)
}

/// One epoch's holder set (tags and share indices, in dealing order), threshold and ack quorum.
#[derive(Clone, Debug)]
struct Params {
    tags: Vec<u16>,
    indices: Vec<ShareIndex>,
    k: usize,
    min_acks: usize,
}

impl Params {
    fn n(&self) -> usize {
        self.tags.len()
    }

    fn holders(&self) -> Vec<Placement> {
        self.tags
            .iter()
            .zip(&self.indices)
            .map(|(&tag, &index)| Placement {
                node: node(tag),
                index,
            })
            .collect()
    }

    /// The same shape on nodes outside the pool and outside every other shift.
    fn shifted(mut self, by: u16) -> Self {
        self.tags.iter_mut().for_each(|t| *t += by);
        self
    }
}

/// n in 2..=10 distinct pool nodes, n distinct indices in 1..=255, k in 2..=n, min_acks in k..=n.
fn arb_params() -> impl Strategy<Value = Params> {
    (2usize..=10)
        .prop_flat_map(|n| {
            (
                prop::sample::subsequence((0..POOL).collect::<Vec<_>>(), n).prop_shuffle(),
                prop::sample::subsequence((1..=255u8).collect::<Vec<_>>(), n).prop_shuffle(),
                (2..=n).prop_flat_map(move |k| (Just(k), k..=n)),
            )
        })
        .prop_map(|(tags, indices, (k, min_acks))| Params {
            tags,
            indices,
            k,
            min_acks,
        })
}

fn secret(seed: &[u8; 32], salt: u8, session: &SessionId) -> SessionSecret {
    SessionSecret::derive(seed, &[salt; 32], session).expect("non-zero scalar")
}

/// A Fisher–Yates shuffle of a copy of `items`.
fn shuffled<T: Clone>(items: &[T], rng: &mut ChaCha20Rng) -> Vec<T> {
    let mut v = items.to_vec();
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// A Dealt's observable contents: each placement with its share's index and bytes, in order.
type Snapshot = Vec<(Placement, ShareIndex, [u8; 32])>;

fn snapshot(d: &Dealt) -> Snapshot {
    d.deliveries()
        .iter()
        .map(|(p, s)| (*p, s.index(), s.value_bytes()))
        .collect()
}

/// What each holder keeps after a durable write: its index and share bytes.
fn stored(d: &Dealt) -> BTreeMap<NodeId, (ShareIndex, [u8; 32])> {
    d.deliveries()
        .iter()
        .map(|(p, s)| (p.node, (s.index(), s.value_bytes())))
        .collect()
}

/// The shares `holders` send back, checked against `commitments` as a dealer would.
fn returned(
    store: &BTreeMap<NodeId, (ShareIndex, [u8; 32])>,
    holders: &[Placement],
    commitments: &Commitments,
) -> Vec<VerifiedShare> {
    holders
        .iter()
        .map(|p| {
            let (index, bytes) = store[&p.node];
            assert_eq!(index, p.index, "holder {:?} kept another index", p.node);
            UnverifiedShare::new(index, bytes)
                .verify(commitments)
                .expect("a stored share verifies")
        })
        .collect()
}

/// Every size-`k` subset of `0..m`, as position lists.
fn k_subsets(m: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..1 << m)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..m).filter(|i| mask & (1 << i) != 0).collect())
        .collect()
}

/// Checks a fresh `Dealt` against its parameters: session, epoch, placements in order,
/// unchanged commitment 0, threshold k, and every delivered share verifying.
fn check_dealt(d: &Dealt, session: SessionId, epoch: Epoch, params: &Params, c0: &CommitmentBytes) {
    assert_eq!(d.session(), session);
    assert_eq!(d.epoch(), epoch);
    assert_eq!(d.acknowledged(), 0);
    assert_eq!(d.commitments().0[0], *c0, "commitment 0 changed");
    assert_eq!(d.commitments().threshold(), params.k);
    let placements: Vec<Placement> = d.deliveries().iter().map(|(p, _)| *p).collect();
    assert_eq!(placements, params.holders());
    for (p, s) in d.deliveries() {
        assert_eq!(s.index(), p.index);
        UnverifiedShare::new(s.index(), s.value_bytes())
            .verify(d.commitments())
            .expect("a dealt share verifies");
    }
}

/// Acknowledges a random set of at least `min_acks` holders (some twice), in random order,
/// and commits; checks the committed holders are the acknowledged ones in dealing order.
fn ack_and_commit(mut d: Dealt, params: &Params, pick: &mut ChaCha20Rng) -> Committed {
    let holders = params.holders();
    let n = params.n();
    let m = params.min_acks + (pick.next_u64() as usize) % (n - params.min_acks + 1);
    let chosen: Vec<Placement> = shuffled(&holders, pick)[..m].to_vec();
    let mut order = chosen.clone();
    order.extend(chosen.iter().filter(|_| pick.next_u64().is_multiple_of(3)));
    for p in shuffled(&order, pick) {
        d.acknowledge(&p.node).unwrap();
    }
    assert_eq!(d.acknowledged(), m);
    let (session, epoch, commitments) = (d.session(), d.epoch(), d.commitments().clone());
    let committed = d.commit().unwrap();
    let expected: Vec<Placement> = holders.into_iter().filter(|p| chosen.contains(p)).collect();
    assert_eq!(committed.holders(), expected.as_slice());
    assert_eq!(committed.session(), session);
    assert_eq!(committed.epoch(), epoch);
    assert_eq!(committed.commitments(), &commitments);
    committed
}

/// A random k of the committed holders rebuild `secret`; k−1 of them are not enough.
fn assert_random_k_rebuild(
    committed: &Committed,
    store: &BTreeMap<NodeId, (ShareIndex, [u8; 32])>,
    secret: &SessionSecret,
    pick: &mut ChaCha20Rng,
) {
    let k = committed.commitments().threshold();
    let some = shuffled(committed.holders(), pick);
    let shares = returned(store, &some[..k], committed.commitments());
    let rebuilt = sharing::combine(&shares, committed.commitments()).unwrap();
    assert!(
        rebuilt == *secret,
        "epoch {} lost the secret",
        committed.epoch()
    );
    assert_eq!(rebuilt.public_point(), committed.commitments().0[0].0);
    assert_eq!(
        sharing::combine(&shares[..k - 1], committed.commitments()).unwrap_err(),
        SharingError::NotEnoughShares {
            have: k - 1,
            need: k
        }
    );
}

/// A share value with `delta` added, and two-coefficient commitments under which it verifies
/// at `index`: the tampered share laundered into a `VerifiedShare`.
fn launder(index: ShareIndex, value: [u8; 32], delta: Scalar, t: Scalar) -> VerifiedShare {
    let v = Scalar::from_canonical_bytes(value).unwrap() + delta;
    let x = Scalar::from(u64::from(index));
    let point = |s: Scalar| CommitmentBytes((RISTRETTO_BASEPOINT_POINT * s).compress().to_bytes());
    let forged = Commitments(vec![point(v - t * x), point(t)]);
    UnverifiedShare::new(index, v.to_bytes())
        .verify(&forged)
        .expect("verifies under the forged commitments")
}

/// One step of an acknowledgement interleaving.
#[derive(Clone, Debug)]
enum Event {
    /// A dealt holder (by position) acknowledges.
    Ack(Index),
    /// A node holding no share of this epoch acknowledges.
    Stranger(Index),
    /// Try to commit.
    Commit,
}

fn arb_events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        prop_oneof![
            6 => any::<Index>().prop_map(Event::Ack),
            2 => any::<Index>().prop_map(Event::Stranger),
            2 => Just(Event::Commit),
        ],
        0..40,
    )
}

/// Nodes that hold no share under `params`: the rest of the pool and a few outsiders.
fn strangers(params: &Params) -> Vec<NodeId> {
    (0..POOL)
        .filter(|t| !params.tags.contains(t))
        .chain(STRANGERS..STRANGERS + 4)
        .map(node)
        .collect()
}

/// What an interleaving must observe, fixed when the shares were dealt.
struct Expected<'a> {
    params: &'a Params,
    secret: &'a SessionSecret,
    session: SessionId,
    epoch: Epoch,
    commitments: Commitments,
    snapshot: Snapshot,
}

/// Commits iff `acked` (distinct dealt nodes) reaches min_acks and checks either outcome
/// fully; a refused commit yields the `Dealt` it handed back.
fn try_commit(
    d: Dealt,
    acked: &BTreeSet<NodeId>,
    exp: &Expected<'_>,
) -> Result<Result<Committed, Dealt>, TestCaseError> {
    let enough = acked.len() >= exp.params.min_acks;
    match d.commit() {
        Ok(c) => {
            prop_assert!(enough, "committed with {} acks", acked.len());
            let expected: Vec<Placement> = exp
                .params
                .holders()
                .into_iter()
                .filter(|p| acked.contains(&p.node))
                .collect();
            prop_assert_eq!(c.holders(), expected.as_slice());
            prop_assert_eq!(c.session(), exp.session);
            prop_assert_eq!(c.epoch(), exp.epoch);
            prop_assert_eq!(c.commitments(), &exp.commitments);
            prop_assert_eq!(c.deletable_epoch(), None);
            // Every k of the committed holders rebuild the secret.
            let shares: Vec<VerifiedShare> = c
                .holders()
                .iter()
                .map(|p| {
                    let (_, index, bytes) = exp.snapshot.iter().find(|(q, ..)| q == p).unwrap();
                    UnverifiedShare::new(*index, *bytes)
                        .verify(c.commitments())
                        .unwrap()
                })
                .collect();
            for subset in k_subsets(shares.len(), exp.params.k) {
                let pick: Vec<VerifiedShare> = subset.iter().map(|&i| shares[i].clone()).collect();
                let rebuilt = sharing::combine(&pick, c.commitments()).unwrap();
                prop_assert!(
                    rebuilt == *exp.secret,
                    "subset {:?} lost the secret",
                    subset
                );
            }
            Ok(Ok(c))
        }
        Err(back) => {
            let (d, err) = *back;
            prop_assert!(!enough, "refused with {} acks", acked.len());
            prop_assert_eq!(
                err,
                ReshareError::NotEnoughAcks {
                    have: acked.len(),
                    need: exp.params.min_acks
                }
            );
            prop_assert_eq!(snapshot(&d), exp.snapshot.clone());
            prop_assert_eq!(d.acknowledged(), acked.len());
            prop_assert_eq!(d.session(), exp.session);
            prop_assert_eq!(d.epoch(), exp.epoch);
            prop_assert_eq!(d.commitments(), &exp.commitments);
            Ok(Err(d))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// 1. A chain of 1..=5 rotations, each onto a new holder set (overlapping or disjoint, any
    /// n, k and quorum) dealt from a random k of the previous committed holders, keeps the
    /// epoch-0 secret and commitment 0, steps the epoch by one and frees exactly the old epoch.
    #[test]
    fn chains_of_reshares_keep_the_secret_and_commitment_zero(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        first in arb_params(),
        first_pick in any::<u64>(),
        rotations in prop::collection::vec((arb_params(), any::<bool>(), any::<u64>()), 1..=5),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let c0 = CommitmentBytes(secret.public_point());
        let dealt = Dealt::fresh(session, 0, &secret, first.holders(), first.k, first.min_acks, &mut rng)
            .unwrap();
        check_dealt(&dealt, session, 0, &first, &c0);
        let mut store = stored(&dealt);
        let mut pick = ChaCha20Rng::seed_from_u64(first_pick);
        let mut committed = ack_and_commit(dealt, &first, &mut pick);
        prop_assert_eq!(committed.epoch(), 0);
        prop_assert_eq!(committed.deletable_epoch(), None);
        assert_random_k_rebuild(&committed, &store, &secret, &mut pick);

        for (step, (params, disjoint, choice)) in rotations.into_iter().enumerate() {
            let params = if disjoint { params.shifted(POOL * (step as u16 + 1)) } else { params };
            if disjoint {
                prop_assert!(params.holders().iter().all(|p| committed.holders().iter().all(|q| q.node != p.node)));
            }
            let mut pick = ChaCha20Rng::seed_from_u64(choice);
            let from = committed.epoch();
            let old_k = committed.commitments().threshold();
            let sources = shuffled(committed.holders(), &mut pick);
            let old_shares = returned(&store, &sources[..old_k], committed.commitments());
            let plan = Planned::new(
                session,
                from,
                committed.commitments().clone(),
                params.holders(),
                params.k,
                params.min_acks,
            )
            .unwrap();
            let dealt = plan.deal(&old_shares, &mut rng).unwrap();
            check_dealt(&dealt, session, from + 1, &params, &c0);
            // A fresh polynomial: the other coefficients' commitments change.
            prop_assert_ne!(&dealt.commitments().0[1], &committed.commitments().0[1]);
            store = stored(&dealt);
            let next = ack_and_commit(dealt, &params, &mut pick);
            prop_assert_eq!(next.epoch(), from + 1);
            prop_assert_eq!(next.deletable_epoch(), Some((session, from)));
            prop_assert_eq!(next.commitments().0[0], c0);
            assert_random_k_rebuild(&next, &store, &secret, &mut pick);
            committed = next;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// 2. Under any order and multiplicity of acknowledgements, strangers' included, `commit`
    /// succeeds iff the distinct dealt nodes acknowledged reach min_acks; success commits
    /// exactly those placements in dealing order and any k of them rebuild the secret; a
    /// refusal hands back the same `Dealt`, which goes on accepting acknowledgements.
    #[test]
    fn commit_follows_the_distinct_acknowledged_holders(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in any::<Epoch>(),
        params in arb_params(),
        events in arb_events(),
        finish in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let dealt = Dealt::fresh(session, epoch, &secret, params.holders(), params.k, params.min_acks, &mut rng)
            .unwrap();
        let exp = Expected {
            params: &params,
            secret: &secret,
            session,
            epoch,
            commitments: dealt.commitments().clone(),
            snapshot: snapshot(&dealt),
        };
        let holders = params.holders();
        let outsiders = strangers(&params);
        let mut acked = BTreeSet::new();
        let mut state = Some(dealt);
        for event in events {
            let Some(mut d) = state.take() else { break };
            match event {
                Event::Ack(i) => {
                    let node = holders[i.index(holders.len())].node;
                    prop_assert_eq!(d.acknowledge(&node), Ok(()));
                    acked.insert(node);
                }
                Event::Stranger(i) => {
                    let node = outsiders[i.index(outsiders.len())];
                    prop_assert_eq!(d.acknowledge(&node), Err(ReshareError::UnknownHolder(node)));
                }
                Event::Commit => {
                    state = try_commit(d, &acked, &exp)?.err();
                    continue;
                }
            }
            prop_assert_eq!(d.acknowledged(), acked.len());
            prop_assert_eq!(snapshot(&d), exp.snapshot.clone());
            state = Some(d);
        }
        // Not committed yet: try, then acknowledge everyone left (in random order) and commit.
        if let Some(d) = state
            && let Err(mut d) = try_commit(d, &acked, &exp)?
        {
            let mut pick = ChaCha20Rng::seed_from_u64(finish);
            for p in shuffled(&holders, &mut pick) {
                d.acknowledge(&p.node).unwrap();
                acked.insert(p.node);
            }
            let c = try_commit(d, &acked, &exp)?.ok().unwrap();
            prop_assert_eq!(c.holders(), holders.as_slice());
        }
    }
}

/// Shares of `params` dealt for `epoch` of `session`'s `secret`.
fn deal_epoch(
    session: SessionId,
    epoch: Epoch,
    secret: &SessionSecret,
    params: &Params,
    rng: &mut ChaCha20Rng,
) -> Dealt {
    Dealt::fresh(
        session,
        epoch,
        secret,
        params.holders(),
        params.k,
        params.min_acks,
        rng,
    )
    .unwrap()
}

/// A plan moving `old`'s epoch onto `new`'s holders.
fn plan_from(old: &Dealt, new: &Params) -> Planned {
    Planned::new(
        old.session(),
        old.epoch(),
        old.commitments().clone(),
        new.holders(),
        new.k,
        new.min_acks,
    )
    .unwrap()
}

/// The shares of `d` in random order.
fn shuffled_shares(d: &Dealt, pick: &mut ChaCha20Rng) -> Vec<VerifiedShare> {
    shuffled(d.deliveries(), pick)
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// 3a. Fewer than k distinct old shares, however repeated, never deal.
    #[test]
    fn dealing_from_fewer_than_k_distinct_shares_is_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in 0..Epoch::MAX,
        old in arb_params(),
        new in arb_params(),
        have in any::<Index>(),
        pick in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut pick = ChaCha20Rng::seed_from_u64(pick);
        let old_dealt = deal_epoch(session, epoch, &secret(&seed, 7, &session), &old, &mut rng);
        let have = have.index(old.k);
        let distinct = shuffled_shares(&old_dealt, &mut pick)[..have].to_vec();
        let mut shares = distinct.clone();
        shares.extend(distinct.iter().filter(|_| pick.next_u64().is_multiple_of(2)).cloned());
        let shares = shuffled(&shares, &mut pick);
        prop_assert_eq!(
            plan_from(&old_dealt, &new).deal(&shares, &mut rng).unwrap_err(),
            ReshareError::Sharing(SharingError::NotEnoughShares { have, need: old.k })
        );
    }

    /// 3b. k shares of which one or more belong to another session's secret never deal.
    #[test]
    fn dealing_from_another_sessions_shares_is_refused(
        session in any::<SessionId>(),
        other_session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in 0..Epoch::MAX,
        old in arb_params(),
        new in arb_params(),
        foreign in any::<Index>(),
        pick in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut pick = ChaCha20Rng::seed_from_u64(pick);
        let mine = secret(&seed, 7, &session);
        let theirs = secret(&seed, 8, &other_session);
        prop_assume!(mine != theirs);
        let old_dealt = deal_epoch(session, epoch, &mine, &old, &mut rng);
        let other_dealt = deal_epoch(other_session, epoch, &theirs, &old, &mut rng);
        // k distinct indices, the first `foreign` of them taken from the other session.
        let foreign = 1 + foreign.index(old.k);
        let positions = shuffled(&(0..old.n()).collect::<Vec<_>>(), &mut pick);
        let shares: Vec<VerifiedShare> = positions[..old.k]
            .iter()
            .enumerate()
            .map(|(i, &at)| {
                let source = if i < foreign { &other_dealt } else { &old_dealt };
                let s = &source.deliveries()[at].1;
                UnverifiedShare::new(s.index(), s.value_bytes())
                    .verify(source.commitments())
                    .unwrap()
            })
            .collect();
        let shares = shuffled(&shares, &mut pick);
        prop_assert_eq!(
            plan_from(&old_dealt, &new).deal(&shares, &mut rng).unwrap_err(),
            ReshareError::Sharing(SharingError::SecretMismatch)
        );
    }

    /// 3c. A share with its scalar changed fails the old commitments (named by its index) and,
    /// even laundered through commitments forged to accept it, never deals.
    #[test]
    fn dealing_from_a_tampered_share_is_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in 0..Epoch::MAX,
        old in arb_params(),
        new in arb_params(),
        victim in any::<Index>(),
        delta in any::<[u8; 32]>(),
        slope in any::<[u8; 32]>(),
        pick in any::<u64>(),
    ) {
        let delta = Scalar::from_bytes_mod_order(delta);
        prop_assume!(delta != Scalar::ZERO);
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut pick = ChaCha20Rng::seed_from_u64(pick);
        let old_dealt = deal_epoch(session, epoch, &secret(&seed, 7, &session), &old, &mut rng);
        let mut shares = shuffled_shares(&old_dealt, &mut pick)[..old.k].to_vec();
        let victim = victim.index(old.k);
        let (index, value) = (shares[victim].index(), shares[victim].value_bytes());
        let tampered = (Scalar::from_canonical_bytes(value).unwrap() + delta).to_bytes();
        prop_assert_eq!(
            UnverifiedShare::new(index, tampered).verify(old_dealt.commitments()).unwrap_err(),
            SharingError::ShareMismatch { index }
        );
        shares[victim] = launder(index, value, delta, Scalar::from_bytes_mod_order(slope));
        prop_assert_eq!(
            plan_from(&old_dealt, &new).deal(&shares, &mut rng).unwrap_err(),
            ReshareError::Sharing(SharingError::SecretMismatch)
        );
    }

    /// 3d. A holder set naming a node twice is refused by `Planned::new` and `Dealt::fresh`.
    #[test]
    fn holder_sets_with_a_duplicate_node_are_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        from in 0..Epoch::MAX,
        params in arb_params(),
        a in any::<Index>(),
        b in any::<Index>(),
        commitments in any::<Commitments>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let n = params.n();
        let a = a.index(n);
        let b = (a + 1 + b.index(n - 1)) % n;
        let mut holders = params.holders();
        holders[b].node = holders[a].node;
        let expected = ReshareError::DuplicateHolder(holders[a].node);
        prop_assert_eq!(
            Planned::new(session, from, commitments, holders.clone(), params.k, params.min_acks).unwrap_err(),
            expected.clone()
        );
        prop_assert_eq!(
            Dealt::fresh(session, from, &secret(&seed, 7, &session), holders, params.k, params.min_acks, &mut rng)
                .unwrap_err(),
            expected
        );
    }

    /// 3e. An ack quorum outside k..=n is refused by both constructors; every quorum inside it
    /// is accepted.
    #[test]
    fn ack_quorums_outside_k_to_n_are_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        from in 0..Epoch::MAX,
        params in arb_params(),
        below in any::<bool>(),
        off in 0usize..20,
        commitments in any::<Commitments>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let (n, k) = (params.n(), params.k);
        let bad = if below { off % k } else { n + 1 + off };
        let expected = ReshareError::BadAckQuorum { min_acks: bad, k, n };
        prop_assert_eq!(
            Planned::new(session, from, commitments.clone(), params.holders(), k, bad).unwrap_err(),
            expected.clone()
        );
        prop_assert_eq!(
            Dealt::fresh(session, from, &secret, params.holders(), k, bad, &mut rng).unwrap_err(),
            expected
        );
        for good in k..=n {
            prop_assert!(Planned::new(session, from, commitments.clone(), params.holders(), k, good).is_ok());
            prop_assert!(Dealt::fresh(session, from, &secret, params.holders(), k, good, &mut rng).is_ok());
        }
    }

    /// 3f. Share indices that repeat or are zero never produce a `Dealt`, fresh or reshared, and
    /// a rotation onto them is refused when it is planned, before any old share is needed.
    #[test]
    fn duplicate_or_zero_share_indices_never_produce_a_dealt(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in 0..Epoch::MAX,
        old in arb_params(),
        new in arb_params(),
        zero in any::<bool>(),
        a in any::<Index>(),
        b in any::<Index>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let n = new.n();
        let a = a.index(n);
        let mut holders = new.holders();
        let expected = if zero {
            holders[a].index = 0;
            SharingError::ZeroIndex
        } else {
            let b = (a + 1 + b.index(n - 1)) % n;
            holders[b].index = holders[a].index;
            SharingError::DuplicateIndex { index: holders[a].index }
        };
        prop_assert_eq!(
            Dealt::fresh(session, epoch, &secret, holders.clone(), new.k, new.min_acks, &mut rng).unwrap_err(),
            ReshareError::Sharing(expected.clone())
        );
        let old_dealt = deal_epoch(session, epoch, &secret, &old, &mut rng);
        let planned = Planned::new(session, epoch, old_dealt.commitments().clone(), holders, new.k, new.min_acks);
        prop_assert_eq!(planned.unwrap_err(), ReshareError::Sharing(expected));
    }

    /// 3g. Epochs run up to `u32::MAX` and no further: rotating from it is `EpochOverflow`.
    #[test]
    fn rotating_from_the_last_epoch_is_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        old in arb_params(),
        new in arb_params(),
        commitments in any::<Commitments>(),
        pick in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut pick = ChaCha20Rng::seed_from_u64(pick);
        let secret = secret(&seed, 7, &session);
        let old_dealt = deal_epoch(session, Epoch::MAX - 1, &secret, &old, &mut rng);
        let old_shares = shuffled_shares(&old_dealt, &mut pick);
        let last = plan_from(&old_dealt, &new).deal(&old_shares, &mut rng).unwrap();
        prop_assert_eq!(last.epoch(), Epoch::MAX);
        let last = ack_and_commit(last, &new, &mut pick);
        prop_assert_eq!(last.deletable_epoch(), Some((session, Epoch::MAX - 1)));
        for c in [last.commitments().clone(), commitments] {
            prop_assert_eq!(
                Planned::new(session, last.epoch(), c, old.holders(), old.k, old.min_acks).unwrap_err(),
                ReshareError::EpochOverflow
            );
        }
    }

    /// 4. `abort`, before or after refused commits and whatever was acknowledged, returns every
    /// dealt placement exactly once, in dealing order.
    #[test]
    fn abort_returns_every_dealt_placement_once(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in 0..Epoch::MAX,
        old in arb_params(),
        new in arb_params(),
        reshare in any::<bool>(),
        acks in prop::collection::vec(any::<Index>(), 0..12),
        commit_first in any::<bool>(),
        pick in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut pick = ChaCha20Rng::seed_from_u64(pick);
        let old_dealt = deal_epoch(session, epoch, &secret(&seed, 7, &session), &old, &mut rng);
        let (mut d, params) = if reshare {
            let shares = shuffled_shares(&old_dealt, &mut pick);
            (plan_from(&old_dealt, &new).deal(&shares[..old.k], &mut rng).unwrap(), &new)
        } else {
            (old_dealt, &old)
        };
        let holders = params.holders();
        for i in acks {
            d.acknowledge(&holders[i.index(holders.len())].node).unwrap();
        }
        let stranger = node(STRANGERS);
        prop_assert_eq!(d.acknowledge(&stranger), Err(ReshareError::UnknownHolder(stranger)));
        if commit_first && d.acknowledged() < params.min_acks {
            d = d.commit().unwrap_err().0;
        }
        let placements = d.abort();
        prop_assert_eq!(&placements, &holders);
        let distinct: BTreeSet<Placement> = placements.iter().copied().collect();
        prop_assert_eq!(distinct.len(), params.n());
    }
}
