//! Dealing and resharing as states consumed by value: `Planned → Dealt → Committed`.
//!
//! A session moves from epoch e to e+1 by rebuilding its secret from k verified shares and
//! splitting it again with a fresh polynomial onto a new holder set. The new epoch is
//! committed only once enough new holders have acknowledged a durable write, and only a
//! [`Committed`] value can name the old epoch as deletable.

use crate::ids::{Epoch, NodeId, SessionId, ShareIndex};
use crate::keys::SessionSecret;
use crate::sharing::{self, Commitments, SharingError, VerifiedShare};
use std::collections::BTreeSet;
use thiserror::Error;

/// A holder of the epoch being dealt, with its share index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    /// The holder.
    pub node: NodeId,
    /// Its share index.
    pub index: ShareIndex,
}

/// Why a dealing or reshare step was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReshareError {
    /// The sharing layer refused (names the share at fault where there is one).
    #[error(transparent)]
    Sharing(#[from] SharingError),
    /// The same node appears twice in the new holder set.
    #[error("holder {0:?} appears twice")]
    DuplicateHolder(NodeId),
    /// The ack quorum is outside k ≤ min_acks ≤ n.
    #[error("acknowledgement quorum {min_acks} outside {k}..={n}")]
    BadAckQuorum {
        /// Requested quorum.
        min_acks: usize,
        /// Threshold.
        k: usize,
        /// Holders.
        n: usize,
    },
    /// An acknowledgement from a node that was not dealt a share.
    #[error("acknowledgement from {0:?}, which holds no share of this epoch")]
    UnknownHolder(NodeId),
    /// Not enough durable acknowledgements to commit.
    #[error("only {have} of {need} holders acknowledged")]
    NotEnoughAcks {
        /// Acks received.
        have: usize,
        /// Acks needed.
        need: usize,
    },
    /// The epoch counter would overflow.
    #[error("epoch counter exhausted")]
    EpochOverflow,
}

/// A rotation decided but not dealt: old commitments, new holders, target epoch.
#[derive(Debug)]
pub struct Planned {
    session: SessionId,
    from_epoch: Epoch,
    old_commitments: Commitments,
    holders: Vec<Placement>,
    k: usize,
    min_acks: usize,
}

impl Planned {
    /// Plans moving `session` from `from_epoch` (with `old_commitments`) onto `holders` with threshold `k`.
    pub fn new(
        session: SessionId,
        from_epoch: Epoch,
        old_commitments: Commitments,
        holders: Vec<Placement>,
        k: usize,
        min_acks: usize,
    ) -> Result<Self, ReshareError> {
        validate(&holders, k, min_acks)?;
        from_epoch
            .checked_add(1)
            .ok_or(ReshareError::EpochOverflow)?;
        Ok(Self {
            session,
            from_epoch,
            old_commitments,
            holders,
            k,
            min_acks,
        })
    }

    /// Rebuilds the secret from verified old shares (checked against commitment 0) and deals epoch e+1.
    pub fn deal<R: rand_core::CryptoRng + ?Sized>(
        self,
        old_shares: &[VerifiedShare],
        rng: &mut R,
    ) -> Result<Dealt, ReshareError> {
        let secret = sharing::combine(old_shares, &self.old_commitments)?;
        let to_epoch = self
            .from_epoch
            .checked_add(1)
            .ok_or(ReshareError::EpochOverflow)?;
        let mut dealt = Dealt::fresh(
            self.session,
            to_epoch,
            &secret,
            self.holders,
            self.k,
            self.min_acks,
            rng,
        )?;
        dealt.from_epoch = Some(self.from_epoch);
        Ok(dealt)
    }
}

/// Shares dealt for a new epoch, waiting for durable acknowledgements. Holds secret shares.
#[derive(Debug)]
pub struct Dealt {
    session: SessionId,
    from_epoch: Option<Epoch>,
    to_epoch: Epoch,
    commitments: Commitments,
    deliveries: Vec<(Placement, VerifiedShare)>,
    acked: BTreeSet<NodeId>,
    min_acks: usize,
}

impl Dealt {
    /// Deals a secret for the first time (session creation: epoch 0) or for a given epoch.
    pub fn fresh<R: rand_core::CryptoRng + ?Sized>(
        session: SessionId,
        epoch: Epoch,
        secret: &SessionSecret,
        holders: Vec<Placement>,
        k: usize,
        min_acks: usize,
        rng: &mut R,
    ) -> Result<Self, ReshareError> {
        validate(&holders, k, min_acks)?;
        let indices: Vec<ShareIndex> = holders.iter().map(|p| p.index).collect();
        let (shares, commitments) = sharing::split(secret, &indices, k, rng)?;
        Ok(Self {
            session,
            from_epoch: None,
            to_epoch: epoch,
            commitments,
            deliveries: holders.into_iter().zip(shares).collect(),
            acked: BTreeSet::new(),
            min_acks,
        })
    }

