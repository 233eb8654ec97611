//! Which gossip a device forwards (docs/protocol/gossip-admission.md): an envelope signed by the
//! gossip author, of the topic's type, carrying a membership certificate from the pinned
//! coordinator that names the author and has not expired.

use crate::node::{CONTRIBUTIONS_TOPIC, GossipVerdict, STATUS_TOPIC};
use libp2p::PeerId;
use protocols::ids::NodeId;
use protocols::membership::Admission;
use protocols::wire::{Contribution, SignedEnvelope, StatusHeartbeat};

/// Largest gossip envelope judged; larger ones are refused before decoding.
const MAX_GOSSIP: usize = 16 * 1024;

/// Why a device did not forward a message: `Ok(())` to forward it, else the reason's label
/// (for `entroshard_gossip_refused_total`) with the verdict for gossipsub.
pub(super) fn relay_verdict(
    admission: &mut Admission,
    coordinator: &NodeId,
    topic: &str,
    author: Option<&PeerId>,
    data: &[u8],
    now_ms: u64,
) -> Result<(), (&'static str, GossipVerdict)> {
    const REJECT: GossipVerdict = GossipVerdict::Reject;
    let Some(author) = author.and_then(crate::identity::node_id) else {
        return Err(("unsigned", REJECT));
    };
    let Ok(envelope) = SignedEnvelope::from_bytes(data, MAX_GOSSIP) else {
        return Err(("envelope", REJECT));
    };
    let membership = match topic {
        CONTRIBUTIONS_TOPIC => envelope.open::<Contribution>(&author).map(|c| c.membership),
        STATUS_TOPIC => envelope
            .open::<StatusHeartbeat>(&author)
            .map(|b| b.membership),
        // Not a topic this device subscribes to: nobody's fault here.
        _ => return Err(("topic", GossipVerdict::Ignore)),
    };
    let Ok(membership) = membership else {
        return Err(("envelope", REJECT));
    };
    if &author == coordinator {
        return Ok(());
    }
    admission
        .check(membership.as_ref(), coordinator, &author, now_ms)
        .map(|_| ())
        .map_err(|refusal| (refusal.label(), REJECT))
}

/// Lookups asked of the coordinator at once, at most.
const LOOKUPS_IN_FLIGHT: usize = 4;
/// How long a coordinator's "not enrolled" answer about an author is kept.
const REFUSAL_KEPT_MS: u64 = 60_000;
/// Authors refused that are remembered, at most.
const REFUSALS_KEPT: usize = 4096;

/// What to do with a message whose author carries no certificate and none is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknown {
    /// The coordinator said lately the author is not enrolled: reject.
    Refused,
    /// Ask the coordinator about the author (not forwarded meanwhile, no penalty).
    Ask,
    /// Already asking, or too many lookups under way: not forwarded, no penalty.
    Wait,
}

/// Authors without a certificate that this device asked the coordinator about (bounded): a
/// member that cannot reach the coordinator itself (its heartbeats are how the coordinator
/// finds it through a relay) is vouched for by the certificate the forwarder fetched; a
/// stranger is refused for [`REFUSAL_KEPT_MS`] after the coordinator said so.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    refused: std::collections::HashMap<NodeId, u64>,
    pending: std::collections::HashSet<NodeId>,
}

impl Lookups {
    /// Decides for a message from `author` that carries no certificate, none being cached.
    pub(super) fn on_missing(&mut self, author: NodeId, now_ms: u64) -> Unknown {
        if let Some(at) = self.refused.get(&author) {
            if now_ms.saturating_sub(*at) < REFUSAL_KEPT_MS {
                return Unknown::Refused;
            }
            self.refused.remove(&author);
        }
        if self.pending.contains(&author) || self.pending.len() >= LOOKUPS_IN_FLIGHT {
            return Unknown::Wait;
        }
        self.pending.insert(author);
        Unknown::Ask
    }

    /// The lookup of `author` ended; `refused`: the coordinator said it is not enrolled.
    pub(super) fn done(&mut self, author: NodeId, refused: bool, now_ms: u64) {
        self.pending.remove(&author);
        if refused {
            if self.refused.len() >= REFUSALS_KEPT {
                self.refused
                    .retain(|_, at| now_ms.saturating_sub(*at) < REFUSAL_KEPT_MS);
            }
            if self.refused.len() < REFUSALS_KEPT {
                self.refused.insert(author, now_ms);
            }
        }
    }
}

