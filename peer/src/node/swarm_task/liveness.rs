//! Closing a connection whose remote stopped answering pings, so the owner's redial runs.
//!
//! A link cut without a reset (a home router that lost its uplink, a firewall dropping
//! everything) leaves a TCP connection that looks open: writes are buffered, nothing comes
//! back, and TCP gives up only after its retransmission backoff (minutes). libp2p-ping (0.43 on)
//! no longer closes a connection on failures; it reports the second failure in a row (its
//! handler keeps the first silent) and leaves the rest to the application. A peer kept its dead
//! connection to the coordinator through a whole outage and the heartbeat redial of decision
//! 0031 never ran, because the swarm still counted it connected (decision 0061). So a reported
//! timeout or stream error closes that connection; a remote without the ping protocol does not.
//! Connections left by a remote's previous process are closed as soon as its new one identifies
//! itself ([`super::incarnations`]).

use super::SwarmTask;
use libp2p::swarm::ConnectionId;
use libp2p::{PeerId, ping};

/// Whether a failure ping reported on a connection says its remote is gone. libp2p-ping reports
/// only the second failure in a row, so one slow answer on a loaded machine closes nothing.
pub(super) fn closes_connection(failure: &ping::Failure) -> bool {
    match failure {
        ping::Failure::Timeout | ping::Failure::Other { .. } => true,
        // A remote that does not speak ping (never one of ours) is not dead for it.
        ping::Failure::Unsupported => false,
    }
}

impl SwarmTask {
    pub(super) fn on_ping_failure(&mut self, event: ping::Event) {
        let ping::Event {
            peer,
            connection,
            result: Err(failure),
        } = event
        else {
            return;
        };
        if closes_connection(&failure) && self.swarm.close_connection(connection) {
            tracing::info!(%peer, ?connection, %failure, "pings unanswered; connection closed");
        } else {
            tracing::debug!(%peer, ?connection, %failure, "ping failed");
        }
    }

    /// Closes `peer`'s connections to a process other than the one `connection` identified.
    pub(super) fn close_superseded(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        agent_version: &str,
    ) {
        for old in self
            .incarnations
            .identified(peer, connection, agent_version)
        {
            if self.swarm.close_connection(old) {
                tracing::info!(
                    %peer,
                    connection = ?old,
                    "the peer restarted; its previous process's connection closed"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_stream_errors_close_and_a_remote_without_ping_does_not() {
        assert!(closes_connection(&ping::Failure::Timeout));
        assert!(closes_connection(&ping::Failure::Other {
            error: Box::new(std::io::Error::other("reset")),
        }));
        assert!(!closes_connection(&ping::Failure::Unsupported));
    }
}
