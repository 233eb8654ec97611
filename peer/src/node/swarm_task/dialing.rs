//! Requests to a peer the node may have to dial. Its relayed addresses are dialled together with
//! the direct ones (the first connection up carries the request; DCUtR may upgrade a relayed one
//! later): one at a time, a dead direct address would hold the relay back for a handshake
//! timeout. But a circuit needs a connection to its relay first, and the relay client dials the
//! relay only when no dial to it is under way: two holders behind one relay, asked at once by a
//! node not yet connected to it, got one circuit and one "canceled" (the second holder then
//! waited out its dead direct addresses, 10–20 s, before it was asked again). So a request whose
//! relays are not connected dials them first and waits, bounded, until their dials end.

use super::relaying::{is_relayed, one_circuit_per_relay, relay_addr, relay_of};
use super::{ReplySender, SwarmTask};
use crate::node::codec::RequestFrame;
use crate::node::config::Protocol;
use libp2p::swarm::{DialError, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId};
use std::time::{Duration, Instant};

/// A request as the owner sent it.
pub(super) struct Request {
    pub(super) protocol: Protocol,
    pub(super) peer: PeerId,
    pub(super) addrs: Vec<Multiaddr>,
    pub(super) data: Vec<u8>,
    pub(super) reply: ReplySender,
}

/// Requests held at once while their relays are dialled; past it, a request goes at once.
const MAX_WAITING: usize = 256;

/// The longest a request waits for its relays' dials (a live relay answers in milliseconds; a
/// dead one's dial may take a TCP connect timeout).
pub(super) const RELAY_WAIT: Duration = Duration::from_secs(3);

/// Requests waiting for the dials of the relays they go through.
#[derive(Default)]
pub(super) struct Waiting(Vec<(Request, Vec<PeerId>, Instant)>);

impl Waiting {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The requests that wait for nothing more once `relay`'s dial ended (or that waited
    /// [`RELAY_WAIT`] by `now`).
    fn ready(&mut self, relay: Option<&PeerId>, now: Instant) -> Vec<Request> {
        let mut ready = Vec::new();
        let mut kept = Vec::with_capacity(self.0.len());
        for (request, mut relays, since) in self.0.drain(..) {
            if let Some(relay) = relay {
                relays.retain(|r| r != relay);
            }
            if relays.is_empty() || now.saturating_duration_since(since) >= RELAY_WAIT {
                ready.push(request);
            } else {
                kept.push((request, relays, since));
            }
        }
        self.0 = kept;
        ready
    }
}

impl SwarmTask {
    /// Sends `request`, dialling its relays first when it will need circuits through relays not
    /// connected yet.
    pub(super) fn request(&mut self, mut request: Request) {
        request.addrs = one_circuit_per_relay(std::mem::take(&mut request.addrs));
        if self.swarm.is_connected(&request.peer) || self.waiting.0.len() >= MAX_WAITING {
            return self.send(request);
        }
        let mut relays: Vec<PeerId> = Vec::new();
        for addr in &request.addrs {
            let Some(relay) = relay_of(addr) else {
                continue;
            };
            if relays.contains(&relay) || self.swarm.is_connected(&relay) {
                continue;
            }
            let opts = DialOpts::peer_id(relay)
                .addresses(vec![relay_addr(addr)])
                .build();
            match self.swarm.dial(opts) {
                // A dial to it is under way already: its end is waited for as well.
                Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => relays.push(relay),
                Err(e) => tracing::debug!(%relay, error = %e, "relay not dialled"),
            }
        }
        if relays.is_empty() {
            self.send(request);
        } else {
            self.waiting.0.push((request, relays, Instant::now()));
        }
    }

    /// A direct connection to `peer` is up or a dial of it failed: the requests that waited for
    /// it as a relay go out.
    pub(super) fn relay_dial_ended(&mut self, peer: PeerId) {
        if self.waiting.is_empty() {
            return;
        }
        for request in self.waiting.ready(Some(&peer), Instant::now()) {
            self.send(request);
        }
    }

    /// The requests that waited [`RELAY_WAIT`] go out, their relays' dials ended or not.
    pub(super) fn release_waiting(&mut self) {
        for request in self.waiting.ready(None, Instant::now()) {
            self.send(request);
        }
    }

    fn send(&mut self, request: Request) {
        let Request {
            protocol,
            peer,
            addrs,
            data,
            reply,
        } = request;
        if addrs.iter().any(is_relayed) && !self.swarm.is_connected(&peer) {
            let factor = std::num::NonZeroU8::new(u8::try_from(addrs.len()).unwrap_or(8))
                .unwrap_or(std::num::NonZeroU8::MIN);
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs.clone())
                .override_dial_concurrency_factor(factor)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "dial not started");
            }
        }
        // Otherwise request-response dials in the configured order.
        let id = self
            .swarm
            .behaviour_mut()
            .rr_mut(protocol)
            .send_request_with_addresses(&peer, RequestFrame::Bytes(data), addrs);
        self.pending.insert((protocol, id), reply);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            protocol: Protocol::Fetch,
            peer: PeerId::random(),
            addrs: Vec::new(),
            data: Vec::new(),
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    #[test]
    fn a_request_goes_out_once_every_relay_it_waits_for_has_answered_or_the_wait_is_over() {
        let (r1, r2) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let mut w = Waiting::default();
        w.0.push((request(), vec![r1, r2], now));
        w.0.push((request(), vec![r2], now + Duration::from_secs(1)));
        assert!(w.ready(Some(&r1), now).is_empty());
        assert_eq!(w.ready(Some(&r2), now).len(), 2);
        assert!(w.is_empty());
        w.0.push((request(), vec![r1], now));
        assert!(w.ready(None, now + RELAY_WAIT / 2).is_empty());
        assert_eq!(w.ready(None, now + RELAY_WAIT).len(), 1);
    }
}
