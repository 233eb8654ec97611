//! Dealing a session's secret as states consumed by value: `Dealt → Committed`.
//!
//! A session's secret is split once, at its birth ([`Dealt::fresh`]), onto its first holder
//! set; the epoch is committed only once enough holders have acknowledged a durable write, and
//! the committed value keeps only public facts. Rotation never passes through here: it moves
//! the shares by redistribution among holders ([`crate::redistribution`],
//! [`crate::sharing::redistribute`]; decision 0057), so no party rebuilds the secret.

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

/// Why a dealing step was refused.
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
}

/// Shares dealt for a new epoch, waiting for durable acknowledgements. Holds secret shares.
#[derive(Debug)]
pub struct Dealt {
    session: SessionId,
    to_epoch: Epoch,
    commitments: Commitments,
    deliveries: Vec<(Placement, VerifiedShare)>,
    acked: BTreeSet<NodeId>,
    min_acks: usize,
}

impl Dealt {
    /// Deals a secret onto `holders` for `epoch` (a session's birth deals epoch 0).
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

    /// The epoch's commitments (commitment 0 is the secret's public point).
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
            to_epoch: self.to_epoch,
            holders,
            commitments: self.commitments.clone(),
        })
    }

    /// The acknowledgement quorum, for [`crate::holder_box::BoxedDealing`].
    pub(crate) fn min_acks(&self) -> usize {
        self.min_acks
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
    to_epoch: Epoch,
    holders: Vec<Placement>,
    commitments: Commitments,
}

impl Committed {
    /// A committed epoch from its public facts (for [`crate::holder_box::BoxedDealing`]).
    pub(crate) fn new(
        session: SessionId,
        to_epoch: Epoch,
        holders: Vec<Placement>,
        commitments: Commitments,
    ) -> Self {
        Self {
            session,
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
}

fn validate(holders: &[Placement], k: usize, min_acks: usize) -> Result<(), ReshareError> {
    let n = holders.len();
    sharing::check_parameters(n, k)?;
    if min_acks < k || min_acks > n {
        return Err(ReshareError::BadAckQuorum { min_acks, k, n });
    }
    // Share indices are checked here as well as in `sharing::split`, so every fault of a
    // holder set is refused in one place, before any polynomial is drawn.
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
        assert_eq!(committed.epoch(), 0);
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
    fn any_k_dealt_shares_rebuild_the_secret_and_fewer_do_not() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let (secret, dealt) = committed_epoch0(&mut rng);
        let shares = reverify(&dealt);
        assert_eq!(dealt.commitments().0[0].0, secret.public_point());
        let rebuilt = sharing::combine(&shares[2..5], dealt.commitments()).unwrap();
        assert!(rebuilt == secret);
        assert_eq!(
            sharing::combine(&shares[..2], dealt.commitments()).unwrap_err(),
            SharingError::NotEnoughShares { have: 2, need: 3 }
        );
    }

    #[test]
    fn dealings_with_duplicate_holders_or_bad_ack_quorum_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let secret = SessionSecret::derive(&[1; 32], &[2; 32], &SessionId([0; 16])).unwrap();
        let mut dup = placements(1, 3);
        dup[2].node = dup[0].node;
        assert!(matches!(
            Dealt::fresh(SessionId([0; 16]), 0, &secret, dup, 2, 2, &mut rng),
            Err(ReshareError::DuplicateHolder(_))
        ));
        assert!(matches!(
            Dealt::fresh(
                SessionId([0; 16]),
                0,
                &secret,
                placements(1, 3),
                2,
                4,
                &mut rng
            ),
            Err(ReshareError::BadAckQuorum { .. })
        ));
    }
}

#[cfg(test)]
#[path = "reshare_props.rs"]
mod props;
