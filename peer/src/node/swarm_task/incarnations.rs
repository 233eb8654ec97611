//! Closing the connections a remote's previous process left behind when it comes back restarted.
//!
//! A device killed and started again (a power cut, SIGKILL, an upgrade) dials in afresh, while
//! this node still holds the connections of the dead process: a QUIC connection lives until its
//! idle timeout (10 s), a TCP one until keep-alive or pings give up. Request-response spreads
//! requests over every connection to a peer, so meanwhile about one request in two went to the
//! dead one and waited out its timeout (a holder restart delayed the coordinator's next
//! rotation by 10 s, decision 0067). Each process names itself in identify's agent version with
//! a random boot token ([`agent_version`]); when a connection identifies a process other than the
//! one the peer's older connections reached, those are closed at once. Only the remote's own
//! signed identify on its own connection can close them, and a connection without a token
//! (another implementation) is left alone.

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use std::collections::HashMap;

/// The prefix of the boot token in an agent version.
const BOOT_PREFIX: &str = "boot/";

/// This process's identify agent version: the product, its version and a fresh random boot
/// token (64 bits: two processes of one device never share one).
pub(in crate::node) fn agent_version() -> String {
    format!(
        "entroshard/{} {BOOT_PREFIX}{:016x}",
        env!("CARGO_PKG_VERSION"),
        rand::random::<u64>()
    )
}

/// The boot token of an agent version, if it carries one.
fn boot_token(agent_version: &str) -> Option<&str> {
    agent_version
        .split_whitespace()
        .find_map(|word| word.strip_prefix(BOOT_PREFIX))
        .filter(|token| !token.is_empty())
}

/// The process each identified connection reached: one entry per open connection, removed when
/// it closes.
#[derive(Default)]
pub(super) struct Incarnations {
    by_connection: HashMap<ConnectionId, (PeerId, String)>,
}

impl Incarnations {
    /// Records what `connection` to `peer` identified as; returns the peer's other connections
    /// that reached a different process, which the caller closes (and which are forgotten here).
    pub(super) fn identified(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        agent_version: &str,
    ) -> Vec<ConnectionId> {
        let Some(boot) = boot_token(agent_version) else {
            return Vec::new();
        };
        let superseded: Vec<ConnectionId> = self
            .by_connection
            .iter()
            .filter(|(id, (p, b))| **id != connection && *p == peer && b != boot)
            .map(|(id, _)| *id)
            .collect();
        for id in &superseded {
            self.by_connection.remove(id);
        }
        self.by_connection
            .insert(connection, (peer, boot.to_string()));
        superseded
    }

    /// Forgets a closed connection.
    pub(super) fn closed(&mut self, connection: &ConnectionId) {
        self.by_connection.remove(connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_versions_carry_a_fresh_boot_token() {
        let (a, b) = (agent_version(), agent_version());
        assert_ne!(boot_token(&a), boot_token(&b));
        assert_eq!(boot_token(&a).map(str::len), Some(16));
        assert_eq!(boot_token("rust-libp2p/0.47"), None);
        assert_eq!(boot_token("entroshard/0.1.0 boot/"), None);
    }

    #[test]
    fn a_new_process_supersedes_the_old_ones_connections_and_only_those() {
        let (peer, other) = (PeerId::random(), PeerId::random());
        let c = ConnectionId::new_unchecked;
        let mut inc = Incarnations::default();
        let (old, new) = ("x boot/aaaa", "x boot/bbbb");
        assert!(inc.identified(peer, c(1), old).is_empty());
        assert!(inc.identified(peer, c(2), old).is_empty(), "same process");
        assert!(inc.identified(other, c(3), new).is_empty(), "another peer");
        assert!(
            inc.identified(peer, c(9), "rust-libp2p").is_empty(),
            "no token"
        );
        let mut closed = inc.identified(peer, c(4), new);
        closed.sort_by_key(|id| format!("{id:?}"));
        assert_eq!(closed, vec![c(1), c(2)]);
        // Identify again on a connection of the live process (its periodic push) closes nothing.
        assert!(inc.identified(peer, c(4), new).is_empty());
        inc.closed(&c(4));
        assert!(inc.by_connection.contains_key(&c(3)));
        assert_eq!(inc.by_connection.len(), 1);
    }
}