    /// Each holder with the share to seal and send to it.
    pub fn deliveries(&self) -> &[(Placement, VerifiedShare)] {
        &self.deliveries
    }

    /// The new epoch's commitments (commitment 0 is unchanged by a reshare).
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }

    /// The epoch being dealt.
    pub fn epoch(&self) -> Epoch {
        self.to_epoch
    }

    /// The session being dealt.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Records a holder's durable-write acknowledgement.
    pub fn acknowledge(&mut self, node: &NodeId) -> Result<(), ReshareError> {
        if !self.deliveries.iter().any(|(p, _)| &p.node == node) {
            return Err(ReshareError::UnknownHolder(*node));
        }
        self.acked.insert(*node);
        Ok(())
    }

    /// Acknowledgements so far.
    pub fn acknowledged(&self) -> usize {
        self.acked.len()
    }

    /// Commits once `min_acks` holders acknowledged; otherwise hands the state back unchanged.
    /// Holders that never acknowledged are dropped from the committed set.
    pub fn commit(self) -> Result<Committed, Box<(Self, ReshareError)>> {
        if self.acked.len() < self.min_acks {
            let err = ReshareError::NotEnoughAcks {
                have: self.acked.len(),
                need: self.min_acks,
            };
            return Err(Box::new((self, err)));
        }
        let holders = self
            .deliveries
            .iter()
            .filter(|(p, _)| self.acked.contains(&p.node))
            .map(|(p, _)| *p)
            .collect();
        Ok(Committed {
            session: self.session,
            from_epoch: self.from_epoch,
            to_epoch: self.to_epoch,
            holders,
            commitments: self.commitments.clone(),
        })
    }

    /// The epoch this dealing moves from (none for a first dealing) and its acknowledgement
    /// quorum, for [`crate::holder_box::BoxedDealing`].
    pub(crate) fn origin_and_quorum(&self) -> (Option<Epoch>, usize) {
        (self.from_epoch, self.min_acks)
    }

    /// Gives up on the new epoch: returns the holders that must delete what they were sent.
    pub fn abort(self) -> Vec<Placement> {
        self.deliveries.iter().map(|(p, _)| *p).collect()
    }
}

/// A committed epoch: the secret shares are gone; only public facts remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    session: SessionId,
    from_epoch: Option<Epoch>,
    to_epoch: Epoch,
    holders: Vec<Placement>,
    commitments: Commitments,
}

impl Committed {
    /// A committed epoch from its public facts (for [`crate::holder_box::BoxedDealing`]).
    pub(crate) fn new(
        session: SessionId,
        from_epoch: Option<Epoch>,
        to_epoch: Epoch,
        holders: Vec<Placement>,
        commitments: Commitments,
    ) -> Self {
        Self {
            session,
            from_epoch,
            to_epoch,
            holders,
            commitments,
        }
    }

    /// The session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The committed epoch.
    pub fn epoch(&self) -> Epoch {
        self.to_epoch
    }

    /// Holders that acknowledged their share of the committed epoch.
    pub fn holders(&self) -> &[Placement] {
        &self.holders
    }

    /// The committed epoch's commitments.
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }

    /// The epoch old holders may now delete (none for a first dealing).
    pub fn deletable_epoch(&self) -> Option<(SessionId, Epoch)> {
        self.from_epoch.map(|e| (self.session, e))
    }
}

