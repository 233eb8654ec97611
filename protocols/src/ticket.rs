//! Tickets: the coordinator's signed permission for one requester to fetch one epoch's shares.

use crate::ids::{Epoch, NodeId, SessionId, ShareIndex};
use crate::sealing::ShareOpeningKey;
use crate::sharing::Commitments;
use crate::wire::{SignedEnvelope, SignedPayload, Versioned, WireError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Clock skew tolerated between coordinator and holder.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// A holder named in a ticket: who, which share, where to dial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TicketHolder {
    /// The holder's identity.
    pub node: NodeId,
    /// The share index it holds for this epoch.
    pub index: ShareIndex,
    /// Multiaddresses the holder was last seen at.
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub addrs: Vec<String>,
}

/// What holders check before serving a sealed share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Ticket {
    /// Wire version.
    pub v: u16,
    /// The coordinator that issued it.
    pub coordinator: NodeId,
    /// The session.
    pub session: SessionId,
    /// The epoch whose shares it unlocks.
    pub epoch: Epoch,
    /// The only node that may present it.
    pub requester: NodeId,
    /// Holders of this epoch's shares.
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub holders: Vec<TicketHolder>,
    /// Feldman commitments of this epoch (threshold = length).
    pub commitments: Commitments,
    /// Digest of the session policy; the user key is derived with it.
    #[serde(with = "serde_bytes")]
    pub policy_digest: [u8; 32],
    /// Issue time, unix milliseconds.
    pub issued_at_ms: u64,
    /// Expiry, unix milliseconds.
    pub expires_at_ms: u64,
    /// Random, so that two tickets are never identical.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
}

impl Versioned for Ticket {
    fn version(&self) -> u16 {
        self.v
    }
}

impl SignedPayload for Ticket {
    const CONTEXT: &'static [u8] = b"entroshard/v1/ticket";
}

impl Ticket {
    /// The share threshold k.
    pub fn threshold(&self) -> usize {
        self.commitments.threshold()
    }
}

/// One share slot's opening key, given only to the ticket's requester.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct OpeningKeyEntry {
    /// Share index.
    pub index: ShareIndex,
    /// AEAD key of that holder's slot.
    pub key: ShareOpeningKey,
}

/// What the requester keeps: the signed ticket it shows to holders and the keys it never shows.
/// Secret: store with mode 0600.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TicketGrant {
    /// Wire version.
    pub v: u16,
    /// The signed ticket, shown to holders as is.
    pub ticket: SignedEnvelope,
    /// Opening keys for each holder's sealed share.
    pub opening_keys: Vec<OpeningKeyEntry>,
}

impl Versioned for TicketGrant {
    fn version(&self) -> u16 {
        self.v
    }
}

/// Why a holder refuses a ticket. Travels on the wire in refusals.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[non_exhaustive]
pub enum TicketRefusal {
    /// Signature missing, forged, or by another key than the coordinator's.
    #[error("ticket signature does not verify against the coordinator's key")]
    BadSignature,
    /// The ticket bytes do not decode.
    #[error("ticket is malformed")]
    Malformed,
    /// The ticket has expired.
    #[error("ticket expired at {expired_at_ms} (now {now_ms})")]
    Expired {
        /// Expiry in the ticket.
        expired_at_ms: u64,
        /// Holder's time.
        now_ms: u64,
    },
    /// Issued in the future beyond the tolerated skew.
    #[error("ticket is not yet valid")]
    NotYetValid,
    /// The authenticated remote is not the ticket's requester.
    #[error("the connection's peer is not the ticket's requester")]
    WrongRequester,
    /// This node is not a holder named in the ticket.
    #[error("this node is not a holder named in the ticket")]
    NotAHolder,
    /// This node holds the session, but not at the ticket's epoch.
    #[error("ticket is for epoch {ticket_epoch}, this holder has {held:?}")]
    StaleEpoch {
        /// Epoch in the ticket.
        ticket_epoch: Epoch,
        /// Epochs this holder has for the session.
        held: Vec<Epoch>,
    },
}

/// A ticket that passed every check, with this holder's share index.
#[derive(Debug, Clone)]
pub struct CheckedTicket {
    /// The verified ticket.
    pub ticket: Ticket,
    /// This holder's index in it.
    pub index: ShareIndex,
}

/// Checks a ticket at a holder: coordinator signature, time window, authenticated remote,
/// that this node is a named holder, and that it holds the ticket's epoch.
/// `held_epochs` answers which epochs of a session this node stores.
pub fn check_ticket(
    envelope: &SignedEnvelope,
    coordinator: &NodeId,
    now_ms: u64,
    remote: &NodeId,
    local: &NodeId,
    held_epochs: impl FnOnce(&SessionId) -> Vec<Epoch>,
) -> Result<CheckedTicket, TicketRefusal> {
    let ticket = open_ticket(envelope, coordinator)?;
    check_opened_ticket(ticket, coordinator, now_ms, remote, local, held_epochs)
}

/// The signature step of [`check_ticket`] alone: the ticket, if the coordinator signed it.
pub fn open_ticket(
    envelope: &SignedEnvelope,
    coordinator: &NodeId,
) -> Result<Ticket, TicketRefusal> {
    envelope.open(coordinator).map_err(|e| match e {
        WireError::BadSignature | WireError::UnexpectedSigner => TicketRefusal::BadSignature,
        _ => TicketRefusal::Malformed,
    })
}

