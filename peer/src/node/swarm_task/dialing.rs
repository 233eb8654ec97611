//! Requests to a peer the node may have to dial. Its relayed addresses are dialled together with
//! the direct ones (the first connection up carries the request; DCUtR may upgrade a relayed one
//! later): one at a time, a dead direct address would hold the relay back for a handshake
//! timeout. But a circuit needs a connection to its relay first, and the relay client dials the
//! relay only when no dial to it is under way: two holders behind one relay, asked at once by a
//! node not yet connected to it, got one circuit and one "canceled" (the second holder then
//! waited out its dead direct addresses, 10–20 s, before it was asked again). So a request whose
//! relays are not connected dials them first (each at all its addresses) and waits, bounded,
//! until one of them connects or all their dials have failed.

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

    /// The requests ready once `relay`'s dial ended: all that waited for it if it `connected`
    /// (a circuit can go), else those that waited for nothing else.
    fn ready(&mut self, relay: &PeerId, connected: bool, now: Instant) -> Vec<Request> {
        self.take(now, |relays| {
            let waited = relays.contains(relay);
            relays.retain(|r| r != relay);
            (connected && waited) || relays.is_empty()
        })
    }

    /// The requests that waited [`RELAY_WAIT`] by `now`, and those `done` says are ready.
    fn take(
        &mut self,
        now: Instant,
        mut done: impl FnMut(&mut Vec<PeerId>) -> bool,
    ) -> Vec<Request> {
        let mut ready = Vec::new();
        let mut kept = Vec::with_capacity(self.0.len());
        for (request, mut relays, since) in self.0.drain(..) {
            if done(&mut relays) || now.saturating_duration_since(since) >= RELAY_WAIT {
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
        // Each relay at every address the request names for it (its QUIC and its TCP one): the
        // first to connect carries every circuit through that relay.
        let mut relays: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
        for addr in &request.addrs {
            let Some(relay) = relay_of(addr) else {
                continue;
            };
            let at = relay_addr(addr);
            match relays.iter_mut().find(|(id, _)| *id == relay) {
                Some((_, addrs)) if !addrs.contains(&at) => addrs.push(at),
                Some(_) => {}
                None => relays.push((relay, vec![at])),
            }
        }
        request.addrs = one_circuit_per_relay(std::mem::take(&mut request.addrs));
        if self.swarm.is_connected(&request.peer) || self.waiting.0.len() >= MAX_WAITING {
            return self.send(request);
        }
        let mut dialling: Vec<PeerId> = Vec::new();
        for (relay, addrs) in relays {
            if self.swarm.is_connected(&relay) {
                // A circuit can go now: no need to wait for the others.
                return self.send(request);
            }
            let opts = DialOpts::peer_id(relay)
                .addresses(addrs)
                .override_dial_concurrency_factor(self.request_dial_concurrency)
                .build();
            match self.swarm.dial(opts) {
                // A dial to it is under way already: its end is waited for as well.
                Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => dialling.push(relay),
                Err(e) => tracing::debug!(%relay, error = %e, "relay not dialled"),
            }
        }
        if dialling.is_empty() {
            self.send(request);
        } else {
            self.waiting.0.push((request, dialling, Instant::now()));
        }
    }

    /// A direct connection to `peer` is up (`connected`) or a dial of it failed: the requests
    /// that waited for it as a relay go out if it connected, or if it was the last they waited
    /// for.
    pub(super) fn relay_dial_ended(&mut self, peer: PeerId, connected: bool) {
        if self.waiting.is_empty() {
            return;
        }
        for request in self.waiting.ready(&peer, connected, Instant::now()) {
            self.send(request);
        }
    }

    /// The requests that waited [`RELAY_WAIT`] go out, their relays' dials ended or not.
    pub(super) fn release_waiting(&mut self) {
        for request in self.waiting.take(Instant::now(), |_| false) {
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
        if !addrs.is_empty() && !self.swarm.is_connected(&peer) {
            // Relayed addresses go all at once; direct ones as many at a time as configured (the
            // swarm's own factor is libp2p's, for hole punches). A dial under way already is left
            // to finish (request-response ignores the refused second one).
            let opts = DialOpts::peer_id(peer).addresses(addrs.clone());
            let opts = if addrs.iter().any(is_relayed) {
                let factor = std::num::NonZeroU8::new(u8::try_from(addrs.len()).unwrap_or(8))
                    .unwrap_or(std::num::NonZeroU8::MIN);
                opts.override_dial_concurrency_factor(factor)
            } else {
                opts.extend_addresses_through_behaviour()
                    .override_dial_concurrency_factor(self.request_dial_concurrency)
            }
            .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "dial not started");
            }
        }
        // Request-response waits for that connection (or dials by itself without addresses).
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
    fn a_request_goes_out_once_a_relay_it_waits_for_connects_or_all_have_failed_or_the_wait_is_over()
     {
        let (r1, r2) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let mut w = Waiting::default();
        w.0.push((request(), vec![r1, r2], now));
        w.0.push((request(), vec![r2], now));
        // r1 failed: the first still waits for r2, the second did not wait for r1.
        assert!(w.ready(&r1, false, now).is_empty());
        // r2 failed too: both have nothing left to wait for.
        assert_eq!(w.ready(&r2, false, now).len(), 2);
        w.0.push((request(), vec![r1, r2], now));
        // One relay connected is enough.
        assert_eq!(w.ready(&r1, true, now).len(), 1);
        assert!(w.is_empty());
        w.0.push((request(), vec![r1], now));
        assert!(w.take(now + RELAY_WAIT / 2, |_| false).is_empty());
        assert_eq!(w.take(now + RELAY_WAIT, |_| false).len(), 1);
    }
}