fn validate(holders: &[Placement], k: usize, min_acks: usize) -> Result<(), ReshareError> {
    let n = holders.len();
    sharing::check_parameters(n, k)?;
    if min_acks < k || min_acks > n {
        return Err(ReshareError::BadAckQuorum { min_acks, k, n });
    }
    // Share indices are checked here too, so a rotation is refused when it is planned, before
    // the old shares are gathered, not only when it is dealt.
    let (mut nodes, mut indices) = (BTreeSet::new(), BTreeSet::new());
    for p in holders {
        if !nodes.insert(p.node) {
            return Err(ReshareError::DuplicateHolder(p.node));
        }
        if p.index == 0 {
            return Err(SharingError::ZeroIndex.into());
        }
        if !indices.insert(p.index) {
            return Err(SharingError::DuplicateIndex { index: p.index }.into());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sharing::UnverifiedShare;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn placements(first: u8, n: u8) -> Vec<Placement> {
        (0..n)
            .map(|i| Placement {
                node: NodeId([first + i; 32]),
                index: i + 1,
            })
            .collect()
    }

    fn committed_epoch0(rng: &mut ChaCha20Rng) -> (SessionSecret, Dealt) {
        let secret = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([3; 16])).unwrap();
        let dealt =
            Dealt::fresh(SessionId([3; 16]), 0, &secret, placements(10, 5), 3, 5, rng).unwrap();
        (secret, dealt)
    }

    fn reverify(d: &Dealt) -> Vec<VerifiedShare> {
        d.deliveries()
            .iter()
            .map(|(_, s)| {
                UnverifiedShare::new(s.index(), s.value_bytes())
                    .verify(d.commitments())
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn commit_waits_for_enough_acknowledgements() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let (_, mut dealt) = committed_epoch0(&mut rng);
        for p in placements(10, 4) {
            dealt.acknowledge(&p.node).unwrap();
        }
        let (mut dealt, err) = *dealt.commit().unwrap_err();
        assert_eq!(err, ReshareError::NotEnoughAcks { have: 4, need: 5 });
        dealt.acknowledge(&NodeId([14; 32])).unwrap();
        let committed = dealt.commit().unwrap();
        assert_eq!(committed.holders().len(), 5);
        assert_eq!(committed.deletable_epoch(), None);
    }

    #[test]
    fn acknowledgement_from_a_stranger_is_refused() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let (_, mut dealt) = committed_epoch0(&mut rng);
        assert_eq!(
            dealt.acknowledge(&NodeId([99; 32])).unwrap_err(),
            ReshareError::UnknownHolder(NodeId([99; 32]))
        );
    }

    #[test]
    fn reshare_keeps_the_secret_and_commitment_zero_and_frees_the_old_epoch_only_when_committed() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let (secret, old) = committed_epoch0(&mut rng);
        let old_shares = reverify(&old);
        let plan = Planned::new(
            SessionId([3; 16]),
            0,
            old.commitments().clone(),
            placements(50, 6),
            4,
            5,
        )
        .unwrap();
        let mut dealt = plan.deal(&old_shares[2..5], &mut rng).unwrap();
        assert_eq!(dealt.epoch(), 1);
        assert_eq!(dealt.commitments().0[0], old.commitments().0[0]);
        assert_ne!(dealt.commitments().0[1], old.commitments().0[1]);
        let new_shares = reverify(&dealt);
        let rebuilt = sharing::combine(&new_shares[1..5], dealt.commitments()).unwrap();
        assert!(rebuilt == secret);
        for p in placements(50, 5) {
            dealt.acknowledge(&p.node).unwrap();
        }
        let committed = dealt.commit().unwrap();
        assert_eq!(committed.deletable_epoch(), Some((SessionId([3; 16]), 0)));
        assert_eq!(committed.holders().len(), 5);
    }

    #[test]
    fn reshare_from_too_few_or_foreign_shares_is_refused() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let (_, old) = committed_epoch0(&mut rng);
        let old_shares = reverify(&old);
        let plan = Planned::new(
            SessionId([3; 16]),
            0,
            old.commitments().clone(),
            placements(50, 5),
            3,
            4,
        )
        .unwrap();
        assert!(matches!(
            plan.deal(&old_shares[..2], &mut rng).unwrap_err(),
            ReshareError::Sharing(SharingError::NotEnoughShares { have: 2, need: 3 })
        ));
        let (_, other) = {
            let s = SessionSecret::derive(&[7; 32], &[7; 32], &SessionId([3; 16])).unwrap();
            let d =
                Dealt::fresh(SessionId([3; 16]), 0, &s, placements(10, 5), 3, 5, &mut rng).unwrap();
            (s, d)
        };
        let plan = Planned::new(
            SessionId([3; 16]),
            0,
            old.commitments().clone(),
            placements(50, 5),
            3,
            4,
        )
        .unwrap();
        assert_eq!(
            plan.deal(&reverify(&other)[..3], &mut rng).unwrap_err(),
            ReshareError::Sharing(SharingError::SecretMismatch)
        );
    }

    #[test]
    fn plans_with_duplicate_holders_or_bad_ack_quorum_are_refused() {
        let mut dup = placements(1, 3);
        dup[2].node = dup[0].node;
        let c = Commitments(vec![]);
        assert!(matches!(
            Planned::new(SessionId([0; 16]), 0, c.clone(), dup, 2, 2),
            Err(ReshareError::DuplicateHolder(_))
        ));
        assert!(matches!(
            Planned::new(SessionId([0; 16]), 0, c.clone(), placements(1, 3), 2, 4),
            Err(ReshareError::BadAckQuorum { .. })
        ));
        assert!(matches!(
            Planned::new(SessionId([0; 16]), Epoch::MAX, c, placements(1, 3), 2, 3),
            Err(ReshareError::EpochOverflow)
        ));
    }
}

#[cfg(test)]
#[path = "reshare_props.rs"]
mod props;
