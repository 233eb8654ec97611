//! The entries the coordinator writes to its audit trail for what it does on its own: ticket
//! grants, joins by token, the erasure of a retired master key (the admin socket writes the
//! operators' own).

use crate::db::{AuditEntry, Enrolment, SessionRecord};
use protocols::ids::NodeId;
use protocols::sealing::MasterKeyId;
use protocols::ticket::{Ticket, TicketGrant};

/// A ticket granted to `who` by `action` (`"ticket"`, `"session create"`) on `record`'s
/// current epoch; the expiry is read from the ticket the coordinator (`coordinator`) signed.
pub fn ticket(
    coordinator: &NodeId,
    who: &str,
    action: &'static str,
    record: &SessionRecord,
    grant: &TicketGrant,
    now_ms: u64,
) -> AuditEntry {
    let expires = grant
        .ticket
        .open::<Ticket>(coordinator)
        .map(|t| crate::admin::rfc3339::format_ms(t.expires_at_ms))
        .unwrap_or_default();
    AuditEntry::new(
        now_ms,
        format!("requester {who}"),
        action,
        record.session.to_string(),
        format!("epoch {}, ticket expires {expires}", record.epoch),
    )
}

/// `node` joined with a token and is enrolled as `e` says.
pub fn joined(node: &NodeId, e: &Enrolment, now_ms: u64) -> AuditEntry {
    let who = crate::admin::peer_text(node);
    AuditEntry::new(
        now_ms,
        format!("peer {who}"),
        "join",
        who,
        format!(
            "join token redeemed: region {}, operator {}",
            e.region, e.operator
        ),
    )
}

/// The retired master key `retired` was erased; every session is under `current`.
pub fn master_key_erased(retired: MasterKeyId, current: MasterKeyId, now_ms: u64) -> AuditEntry {
    AuditEntry::new(
        now_ms,
        "coordinator",
        "master-key erase",
        retired.to_string(),
        format!("every session is re-sealed under {current}"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::core::orders::Signer;
    use crate::core::test_state::{NOW, node, session};
    use protocols::identity::NodeKey;
    use protocols::sealing::SealingMasterKey;

    #[test]
    fn a_ticket_entry_names_the_requester_the_session_its_epoch_and_the_tickets_expiry() {
        let key = NodeKey::from_secret_bytes(&[1; 32]);
        let master = SealingMasterKey::from_bytes([2; 32]);
        let signer = Signer {
            key: &key,
            master: &master,
        };
        let mut record = session(1, &[1, 2]);
        record.epoch = 3;
        let rules = crate::core::state::Rules::of(&crate::core::test_state::config()).sessions;
        let addrs = [(node(1), Vec::new()), (node(2), Vec::new())];
        let grant =
            crate::core::sessions::grant(&signer, &rules, &record, node(7), &addrs, [9; 16], NOW);
        let e = ticket(&key.node_id(), "r7", "ticket", &record, &grant, NOW);
        assert_eq!(
            (e.actor.as_str(), e.action.as_str()),
            ("requester r7", "ticket")
        );
        assert_eq!(e.subject, record.session.to_string());
        let ticket: Ticket = grant.ticket.open(&key.node_id()).unwrap();
        let expires = crate::admin::rfc3339::format_ms(ticket.expires_at_ms);
        assert_eq!(e.detail, format!("epoch 3, ticket expires {expires}"));
        let forged = ticket_for_another(&grant, &record);
        assert_eq!(forged.detail, "epoch 3, ticket expires ");
    }

    fn ticket_for_another(grant: &TicketGrant, record: &SessionRecord) -> AuditEntry {
        let other = NodeKey::from_secret_bytes(&[3; 32]).node_id();
        ticket(&other, "r7", "ticket", record, grant, NOW)
    }

    #[test]
    fn a_join_entry_names_the_peer_and_its_labels() {
        let e = Enrolment {
            region: "eu".into(),
            operator: "op".into(),
            enrolled_at_ms: NOW,
            share_key: None,
        };
        let entry = joined(&node(1), &e, NOW);
        let who = crate::admin::peer_text(&node(1));
        assert_eq!(entry.actor, format!("peer {who}"));
        assert_eq!((entry.action.as_str(), entry.subject), ("join", who));
        assert_eq!(entry.detail, "join token redeemed: region eu, operator op");
    }
}
