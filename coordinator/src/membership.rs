//! Membership certificates for enrolled devices (docs/protocol/gossip-admission.md, decision
//! 0065): a device shows one with each gossip message so that other devices forward it.

use crate::peers::PeerTable;
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use protocols::wire::{self, Refusal, Reply, SignedEnvelope};

/// Answers a `GetMembership` or `GetMembershipOf` request about `subject`, counting refusals.
pub(crate) async fn respond(
    ctx: &crate::service::Ctx,
    peers: &PeerTable,
    subject: NodeId,
    responder: crate::service::ReplyTo,
) {
    let reply = answer(&ctx.key, peers, subject, crate::service::now_ms());
    if let Err(r) = &reply.result {
        ctx.metrics.requests_refused.inc(r.label());
    }
    let _ = responder.respond(wire::encode(&reply)).await;
}

/// Answers `GetMembership` (`subject`: the caller) and `GetMembershipOf(subject)` (a forwarding
/// device asking about an author): a certificate valid an hour from `now_ms` if the subject is
/// enrolled (and not removed), `unauthorized` otherwise. Quarantined peers are still
/// enrolled and get one: quarantine decides credit and placement here, not whether their
/// heartbeats may travel.
pub fn answer(
    key: &NodeKey,
    peers: &PeerTable,
    subject: NodeId,
    now_ms: u64,
) -> Reply<SignedEnvelope> {
    if peers.get(&subject).is_none() {
        tracing::debug!(node = %subject.short(), "membership certificate refused: not enrolled");
        return Reply::refused(Refusal::Unauthorized);
    }
    Reply::ok(protocols::membership::issue(key, subject, now_ms))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protocols::membership::{MembershipCert, VALIDITY_MS};

    #[test]
    fn an_enrolled_device_gets_an_hour_and_a_stranger_or_removed_one_is_refused() {
        let coordinator = NodeKey::from_secret_bytes(&[1; 32]);
        let device = NodeKey::from_secret_bytes(&[2; 32]).node_id();
        let stranger = NodeKey::from_secret_bytes(&[3; 32]).node_id();
        let mut peers = PeerTable::default();
        peers.enrol(device, "eu".into(), "op".into());
        let cert = answer(&coordinator, &peers, device, 5).result.unwrap();
        let opened: MembershipCert = cert.open(&coordinator.node_id()).unwrap();
        assert_eq!(opened.node, device);
        assert_eq!(
            (opened.issued_at_ms, opened.expires_at_ms),
            (5, 5 + VALIDITY_MS)
        );
        assert_eq!(
            answer(&coordinator, &peers, stranger, 5).result,
            Err(Refusal::Unauthorized)
        );
        peers.remove(&device);
        assert_eq!(
            answer(&coordinator, &peers, device, 5).result,
            Err(Refusal::Unauthorized)
        );
    }
}