/// The remaining steps of [`check_ticket`] on a ticket from [`open_ticket`] (so a holder can
/// check the signature on its event loop and read its store on a blocking thread).
pub fn check_opened_ticket(
    ticket: Ticket,
    coordinator: &NodeId,
    now_ms: u64,
    remote: &NodeId,
    local: &NodeId,
    held_epochs: impl FnOnce(&SessionId) -> Vec<Epoch>,
) -> Result<CheckedTicket, TicketRefusal> {
    if &ticket.coordinator != coordinator {
        return Err(TicketRefusal::BadSignature);
    }
    if now_ms >= ticket.expires_at_ms {
        return Err(TicketRefusal::Expired {
            expired_at_ms: ticket.expires_at_ms,
            now_ms,
        });
    }
    if ticket.issued_at_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(TicketRefusal::NotYetValid);
    }
    if &ticket.requester != remote {
        return Err(TicketRefusal::WrongRequester);
    }
    let index = ticket
        .holders
        .iter()
        .find(|h| &h.node == local)
        .map(|h| h.index)
        .ok_or(TicketRefusal::NotAHolder)?;
    let held = held_epochs(&ticket.session);
    if !held.contains(&ticket.epoch) {
        if held.is_empty() {
            return Err(TicketRefusal::NotAHolder);
        }
        return Err(TicketRefusal::StaleEpoch {
            ticket_epoch: ticket.epoch,
            held,
        });
    }
    Ok(CheckedTicket { ticket, index })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;
    use crate::sharing::CommitmentBytes;
    use crate::wire::WIRE_VERSION;

    struct World {
        coord: NodeKey,
        requester: NodeId,
        holder: NodeId,
    }

    fn world() -> World {
        World {
            coord: NodeKey::from_secret_bytes(&[1; 32]),
            requester: NodeKey::from_secret_bytes(&[2; 32]).node_id(),
            holder: NodeKey::from_secret_bytes(&[3; 32]).node_id(),
        }
    }

    fn ticket(w: &World) -> Ticket {
        Ticket {
            v: WIRE_VERSION,
            coordinator: w.coord.node_id(),
            session: SessionId([5; 16]),
            epoch: 2,
            requester: w.requester,
            holders: vec![TicketHolder {
                node: w.holder,
                index: 4,
                addrs: vec!["/ip4/127.0.0.1/udp/1/quic-v1".into()],
            }],
            commitments: Commitments(vec![CommitmentBytes([0; 32]); 3]),
            policy_digest: [8; 32],
            issued_at_ms: 1_000,
            expires_at_ms: 10_000,
            nonce: [0; 16],
        }
    }

    fn check(
        w: &World,
        env: &SignedEnvelope,
        now: u64,
        remote: &NodeId,
        held: Vec<Epoch>,
    ) -> Result<CheckedTicket, TicketRefusal> {
        check_ticket(env, &w.coord.node_id(), now, remote, &w.holder, |_| held)
    }

    #[test]
    fn valid_ticket_passes_and_names_this_holders_index() {
        let w = world();
        let env = SignedEnvelope::seal(&w.coord, &ticket(&w));
        let ok = check(&w, &env, 5_000, &w.requester, vec![2]).unwrap();
        assert_eq!(ok.index, 4);
    }

    #[test]
    fn expired_ticket_is_refused_as_expired() {
        let w = world();
        let env = SignedEnvelope::seal(&w.coord, &ticket(&w));
        assert_eq!(
            check(&w, &env, 10_000, &w.requester, vec![2]).unwrap_err(),
            TicketRefusal::Expired {
                expired_at_ms: 10_000,
                now_ms: 10_000
            }
        );
    }

    #[test]
    fn ticket_presented_by_another_peer_is_refused_as_wrong_requester() {
        let w = world();
        let env = SignedEnvelope::seal(&w.coord, &ticket(&w));
        let thief = NodeKey::from_secret_bytes(&[9; 32]).node_id();
        assert_eq!(
            check(&w, &env, 5_000, &thief, vec![2]).unwrap_err(),
            TicketRefusal::WrongRequester
        );
    }

    #[test]
    fn ticket_not_naming_this_node_is_refused_as_not_a_holder() {
        let w = world();
        let mut t = ticket(&w);
        t.holders[0].node = w.requester;
        let env = SignedEnvelope::seal(&w.coord, &t);
        assert_eq!(
            check(&w, &env, 5_000, &w.requester, vec![2]).unwrap_err(),
            TicketRefusal::NotAHolder
        );
    }

    #[test]
    fn ticket_for_an_old_epoch_is_refused_as_stale() {
        let w = world();
        let env = SignedEnvelope::seal(&w.coord, &ticket(&w));
        assert_eq!(
            check(&w, &env, 5_000, &w.requester, vec![3]).unwrap_err(),
            TicketRefusal::StaleEpoch {
                ticket_epoch: 2,
                held: vec![3]
            }
        );
    }

    #[test]
    fn ticket_signed_by_anyone_but_the_coordinator_is_a_bad_signature() {
        let w = world();
        let forger = NodeKey::from_secret_bytes(&[7; 32]);
        let env = SignedEnvelope::seal(&forger, &ticket(&w));
        assert_eq!(
            check(&w, &env, 5_000, &w.requester, vec![2]).unwrap_err(),
            TicketRefusal::BadSignature
        );
        let mut env = SignedEnvelope::seal(&w.coord, &ticket(&w));
        env.payload[10] ^= 1;
        assert_eq!(
            check(&w, &env, 5_000, &w.requester, vec![2]).unwrap_err(),
            TicketRefusal::BadSignature
        );
    }

    #[test]
    fn ticket_from_the_far_future_is_not_yet_valid() {
        let w = world();
        let mut t = ticket(&w);
        t.issued_at_ms = 5_000 + MAX_CLOCK_SKEW_MS + 1;
        t.expires_at_ms = u64::MAX;
        let env = SignedEnvelope::seal(&w.coord, &t);
        assert_eq!(
            check(&w, &env, 5_000, &w.requester, vec![2]).unwrap_err(),
            TicketRefusal::NotYetValid
        );
    }
}
