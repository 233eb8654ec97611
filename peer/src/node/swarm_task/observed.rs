//! This node's QUIC address as the internet sees it, learned for hole punches (decision 0060).
//!
//! DCUtR sends the remote the addresses identify observed for this node, and a QUIC hole punch
//! needs a QUIC one: the mapping its NAT gave the QUIC socket. A device given its coordinator and
//! relays as TCP addresses (as the operator's guide does) is seen over TCP only, so it offered TCP
//! addresses alone, and the requester, whose TCP dials leave from ephemeral ports, never met them:
//! punches failed in the NAT testbed though both homes map endpoint-independently. So once a
//! relay this node reserves on has identified itself over TCP and lists a QUIC address, the node
//! dials it there once too; identify on that connection observes the QUIC mapping, which becomes
//! a candidate DCUtR offers, and the connection keeps the mapping alive.

use super::SwarmTask;
use super::relaying::is_relayed;
use libp2p::multiaddr::Protocol as Part;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, identify};
use std::collections::HashSet;

/// QUIC addresses of one relay dialled at most (its listen addresses as identify reports them).
const MAX_ADDRS: usize = 4;

/// Whether this node has learned its QUIC address from outside, and which relays it dialled over
/// QUIC for it (each at most once: the set is bounded by the relay list).
#[derive(Default)]
pub(super) struct QuicObserved {
    learned: bool,
    asked: HashSet<PeerId>,
}

impl QuicObserved {
    /// `peer` identified itself over a connection that saw this node at `observed`, listing
    /// `remote_listen`. Returns the QUIC addresses to dial `peer` at, when it is a relay this node
    /// reserves on (`relay`) reached over TCP, this node listens on QUIC (`listens_quic`), and no
    /// QUIC connection has shown this node its QUIC address yet. `relay_ip` is the address the
    /// relay is configured at: QUIC addresses on that IP are preferred.
    pub(super) fn on_identified(
        &mut self,
        peer: PeerId,
        relay: Option<&Multiaddr>,
        listens_quic: bool,
        observed: &Multiaddr,
        remote_listen: &[Multiaddr],
    ) -> Option<Vec<Multiaddr>> {
        if is_quic(observed) && !is_relayed(observed) {
            self.learned = true;
        }
        let relay = relay?;
        if self.learned || !listens_quic || is_relayed(observed) || self.asked.contains(&peer) {
            return None;
        }
        let quic: Vec<&Multiaddr> = remote_listen
            .iter()
            .filter(|a| is_quic(a) && !is_relayed(a) && !is_loopback(a))
            .collect();
        let same_ip: Vec<&Multiaddr> = quic
            .iter()
            .copied()
            .filter(|a| ip_of(a).is_some() && ip_of(a) == ip_of(relay))
            .collect();
        let chosen = if same_ip.is_empty() { quic } else { same_ip };
        if chosen.is_empty() {
            return None;
        }
        self.asked.insert(peer);
        Some(chosen.into_iter().take(MAX_ADDRS).cloned().collect())
    }
}

impl SwarmTask {
    /// `peer` identified itself: dial it over QUIC if that shows this node its QUIC address.
    pub(super) fn learn_quic_address(&mut self, peer: PeerId, info: &identify::Info) {
        let relay = self.reservations.address_of(&peer);
        let listens_quic = self
            .swarm
            .listeners()
            .any(|a| is_quic(a) && !is_loopback(a));
        let Some(addrs) = self.quic_observed.on_identified(
            peer,
            relay.as_ref(),
            listens_quic,
            &info.observed_addr,
            &info.listen_addrs,
        ) else {
            return;
        };
        tracing::debug!(%peer, ?addrs, "dialling a relay over QUIC to learn this node's QUIC address");
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::Always)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "relay not dialled over QUIC");
        }
    }
}

/// Whether `addr` is a QUIC address.
pub(super) fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Part::QuicV1))
}

/// Whether `addr` is on a loopback IP.
pub(super) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Part::Ip4(ip) => ip.is_loopback(),
        Part::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|p| match p {
        Part::Ip4(ip) => Some(ip.into()),
        Part::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn relay_listen() -> Vec<Multiaddr> {
        vec![
            a("/ip4/127.0.0.1/udp/4001/quic-v1"),
            a("/ip4/100.64.1.2/tcp/4001"),
            a("/ip4/172.17.0.1/udp/4001/quic-v1"),
            a("/ip4/100.64.1.2/udp/4001/quic-v1"),
        ]
    }

    #[test]
    fn a_relay_seen_over_tcp_is_dialled_once_at_its_quic_address_on_the_same_ip() {
        let mut q = QuicObserved::default();
        let relay = PeerId::random();
        let at = a("/ip4/100.64.1.2/tcp/4001");
        let tcp_seen = a("/ip4/100.64.11.2/tcp/4001");
        assert_eq!(
            q.on_identified(relay, Some(&at), true, &tcp_seen, &relay_listen()),
            Some(vec![a("/ip4/100.64.1.2/udp/4001/quic-v1")])
        );
        // Identify again (a push, a second TCP connection): not dialled twice.
        assert_eq!(
            q.on_identified(relay, Some(&at), true, &tcp_seen, &relay_listen()),
            None
        );
    }

    #[test]
    fn nothing_is_dialled_once_a_quic_connection_showed_the_quic_address() {
        let mut q = QuicObserved::default();
        let other = PeerId::random();
        q.on_identified(
            other,
            None,
            true,
            &a("/ip4/100.64.11.2/udp/4001/quic-v1"),
            &[],
        );
        let at = a("/ip4/100.64.1.2/tcp/4001");
        assert_eq!(
            q.on_identified(
                PeerId::random(),
                Some(&at),
                true,
                &a("/ip4/100.64.11.2/tcp/4001"),
                &relay_listen()
            ),
            None
        );
    }

    #[test]
    fn peers_that_are_not_our_relays_and_nodes_without_quic_dial_nothing() {
        let mut q = QuicObserved::default();
        let seen = a("/ip4/100.64.11.2/tcp/4001");
        let at = a("/ip4/100.64.1.2/tcp/4001");
        assert_eq!(
            q.on_identified(PeerId::random(), None, true, &seen, &relay_listen()),
            None
        );
        assert_eq!(
            q.on_identified(PeerId::random(), Some(&at), false, &seen, &relay_listen()),
            None
        );
        // A relay with no QUIC address but loopback.
        let loopback_only = [a("/ip4/127.0.0.1/udp/4001/quic-v1")];
        assert_eq!(
            q.on_identified(PeerId::random(), Some(&at), true, &seen, &loopback_only),
            None
        );
    }

    #[test]
    fn a_relay_configured_by_name_is_dialled_at_its_non_loopback_quic_addresses() {
        let mut q = QuicObserved::default();
        let at = a("/dns4/relay.example/tcp/4001");
        assert_eq!(
            q.on_identified(
                PeerId::random(),
                Some(&at),
                true,
                &a("/ip4/100.64.11.2/tcp/4001"),
                &relay_listen()
            ),
            Some(vec![
                a("/ip4/172.17.0.1/udp/4001/quic-v1"),
                a("/ip4/100.64.1.2/udp/4001/quic-v1")
            ])
        );
    }
}
