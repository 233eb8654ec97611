//! The relay side of the swarm task: reservations this node keeps on relays (a bounded number,
//! asked for once connected to the relay, moved to the next relay in the list when one ends),
//! what the relay client and server report, and hole punches (DCUtR), after which the relayed
//! connection to that peer is closed.

use super::SwarmTask;
use crate::node::handle::ConnectionPath;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol as Part;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, dcutr, relay};
use std::time::{Duration, Instant};

/// The reservations this node keeps: at most `max` at once, on the first relays of the list
/// that answer. A relay whose reservation ends or whose dial fails is passed over for a backoff
/// that starts at [`FIRST_BACKOFF`] and doubles with each failure in a row up to `backoff` (a
/// relay that started with this node, and refused the first reservation because it did not know
/// its own public address yet, is asked again within seconds; a dead one costs a dial every
/// `backoff`), and the next relay in the list takes its place. Pure state: the swarm task acts on
/// what it answers.
pub(super) struct Reservations {
    relays: Vec<Reservation>,
    max: usize,
    /// The longest a failed relay is passed over.
    backoff: Duration,
    /// None asked for while set (the node was found publicly reachable).
    paused: bool,
}

/// A reservation on one relay.
struct Reservation {
    relay: PeerId,
    /// `<relay>/p2p/<relay id>/p2p-circuit`.
    circuit: Multiaddr,
    state: State,
    /// Failures since its last accepted reservation.
    failures: u32,
}

/// The first backoff of a relay that failed; each failure in a row doubles it.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not asked for.
    Idle,
    /// The relay is being dialled; the reservation is asked for once connected.
    Dialling(Instant),
    /// Asked for or held, through this listener.
    Listening(ListenerId),
    /// Failed; not asked for again before this instant.
    Down(Instant),
}

/// What to do about one relay now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Listen on the circuit address (a connection to the relay is up).
    Listen(Multiaddr),
    /// Dial the relay.
    Dial(Multiaddr),
}

impl Reservations {
    /// Reservations on `circuits` (`<relay>/p2p-circuit` addresses, in order of preference).
    pub(super) fn new(circuits: Vec<Multiaddr>, max: usize, backoff: Duration) -> Self {
        let relays = circuits
            .into_iter()
            .filter_map(|circuit| {
                let relay = circuit.iter().find_map(|p| match p {
                    Part::P2p(id) => Some(id),
                    _ => None,
                })?;
                Some(Reservation {
                    relay,
                    circuit,
                    state: State::Idle,
                    failures: 0,
                })
            })
            .collect();
        Self {
            relays,
            max,
            backoff,
            paused: false,
        }
    }

    /// Stops asking for reservations; the listeners of those held or asked for, to close.
    pub(super) fn pause(&mut self) -> Vec<ListenerId> {
        self.paused = true;
        self.relays
            .iter_mut()
            .filter_map(|r| {
                let State::Listening(id) = r.state else {
                    return None;
                };
                r.state = State::Idle;
                Some(id)
            })
            .collect()
    }

    /// Asks for reservations again after [`Self::pause`].
    pub(super) fn resume(&mut self) {
        self.paused = false;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.relays.is_empty()
    }

    fn active(&self, now: Instant) -> usize {
        self.relays
            .iter()
            .filter(|r| match r.state {
                State::Listening(_) => true,
                State::Dialling(since) => now.saturating_duration_since(since) < self.backoff,
                _ => false,
            })
            .count()
    }

    /// The relays to act on now, given which ones we are connected to: fills the free places
    /// (up to `max`) with the first relays in the list that are neither held nor down.
    pub(super) fn steps(&mut self, now: Instant, connected: impl Fn(&PeerId) -> bool) -> Vec<Step> {
        if self.paused {
            return Vec::new();
        }
        let mut free = self.max.saturating_sub(self.active(now));
        let mut steps = Vec::new();
        for r in &mut self.relays {
            if free == 0 {
                break;
            }
            let available = match r.state {
                State::Idle => true,
                State::Down(until) => now >= until,
                // A dial that never reported back is given up after the backoff.
                State::Dialling(since) => now.saturating_duration_since(since) >= self.backoff,
                State::Listening(_) => false,
            };
            if !available {
                continue;
            }
            free -= 1;
            if connected(&r.relay) {
                steps.push(Step::Listen(r.circuit.clone()));
            } else {
                r.state = State::Dialling(now);
                steps.push(Step::Dial(relay_addr(&r.circuit)));
            }
        }
        steps
    }

    /// A direct connection to `peer` is up: the circuit address to listen on if `peer` is a relay
    /// we dialled, or one we may use now (a place is free and it is not down).
    pub(super) fn on_connected(&mut self, peer: &PeerId, now: Instant) -> Option<Multiaddr> {
        if self.paused {
            return None;
        }
        let free = self.active(now) < self.max;
        let r = self.relays.iter_mut().find(|r| r.relay == *peer)?;
        match r.state {
            State::Dialling(_) => Some(r.circuit.clone()),
            State::Idle if free => Some(r.circuit.clone()),
            State::Down(until) if free && now >= until => Some(r.circuit.clone()),
            _ => None,
        }
    }

