//! Whether others can dial this node, as AutoNAT v2 finds it: public once an AutoNAT server's
//! dial-back reached a direct (not relayed) address of it, private when every direct address
//! tested was unreachable, unknown before any test. The swarm task feeds the outcomes in and acts
//! on a change (Kademlia server or client mode); the owner reads the state (metrics, logs).

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol as Part;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// A node's reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// Not tested yet (no AutoNAT server met, or no candidate address yet).
    Unknown,
    /// A direct address of this node was dialled back by an AutoNAT server.
    Public,
    /// Every direct address tested was unreachable (behind NAT or a firewall).
    Private,
}

impl Reachability {
    /// Lower-case name (`unknown`, `public`, `private`), as in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::Private => "private",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Reachability::Public,
            2 => Reachability::Private,
            _ => Reachability::Unknown,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Reachability::Unknown => 0,
            Reachability::Public => 1,
            Reachability::Private => 2,
        }
    }
}

/// Bound on the addresses remembered either way (AutoNAT tests at most 10 candidates).
const MAX_ADDRS: usize = 32;

/// The addresses AutoNAT confirmed and refuted; the reachability they add up to.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    reachable: BTreeSet<Multiaddr>,
    unreachable: BTreeSet<Multiaddr>,
}

fn is_direct(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| matches!(p, Part::P2pCircuit))
}

impl Tracker {
    /// The state the recorded outcomes add up to.
    pub(super) fn state(&self) -> Reachability {
        if !self.reachable.is_empty() {
            Reachability::Public
        } else if !self.unreachable.is_empty() {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }

    /// A direct address confirmed external (AutoNAT's dial-back reached it, or the node was told
    /// it is reachable). Relayed addresses say nothing about this node's own reachability.
    pub(super) fn confirmed(&mut self, addr: &Multiaddr) {
        if is_direct(addr) {
            self.unreachable.remove(addr);
            if self.reachable.len() < MAX_ADDRS {
                self.reachable.insert(addr.clone());
            }
        }
    }

    /// AutoNAT found `addr` unreachable.
    pub(super) fn refuted(&mut self, addr: &Multiaddr) {
        if is_direct(addr) {
            self.reachable.remove(addr);
            if self.unreachable.len() < MAX_ADDRS {
                self.unreachable.insert(addr.clone());
            }
        }
    }

    /// A confirmed external address expired (no longer reachable, or no longer ours).
    pub(super) fn expired(&mut self, addr: &Multiaddr) {
        self.reachable.remove(addr);
    }
}

/// The reachability shared between the swarm task (writer) and the handle (readers).
#[derive(Debug, Clone, Default)]
pub struct SharedReachability(Arc<AtomicU8>);

impl SharedReachability {
    /// The current state.
    pub fn get(&self) -> Reachability {
        Reachability::from_u8(self.0.load(Ordering::Relaxed))
    }

    pub(super) fn set(&self, r: Reachability) {
        self.0.store(r.to_u8(), Ordering::Relaxed);
    }
}

/// `entroshard_node_reachability{state}`: 1 for the current state, 0 for the others.
impl prometheus_client::collector::Collector for SharedReachability {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::gauge::ConstGauge;
        let mut family = encoder.encode_descriptor(
            "entroshard_node_reachability",
            "Whether others can dial this node, as AutoNAT found it (1 for the current state: \
             unknown, public or private).",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        let now = self.get();
        for r in [
            Reachability::Unknown,
            Reachability::Public,
            Reachability::Private,
        ] {
            ConstGauge::new(i64::from(r == now))
                .encode(family.encode_family(&[("state", r.name())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_node_is_public_once_a_direct_address_is_confirmed_and_private_when_all_fail() {
        let mut t = Tracker::default();
        assert_eq!(t.state(), Reachability::Unknown);
        t.refuted(&addr("/ip4/100.64.11.2/tcp/4001"));
        assert_eq!(t.state(), Reachability::Private);
        t.confirmed(&addr("/ip4/100.64.11.2/udp/4001/quic-v1"));
        assert_eq!(t.state(), Reachability::Public);
        t.expired(&addr("/ip4/100.64.11.2/udp/4001/quic-v1"));
        assert_eq!(t.state(), Reachability::Private);
    }

    #[test]
    fn a_relayed_address_confirmed_does_not_make_a_natted_node_public() {
        let mut t = Tracker::default();
        t.refuted(&addr("/ip4/100.64.11.2/tcp/4001"));
        t.confirmed(&addr(
            "/ip4/100.64.1.2/tcp/4001/p2p/12D3KooWCwJTZGxJrpsBeZfavqd7YiuiuGMEwYJnEYwEriZaj2E3/p2p-circuit",
        ));
        assert_eq!(t.state(), Reachability::Private);
    }

    #[test]
    fn the_metric_marks_the_current_state_only() {
        let shared = SharedReachability::default();
        shared.set(Reachability::Private);
        let mut registry = prometheus_client::registry::Registry::default();
        prometheus_client::registry::Registry::register_collector(
            &mut registry,
            Box::new(shared.clone()),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("entroshard_node_reachability{state=\"private\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("entroshard_node_reachability{state=\"public\"} 0"),
            "{text}"
        );
    }
}
