//! The discovery side of the swarm task: Kademlia lookups of a peer's addresses, and AutoNAT's
//! verdicts, which set the node's reachability and with it Kademlia's mode (a reachable node
//! serves Kademlia, a NATed one only asks).

use super::SwarmTask;
use crate::node::reachability::Reachability;
use libp2p::autonat::v2::client::Event as AutonatEvent;
use libp2p::{Multiaddr, kad};

impl SwarmTask {
    /// A step of a `get_closest_peers` query: the lookup it serves is answered with the target's
    /// addresses once they are found, or with nothing after the last step.
    pub(super) fn on_closest_peers(
        &mut self,
        id: kad::QueryId,
        result: kad::GetClosestPeersResult,
        last: bool,
    ) {
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let found: Vec<Multiaddr> = self
            .lookups
            .get(&id)
            .map(|(target, _)| {
                peers
                    .into_iter()
                    .filter(|p| p.peer_id == *target)
                    .flat_map(|p| p.addrs)
                    .collect()
            })
            .unwrap_or_default();
        if (!found.is_empty() || last)
            && let Some((_, reply)) = self.lookups.remove(&id)
        {
            let _ = reply.send(found);
        }
    }

    /// An AutoNAT test ended. A reachable address is confirmed by the client itself (it comes
    /// back as `ExternalAddrConfirmed`); an unreachable one is recorded here.
    pub(super) fn on_autonat_event(&mut self, event: AutonatEvent) {
        let AutonatEvent {
            tested_addr,
            server,
            result,
            ..
        } = event;
        match result {
            Ok(()) => tracing::debug!(%tested_addr, %server, "AutoNAT: reachable"),
            Err(e) => {
                tracing::info!(%tested_addr, %server, error = %e, "AutoNAT: unreachable");
                self.tracker.refuted(&tested_addr);
                self.on_reachability();
            }
        }
    }

    /// Acts on a change of reachability: a reachable node serves Kademlia, a NATed one asks only.
    pub(super) fn on_reachability(&mut self) {
        let now = self.tracker.state();
        if now == self.reachability.get() {
            return;
        }
        self.reachability.set(now);
        let by_autonat = match now {
            Reachability::Public => kad::Mode::Server,
            Reachability::Private | Reachability::Unknown => kad::Mode::Client,
        };
        // Forced server on the coordinator; left to libp2p without AutoNAT.
        let mode = if self.forced_kad_server {
            Some(kad::Mode::Server)
        } else if self.swarm.behaviour().autonat.is_enabled() {
            Some(by_autonat)
        } else {
            None
        };
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
            && mode.is_some()
        {
            kad.set_mode(mode);
        }
        if self.reserve_unless_public {
            match now {
                Reachability::Public => {
                    for listener in self.reservations.pause() {
                        self.swarm.remove_listener(listener);
                    }
                }
                Reachability::Private | Reachability::Unknown => {
                    self.reservations.resume();
                    self.keep_reservations();
                }
            }
        }
        tracing::info!(
            reachability = now.name(),
            kademlia = mode.map_or("auto", |m| if m == kad::Mode::Server {
                "Server"
            } else {
                "Client"
            }),
            "reachability changed (AutoNAT)"
        );
    }
}
