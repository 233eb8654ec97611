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
}
