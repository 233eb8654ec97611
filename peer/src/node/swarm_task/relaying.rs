//! The relay side of the swarm task: reservations this node keeps on relays (asked for once
//! connected to the relay, asked again when they end), what the relay client and server report,
//! and hole punches (DCUtR), after which the relayed connection to that peer is closed.

use super::SwarmTask;
use crate::node::handle::ConnectionPath;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol as Part;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, dcutr, relay};

/// A reservation on one relay: asked for (by listening on the circuit address) once a
/// connection to the relay is up, asked for again when its listener closes.
pub(super) struct Reservation {
    /// `<relay>/p2p/<relay id>/p2p-circuit`.
    pub(super) circuit: Multiaddr,
    /// The listener while a reservation is asked for or held.
    pub(super) listener: Option<ListenerId>,
}

/// How often reservations that are missing are asked for again (and their relays dialled).
pub(super) const RESERVATION_RETRY: std::time::Duration = std::time::Duration::from_secs(20);

/// Whether `addr` goes through a relay.
pub(super) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Part::P2pCircuit))
}

/// Logs what the relay client reports.
pub(super) fn on_relay_client_event(event: relay::client::Event) {
    match event {
        relay::client::Event::ReservationReqAccepted {
            relay_peer_id,
            renewal: false,
            ..
        } => tracing::info!(relay = %relay_peer_id, "relay reservation accepted"),
        other => tracing::debug!(?other, "relay client"),
    }
}

/// Logs what the relay server reports (refusals at INFO: they mean a limit was hit).
pub(super) fn on_relay_event(event: relay::Event) {
    match event {
        relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
            tracing::debug!(peer = %src_peer_id, "relay: reservation granted");
        }
        relay::Event::ReservationReqDenied { src_peer_id, .. } => {
            tracing::info!(peer = %src_peer_id, "relay: reservation refused (limits)");
        }
        relay::Event::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
            ..
        } => tracing::info!(
            src = %src_peer_id,
            dst = %dst_peer_id,
            "relay: circuit refused (limits or no reservation)"
        ),
        other => tracing::debug!(?other, "relay server"),
    }
}

impl SwarmTask {
    /// Asks for the reservations not held: on a relay we are connected to, listen on its circuit
    /// address (the relay client reuses the connection); otherwise dial the relay, and the
    /// reservation follows when the connection is up. Listening while a dial to the relay is
    /// under way would lose the reservation (the relay client's own dial is refused).
    pub(super) fn keep_reservations(&mut self) {
        let missing: Vec<PeerId> = self
            .relays
            .iter()
            .filter(|(_, r)| r.listener.is_none())
            .map(|(id, _)| *id)
            .collect();
        for relay in missing {
            self.reserve_on(relay);
        }
    }

    pub(super) fn reserve_on(&mut self, relay: PeerId) {
        let connected = self.swarm.is_connected(&relay);
        let Some(reservation) = self.relays.get_mut(&relay) else {
            return;
        };
        if reservation.listener.is_some() {
            return;
        }
        if connected {
            match self.swarm.listen_on(reservation.circuit.clone()) {
                Ok(id) => reservation.listener = Some(id),
                Err(e) => {
                    tracing::warn!(%relay, error = %crate::node::error_chain(&e), "relay reservation not asked for");
                }
            }
        } else {
            let relay_addr: Multiaddr = reservation
                .circuit
                .iter()
                .take_while(|p| !matches!(p, Part::P2pCircuit))
                .collect();
            if let Err(e) = self.swarm.dial(relay_addr) {
                tracing::debug!(%relay, error = %e, "relay not dialled");
            }
        }
    }

    /// A hole punch: its connection is marked, and the relayed ones to that peer are closed.
    pub(super) fn on_dcutr_event(&mut self, event: dcutr::Event) {
        let dcutr::Event {
            remote_peer_id,
            result,
        } = event;
        match result {
            Ok(connection_id) => {
                tracing::info!(peer = %remote_peer_id, "hole punched: direct connection");
                self.paths
                    .insert(connection_id, (remote_peer_id, ConnectionPath::HolePunched));
                // Later requests go direct (request-response spreads them over every
                // connection to the peer) and the relay's circuit is freed. A request still
                // on the relayed connection fails as "connection lost"; callers retry that.
                let relayed: Vec<ConnectionId> = self
                    .paths
                    .iter()
                    .filter(|(_, (peer, path))| {
                        *peer == remote_peer_id && *path == ConnectionPath::Relayed
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in relayed {
                    self.swarm.close_connection(id);
                }
            }
            Err(e) => tracing::info!(peer = %remote_peer_id, error = %e, "hole punch failed"),
        }
    }
}