/// Asks the coordinator for `author`'s certificate and caches what verifies; records a refusal.
pub(super) async fn look_up(
    shared: std::sync::Arc<super::Shared>,
    node: crate::node::NodeHandle,
    coordinator: PeerId,
    addr: libp2p::Multiaddr,
    author: NodeId,
) {
    use protocols::wire::{CoordinatorRequest, Refusal, Reply};
    let request = CoordinatorRequest::GetMembershipOf(author);
    let answer: Option<Reply<SignedEnvelope>> =
        super::coordinator_call::ask(&node, coordinator, &addr, request)
            .await
            .ok();
    let now = super::now_ms();
    let refused = match answer.map(|r| r.result) {
        Some(Ok(cert)) => {
            if let Ok(mut admission) = shared.admission.lock() {
                let _ = admission.check(Some(&cert), &shared.coordinator, &author, now);
            }
            false
        }
        Some(Err(Refusal::Unauthorized)) => true,
        _ => false,
    };
    tracing::debug!(node = %author.short(), refused, "gossip author looked up");
    if let Ok(mut lookups) = shared.lookups.lock() {
        lookups.done(author, refused, now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::identity::NodeKey;
    use protocols::membership::{SKEW_MS, VALIDITY_MS, issue};
    use protocols::wire::WIRE_VERSION;

    const NOW: u64 = 1_800_000_000_000;

    fn peer_id(key: &NodeKey) -> PeerId {
        crate::identity::peer_id(&key.node_id()).unwrap()
    }

    fn contribution(author: &NodeKey, membership: Option<SignedEnvelope>) -> Vec<u8> {
        let c = Contribution {
            v: WIRE_VERSION,
            seq: 1,
            sent_at_ms: NOW,
            sealed: vec![1; 64],
            membership,
        };
        SignedEnvelope::seal(author, &c).to_bytes()
    }

    fn verdict(author: &NodeKey, data: &[u8], at: u64) -> Result<(), &'static str> {
        let coordinator = NodeKey::from_secret_bytes(&[1; 32]).node_id();
        relay_verdict(
            &mut Admission::default(),
            &coordinator,
            CONTRIBUTIONS_TOPIC,
            Some(&peer_id(author)),
            data,
            at,
        )
        .map_err(|(reason, v)| {
            assert_eq!(v, GossipVerdict::Reject, "{reason}");
            reason
        })
    }

    #[test]
    fn a_members_contribution_is_forwarded_and_a_strangers_is_refused_by_reason() {
        let coordinator = NodeKey::from_secret_bytes(&[1; 32]);
        let member = NodeKey::from_secret_bytes(&[2; 32]);
        let stranger = NodeKey::from_secret_bytes(&[3; 32]);
        let cert = issue(&coordinator, member.node_id(), NOW);
        assert_eq!(
            verdict(&member, &contribution(&member, Some(cert.clone())), NOW),
            Ok(())
        );
        assert_eq!(
            verdict(&stranger, &contribution(&stranger, None), NOW),
            Err("missing")
        );
        let self_signed = issue(&stranger, stranger.node_id(), NOW);
        assert_eq!(
            verdict(&stranger, &contribution(&stranger, Some(self_signed)), NOW),
            Err("forged")
        );
        assert_eq!(
            verdict(&stranger, &contribution(&stranger, Some(cert.clone())), NOW),
            Err("other_node")
        );
        assert_eq!(
            verdict(
                &member,
                &contribution(&member, Some(cert)),
                NOW + VALIDITY_MS + SKEW_MS + 1
            ),
            Err("expired")
        );
        // Re-published under another author: the envelope does not open as the author's.
        assert_eq!(
            verdict(&stranger, &contribution(&member, None), NOW),
            Err("envelope")
        );
    }

    #[test]
    fn the_coordinators_own_gossip_needs_no_certificate_and_other_topics_are_ignored() {
        let coordinator = NodeKey::from_secret_bytes(&[1; 32]);
        let mut admission = Admission::default();
        let data = contribution(&coordinator, None);
        let author = peer_id(&coordinator);
        assert_eq!(
            relay_verdict(
                &mut admission,
                &coordinator.node_id(),
                CONTRIBUTIONS_TOPIC,
                Some(&author),
                &data,
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            relay_verdict(
                &mut admission,
                &coordinator.node_id(),
                "elsewhere/1",
                Some(&author),
                &data,
                NOW
            ),
            Err(("topic", GossipVerdict::Ignore))
        );
    }

    #[test]
    fn an_author_without_a_certificate_is_asked_about_once_and_refused_while_the_answer_holds() {
        let author = NodeKey::from_secret_bytes(&[3; 32]).node_id();
        let mut lookups = Lookups::default();
        assert_eq!(lookups.on_missing(author, NOW), Unknown::Ask);
        assert_eq!(lookups.on_missing(author, NOW), Unknown::Wait);
        lookups.done(author, true, NOW);
        assert_eq!(lookups.on_missing(author, NOW + 1), Unknown::Refused);
        assert_eq!(
            lookups.on_missing(author, NOW + REFUSAL_KEPT_MS),
            Unknown::Ask
        );
        // A lookup that found a member (or failed) leaves nothing refused.
        lookups.done(author, false, NOW + REFUSAL_KEPT_MS);
        assert_eq!(
            lookups.on_missing(author, NOW + REFUSAL_KEPT_MS),
            Unknown::Ask
        );
        // At most LOOKUPS_IN_FLIGHT at once.
        let mut many = Lookups::default();
        for i in 0..LOOKUPS_IN_FLIGHT as u8 {
            let n = NodeKey::from_secret_bytes(&[40 + i; 32]).node_id();
            assert_eq!(many.on_missing(n, NOW), Unknown::Ask);
        }
        let one_more = NodeKey::from_secret_bytes(&[99; 32]).node_id();
        assert_eq!(many.on_missing(one_more, NOW), Unknown::Wait);
    }
}
