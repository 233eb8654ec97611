//! Tickets whose coordinator signature was already checked, so fetching again with the same
//! ticket costs no second signature check (holders and requesters both keep one). Only the
//! signature step is skipped: a holder still checks expiry, requester, holder and epoch on every
//! request.

use protocols::ids::NodeId;
use protocols::ticket::{Ticket, TicketRefusal, open_ticket};
use protocols::wire::SignedEnvelope;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Tickets remembered; the oldest is forgotten first. Each entry is about 1–3 KiB.
const CAPACITY: usize = 16;

/// A small most-recent-first cache of signature-checked tickets.
#[derive(Debug, Default)]
pub struct TicketCache {
    entries: Mutex<VecDeque<(SignedEnvelope, Ticket)>>,
}

impl TicketCache {
    /// The ticket in `envelope` if `coordinator` signed it: from the cache when these exact bytes
    /// were checked before, otherwise checked now (and remembered when good).
    pub fn open(
        &self,
        envelope: &SignedEnvelope,
        coordinator: &NodeId,
    ) -> Result<Ticket, TicketRefusal> {
        if let Ok(entries) = self.entries.lock()
            && let Some((_, ticket)) = entries.iter().find(|(seen, _)| seen == envelope)
        {
            return Ok(ticket.clone());
        }
        let ticket = open_ticket(envelope, coordinator)?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.pop_back();
            }
            entries.push_front((envelope.clone(), ticket.clone()));
        }
        Ok(ticket)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::identity::NodeKey;
    use protocols::ids::SessionId;
    use protocols::sharing::Commitments;
    use protocols::wire::WIRE_VERSION;

    fn ticket(coordinator: &NodeKey, session: u8) -> SignedEnvelope {
        let key = NodeKey::generate(&mut rand::rng());
        SignedEnvelope::seal(
            coordinator,
            &Ticket {
                v: WIRE_VERSION,
                coordinator: coordinator.node_id(),
                session: SessionId([session; 16]),
                epoch: 0,
                requester: key.node_id(),
                holders: Vec::new(),
                commitments: Commitments(Vec::new()),
                policy_digest: [0; 32],
                issued_at_ms: 1,
                expires_at_ms: 2,
                nonce: [session; 16],
            },
        )
    }

    #[test]
    fn a_forged_signature_is_refused_even_next_to_a_cached_twin() {
        let coordinator = NodeKey::generate(&mut rand::rng());
        let cache = TicketCache::default();
        let good = ticket(&coordinator, 1);
        assert_eq!(
            cache.open(&good, &coordinator.node_id()).unwrap().session,
            SessionId([1; 16])
        );
        // Same payload, one signature bit flipped: not the cached bytes, so checked, and refused.
        let mut forged = good.clone();
        forged.signature[0] ^= 1;
        assert_eq!(
            cache.open(&forged, &coordinator.node_id()).unwrap_err(),
            TicketRefusal::BadSignature
        );
        // Same signature over another payload: refused too.
        let mut swapped = good.clone();
        swapped.payload = ticket(&coordinator, 2).payload;
        assert_eq!(
            cache.open(&swapped, &coordinator.node_id()).unwrap_err(),
            TicketRefusal::BadSignature
        );
        // The genuine one still opens (from the cache).
        assert!(cache.open(&good, &coordinator.node_id()).is_ok());
    }

    #[test]
    fn only_the_most_recent_tickets_are_kept() {
        let coordinator = NodeKey::generate(&mut rand::rng());
        let cache = TicketCache::default();
        for i in 0..(CAPACITY as u8 + 4) {
            cache
                .open(&ticket(&coordinator, i), &coordinator.node_id())
                .unwrap();
        }
        assert_eq!(cache.entries.lock().unwrap().len(), CAPACITY);
    }
}
