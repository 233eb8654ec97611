//! How a new connection reached its remote — relayed, hole-punched or direct — decided from its
//! endpoint and whether this node reached the same peer through a relay before; and the bounded
//! memory of those peers. DCUtR reports a punch only on the side whose dial opened the punched
//! connection, so the other side classifies it here.

use super::ConnectionPath;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol as Part;
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashSet, VecDeque};

/// Peers remembered as once reached through a relay (the oldest forgotten first).
pub(super) const REMEMBERED_RELAYED_PEERS: usize = 4096;

/// The peers this node had a relayed connection with, at most `cap`, oldest forgotten first:
/// their relayed connections close once a hole punch succeeds, but a direct connection to them
/// opened after it went through the hole all the same.
#[derive(Debug)]
pub(super) struct RelayedPeers {
    known: HashSet<PeerId>,
    order: VecDeque<PeerId>,
    cap: usize,
}

impl RelayedPeers {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            known: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// A relayed connection with `peer` is up.
    pub(super) fn add(&mut self, peer: PeerId) {
        if self.cap == 0 || !self.known.insert(peer) {
            return;
        }
        self.order.push_back(peer);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
    }

    /// Whether this node had a relayed connection with `peer` (among the remembered).
    pub(super) fn contains(&self, peer: &PeerId) -> bool {
        self.known.contains(peer)
    }
}

/// The path of a connection that came up at `endpoint`: relayed through a circuit; else
/// hole-punched when its remote was reached through a relay before (`relayed_before`: open now
/// or earlier in this process) and the connection's remote address is not a private one; else
/// direct. Either side of the punch counts it: the remote's dial through the hole arrives here
/// as an inbound connection, and this node's own dial through it (DCUtR's, or a later one to the
/// address the hole opened) as an outbound one; DCUtR reports neither here when the punch's
/// winning dial was the remote's. A holder on this node's LAN reached by relay first (dials race)
/// is still direct: its address is private. A public peer reached by relay first would be
/// counted as punched; tickets carry no relayed address for a public holder.
pub(super) fn classify(endpoint: &ConnectedPoint, relayed_before: bool) -> ConnectionPath {
    if endpoint.is_relayed() {
        return ConnectionPath::Relayed;
    }
    let remote = match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
    };
    if relayed_before && !private(remote) {
        ConnectionPath::HolePunched
    } else {
        ConnectionPath::Direct
    }
}

/// Whether `addr` is an address no NAT stands in front of: loopback, RFC 1918, link-local, IPv6
/// unique-local.
fn private(addr: &Multiaddr) -> bool {
    addr.iter().any(|part| match part {
        Part::Ip4(ip) => ip.is_private() || ip.is_loopback() || ip.is_link_local(),
        Part::Ip6(ip) => {
            let first = ip.segments()[0];
            ip.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        _ => false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use libp2p::core::Endpoint;
    use libp2p::core::transport::PortUse;

    fn dialled(addr: &str) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: addr.parse().unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        }
    }

    fn accepted(from: &str) -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr: "/ip4/10.1.0.11/udp/4001/quic-v1".parse().unwrap(),
            send_back_addr: from.parse().unwrap(),
        }
    }

    const HOME_PUBLIC: &str = "/ip4/100.64.11.2/udp/40123/quic-v1";

    #[test]
    fn a_direct_connection_this_node_dialled_to_a_peer_reached_by_relay_before_is_hole_punched() {
        assert_eq!(
            classify(&dialled(HOME_PUBLIC), true),
            ConnectionPath::HolePunched
        );
        // The same dial to a peer never reached through a relay is plain direct.
        assert_eq!(
            classify(&dialled(HOME_PUBLIC), false),
            ConnectionPath::Direct
        );
    }

    #[test]
    fn an_inbound_direct_connection_from_a_peer_reached_by_relay_is_hole_punched() {
        assert_eq!(
            classify(&accepted(HOME_PUBLIC), true),
            ConnectionPath::HolePunched
        );
        assert_eq!(
            classify(&accepted(HOME_PUBLIC), false),
            ConnectionPath::Direct
        );
    }

    #[test]
    fn a_lan_or_loopback_peer_reached_by_relay_first_stays_direct() {
        for addr in [
            "/ip4/10.3.0.11/udp/3991/quic-v1",
            "/ip4/192.168.1.7/tcp/4001",
            "/ip4/172.16.0.2/tcp/4001",
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/169.254.3.4/tcp/4001",
            "/ip6/fd12::1/tcp/4001",
            "/ip6/fe80::1/tcp/4001",
            "/ip6/::1/tcp/4001",
        ] {
            assert_eq!(
                classify(&dialled(addr), true),
                ConnectionPath::Direct,
                "{addr}"
            );
            assert_eq!(
                classify(&accepted(addr), true),
                ConnectionPath::Direct,
                "{addr}"
            );
        }
    }

    #[test]
    fn a_circuit_is_relayed_whatever_came_before() {
        let circuit = "/ip4/100.64.2.2/tcp/4001/p2p/12D3KooWSfGmPyP1TFtcC9T6jrgvCdFLAqvKEoSJX3xbvJhhzah2/p2p-circuit";
        assert_eq!(classify(&dialled(circuit), true), ConnectionPath::Relayed);
        assert_eq!(classify(&dialled(circuit), false), ConnectionPath::Relayed);
    }

    #[test]
    fn relayed_peers_are_remembered_up_to_the_cap_and_the_oldest_forgotten_first() {
        let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        let mut relayed = RelayedPeers::new(3);
        for p in &peers[..3] {
            relayed.add(*p);
        }
        relayed.add(peers[0]); // already known: no new place taken
        assert!(peers[..3].iter().all(|p| relayed.contains(p)));
        relayed.add(peers[3]);
        assert!(!relayed.contains(&peers[0]));
        assert!(peers[1..].iter().all(|p| relayed.contains(p)));
        assert_eq!(relayed.order.len(), 3);
        let mut none = RelayedPeers::new(0);
        none.add(peers[0]);
        assert!(!none.contains(&peers[0]));
    }
}