    /// The reservation on the relay of `circuit` is being asked for through `listener`.
    pub(super) fn listening(&mut self, circuit: &Multiaddr, listener: ListenerId) {
        if let Some(r) = self.relays.iter_mut().find(|r| r.circuit == *circuit) {
            r.state = State::Listening(listener);
        }
    }

    /// Asking on the relay of `circuit` failed at once: pass it over for the backoff.
    pub(super) fn refused(&mut self, circuit: &Multiaddr, now: Instant) {
        let cap = self.backoff;
        if let Some(r) = self.relays.iter_mut().find(|r| r.circuit == *circuit) {
            r.fail(now, cap);
        }
    }

    /// `relay` accepted a reservation: its next failure starts the backoff afresh.
    pub(super) fn accepted(&mut self, relay: &PeerId) {
        if let Some(r) = self.relays.iter_mut().find(|r| r.relay == *relay) {
            r.failures = 0;
        }
    }

    /// `listener` closed: if it was a reservation, its relay (now passed over for the backoff).
    pub(super) fn on_listener_closed(
        &mut self,
        listener: ListenerId,
        now: Instant,
    ) -> Option<PeerId> {
        let cap = self.backoff;
        let r = self
            .relays
            .iter_mut()
            .find(|r| r.state == State::Listening(listener))?;
        r.fail(now, cap);
        Some(r.relay)
    }

    /// A dial to `peer` failed: if it was a relay we were dialling, it is passed over.
    pub(super) fn on_dial_failed(&mut self, peer: &PeerId, now: Instant) -> bool {
        let cap = self.backoff;
        match self.relays.iter_mut().find(|r| r.relay == *peer) {
            Some(r) if matches!(r.state, State::Dialling(_)) => {
                r.fail(now, cap);
                true
            }
            _ => false,
        }
    }
}

impl Reservation {
    /// Passes the relay over for [`FIRST_BACKOFF`] doubled per failure in a row, at most `cap`.
    fn fail(&mut self, now: Instant, cap: Duration) {
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(16))
            .min(cap);
        self.failures = self.failures.saturating_add(1);
        self.state = State::Down(now + wait);
    }
}

/// The relay's own address: `circuit` up to `/p2p-circuit`.
pub(super) fn relay_addr(circuit: &Multiaddr) -> Multiaddr {
    circuit
        .iter()
        .take_while(|p| !matches!(p, Part::P2pCircuit))
        .collect()
}

/// How often reservations that are missing are asked for again (and their relays dialled, each
/// once its backoff is over): as often as the first backoff.
pub(super) const RESERVATION_RETRY: Duration = FIRST_BACKOFF;

/// Whether `addr` goes through a relay.
pub(super) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Part::P2pCircuit))
}

/// `addrs` with only the first relayed address through each relay (direct ones all kept, the
/// order unchanged).
pub(super) fn one_circuit_per_relay(addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    let mut relays: Vec<PeerId> = Vec::new();
    addrs
        .into_iter()
        .filter(|a| match relay_of(a) {
            Some(id) if relays.contains(&id) => false,
            Some(id) => {
                relays.push(id);
                true
            }
            None => true,
        })
        .collect()
}

/// The relay a relayed address goes through (the `/p2p/` before `/p2p-circuit`).
pub(super) fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    if !is_relayed(addr) {
        return None;
    }
    addr.iter()
        .take_while(|p| !matches!(p, Part::P2pCircuit))
        .find_map(|p| match p {
            Part::P2p(id) => Some(id),
            _ => None,
        })
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
    /// Logs what the relay client reports; an accepted reservation resets its relay's backoff.
    pub(super) fn on_relay_client_event(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                self.reservations.accepted(&relay_peer_id);
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
                }
            }
            other => tracing::debug!(?other, "relay client"),
        }
    }

    /// Asks for the reservations not held, up to the configured number: on a relay we are
    /// connected to, listen on its circuit address (the relay client reuses the connection);
    /// otherwise dial the relay, and the reservation follows when the connection is up.
    /// Listening while a dial to the relay is under way would lose the reservation (the relay
    /// client's own dial is refused).
    pub(super) fn keep_reservations(&mut self) {
        let swarm = &self.swarm;
        let steps = self
            .reservations
            .steps(Instant::now(), |peer| swarm.is_connected(peer));
        for step in steps {
            match step {
                Step::Listen(circuit) => self.listen_on_relay(circuit),
                Step::Dial(addr) => {
                    if let Err(e) = self.swarm.dial(addr.clone()) {
                        tracing::debug!(%addr, error = %e, "relay not dialled");
                    }
                }
            }
        }
    }

    /// A direct connection to `peer` is up: reserve on it if it is a relay we want.
    pub(super) fn reserve_on(&mut self, peer: PeerId) {
        if let Some(circuit) = self.reservations.on_connected(&peer, Instant::now()) {
            self.listen_on_relay(circuit);
        }
    }

    fn listen_on_relay(&mut self, circuit: Multiaddr) {
        match self.swarm.listen_on(circuit.clone()) {
            Ok(id) => self.reservations.listening(&circuit, id),
            Err(e) => {
                tracing::warn!(%circuit, error = %crate::node::error_chain(&e), "relay reservation not asked for");
                self.reservations.refused(&circuit, Instant::now());
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

#[cfg(test)]
#[path = "relaying_tests.rs"]
mod tests;
