//! Property tests for the dealing state machine: a fresh dealing places every holder with a
//! share that verifies, `commit` follows the distinct acknowledged holders under any
//! interleaving, bad holder sets and quorums never yield a `Dealt`, and `abort` names every
//! dealt holder once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::sharing::{CommitmentBytes, UnverifiedShare};
use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use proptest::sample::Index;
use rand_core::{Rng, SeedableRng};

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

/// Every size-`k` subset of `0..m`, as position lists.
fn k_subsets(m: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..1 << m)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..m).filter(|i| mask & (1 << i) != 0).collect())
        .collect()
}

/// Checks a fresh `Dealt` against its parameters: session, epoch, placements in order,
/// commitment 0 `c0`, threshold k, and every delivered share verifying.
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
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// 1. A fresh dealing places every holder in order with a share that verifies under
    /// threshold k and commitment 0 the secret's point; then, under any order and multiplicity of acknowledgements, strangers' included, `commit`
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
        check_dealt(&dealt, session, epoch, &params, &CommitmentBytes(secret.public_point()));
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// 2. A holder set naming a node twice never produces a `Dealt`.
    #[test]
    fn holder_sets_with_a_duplicate_node_are_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in any::<Epoch>(),
        params in arb_params(),
        a in any::<Index>(),
        b in any::<Index>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let n = params.n();
        let a = a.index(n);
        let b = (a + 1 + b.index(n - 1)) % n;
        let mut holders = params.holders();
        holders[b].node = holders[a].node;
        prop_assert_eq!(
            Dealt::fresh(session, epoch, &secret(&seed, 7, &session), holders.clone(), params.k, params.min_acks, &mut rng)
                .unwrap_err(),
            ReshareError::DuplicateHolder(holders[a].node)
        );
    }

    /// 3. An ack quorum outside k..=n is refused; every quorum inside it is accepted.
    #[test]
    fn ack_quorums_outside_k_to_n_are_refused(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in any::<Epoch>(),
        params in arb_params(),
        below in any::<bool>(),
        off in 0usize..20,
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let (n, k) = (params.n(), params.k);
        let bad = if below { off % k } else { n + 1 + off };
        prop_assert_eq!(
            Dealt::fresh(session, epoch, &secret, params.holders(), k, bad, &mut rng).unwrap_err(),
            ReshareError::BadAckQuorum { min_acks: bad, k, n }
        );
        for good in k..=n {
            prop_assert!(Dealt::fresh(session, epoch, &secret, params.holders(), k, good, &mut rng).is_ok());
        }
    }

    /// 4. Share indices that repeat or are zero never produce a `Dealt`.
    #[test]
    fn duplicate_or_zero_share_indices_never_produce_a_dealt(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in any::<Epoch>(),
        params in arb_params(),
        zero in any::<bool>(),
        a in any::<Index>(),
        b in any::<Index>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let n = params.n();
        let a = a.index(n);
        let mut holders = params.holders();
        let expected = if zero {
            holders[a].index = 0;
            SharingError::ZeroIndex
        } else {
            let b = (a + 1 + b.index(n - 1)) % n;
            holders[b].index = holders[a].index;
            SharingError::DuplicateIndex { index: holders[a].index }
        };
        prop_assert_eq!(
            Dealt::fresh(session, epoch, &secret, holders, params.k, params.min_acks, &mut rng).unwrap_err(),
            ReshareError::Sharing(expected)
        );
    }

    /// 5. `abort`, before or after refused commits and whatever was acknowledged, returns every
    /// dealt placement exactly once, in dealing order.
    #[test]
    fn abort_returns_every_dealt_placement_once(
        session in any::<SessionId>(),
        seed in any::<[u8; 32]>(),
        epoch in any::<Epoch>(),
        params in arb_params(),
        acks in prop::collection::vec(any::<Index>(), 0..12),
        commit_first in any::<bool>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = secret(&seed, 7, &session);
        let mut d = Dealt::fresh(session, epoch, &secret, params.holders(), params.k, params.min_acks, &mut rng)
            .unwrap();
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
