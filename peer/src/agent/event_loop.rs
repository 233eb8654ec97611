//! The agent's one event loop, for `peer run` and embedded agents alike: answer requests, judge
//! gossip, send heartbeats, redial the coordinator, drop expired shares.

use super::{Shared, measure, now_ms};
use crate::node::{GossipVerdict, NodeEvent, NodeHandle, Protocol, STATUS_TOPIC};
use libp2p::{Multiaddr, PeerId};
use protocols::wire::{PowerState, Refusal, Reply, SignedEnvelope, StatusHeartbeat, WIRE_VERSION};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::MissedTickBehavior;

/// What differs between a device run by `peer run` and one embedded in a host process.
pub(super) struct Hosting {
    /// Requests answered at once; past that, refused as busy.
    pub max_handlers: usize,
    /// Remotes the share fetch rate limiter keeps track of.
    pub fetch_limiter_remotes: usize,
    /// Read the power state under this system root at each heartbeat, falling back to the
    /// configured one; `None` always announces the configured one.
    pub power_from: Option<PathBuf>,
    /// Dial the coordinator again at each heartbeat while no connection to it is open.
    pub redial_coordinator: bool,
    /// What the heartbeat timer does after ticks it missed.
    pub missed_heartbeats: MissedTickBehavior,
}

impl Hosting {
    /// An agent embedded in a host with many of them (the simulator): few requests at once, a
    /// small rate limiter, the host's power state; it redials the coordinator like a daemon.
    pub(super) fn embedded() -> Self {
        Self {
            max_handlers: 16,
            fetch_limiter_remotes: 256,
            power_from: None,
            redial_coordinator: true,
            missed_heartbeats: MissedTickBehavior::Delay,
        }
    }

    /// The daemon of `peer run`, the only agent on its device, measuring its power supply under
    /// `system_root`.
    pub(super) fn daemon(system_root: PathBuf) -> Self {
        Self {
            max_handlers: 64,
            fetch_limiter_remotes: 4096,
            power_from: Some(system_root),
            redial_coordinator: true,
            missed_heartbeats: MissedTickBehavior::Burst,
        }
    }
}

/// What heartbeats announce, and how the loop behaves.
pub(super) struct LoopSettings {
    pub coordinator_peer: PeerId,
    pub coordinator_addr: Multiaddr,
    pub power: PowerState,
    pub region: String,
    pub operator: String,
    pub heartbeat: Duration,
    /// Byzantine holder (simulator only): answer share fetches with "not found".
    pub withhold_shares: bool,
    pub hosting: Hosting,
}

/// Runs until `stop` resolves or the node's events end; then stops `tasks` (the membership
/// and contribution tasks) and the node.
pub(super) async fn run(
    shared: Arc<Shared>,
    node: NodeHandle,
    mut events: mpsc::Receiver<NodeEvent>,
    settings: LoopSettings,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let handlers = Arc::new(Semaphore::new(settings.hosting.max_handlers));
    let mut heartbeat = tokio::time::interval(settings.heartbeat);
    heartbeat.set_missed_tick_behavior(settings.hosting.missed_heartbeats);
    let mut heartbeat_seq = now_ms().saturating_mul(1000);
    let mut unannounced = Unannounced::default();
    loop {
        tokio::select! {
            () = &mut stop => break,
            event = events.recv() => match event {
                Some(NodeEvent::Request { protocol: Protocol::Fetch, responder, .. }) if settings.withhold_shares => {
                    let _ = responder.respond(protocols::wire::encode(&Reply::<()>::refused(Refusal::NotFound))).await;
                }
                Some(event) => on_event(&shared, &node, &handlers, &settings, event).await,
                None => break,
            },
            // The first certificate (or one after a lapse) is announced at once, not a whole
            // heartbeat interval later: the coordinator may be waiting to see this device.
            () = shared.membership.renewed() => heartbeat.reset_immediately(),
            _ = heartbeat.tick() => {
                heartbeat_seq += 1;
                if let Ok(peers) = node.connected_peers().await {
                    // The events keep these current; a dropped event is corrected here.
                    shared.metrics.gossip_peers.set(peers.len() as u64);
                    let to_coordinator = peers.contains(&settings.coordinator_peer);
                    shared.metrics.coordinator_connected.set(u64::from(to_coordinator));
                    if settings.hosting.redial_coordinator && !to_coordinator {
                        redial_coordinator(&node, &settings.coordinator_addr).await;
                    }
                    if to_coordinator {
                        unannounced.check(&node, settings.coordinator_peer).await;
                    }
                }
                let power = settings
                    .hosting
                    .power_from
                    .as_deref()
                    .and_then(measure::power_state)
                    .unwrap_or(settings.power);
                send_heartbeat(&shared, &node, power, &settings.region, &settings.operator, heartbeat_seq).await;
                drop_expired(&shared).await;
            }
        }
    }
    for task in tasks {
        task.abort();
    }
    node.shutdown().await;
}

async fn on_event(
    shared: &Arc<Shared>,
    node: &NodeHandle,
    handlers: &Arc<Semaphore>,
    settings: &LoopSettings,
    event: NodeEvent,
) {
    match event {
        NodeEvent::Request {
            protocol,
            peer,
            frame,
            responder,
        } => {
            let Ok(permit) = handlers.clone().try_acquire_owned() else {
                let _ = responder.respond(protocols::wire::busy_reply()).await;
                return;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let reply = super::handlers::answer(shared, protocol, peer, frame).await;
                let _ = responder.respond(reply).await;
                drop(permit);
            });
        }
        NodeEvent::Gossip {
            id,
            propagation_source,
            author,
            data,
            topic,
        } => {
            // A device relays only gossip whose envelope verifies, names the gossip author and
            // carries the author's membership certificate (docs/protocol/gossip-admission.md).
            let judged = match shared.admission.lock() {
                Ok(mut admission) => super::admission::relay_verdict(
                    &mut admission,
                    &shared.coordinator,
                    &topic,
                    author.as_ref(),
                    &data,
                    now_ms(),
                ),
                Err(_) => Err(("internal", GossipVerdict::Ignore)),
            };
            let judged = match (judged, author.as_ref().and_then(crate::identity::node_id)) {
                // No certificate, none cached: ask the coordinator about the author.
                (Err(("missing", _)), Some(node_id)) => {
                    let unknown = shared
                        .lookups
                        .lock()
                        .map(|mut l| l.on_missing(node_id, now_ms()))
                        .unwrap_or(super::admission::Unknown::Wait);
                    match unknown {
                        super::admission::Unknown::Refused => {
                            Err(("missing", GossipVerdict::Reject))
                        }
                        super::admission::Unknown::Ask => {
                            tokio::spawn(super::admission::look_up(
                                shared.clone(),
                                node.clone(),
                                settings.coordinator_peer,
                                settings.coordinator_addr.clone(),
                                node_id,
                            ));
                            Err(("unknown", GossipVerdict::Ignore))
                        }
                        super::admission::Unknown::Wait => Err(("unknown", GossipVerdict::Ignore)),
                    }
                }
                (other, _) => other,
            };
            let verdict = match judged {
                Ok(()) => GossipVerdict::Accept,
                Err((reason, verdict)) => {
                    shared.metrics.gossip_refused(reason);
                    tracing::debug!(?author, %propagation_source, reason, "gossip not forwarded");
                    verdict
                }
            };
            let _ = node.report_gossip(id, propagation_source, verdict).await;
        }
        NodeEvent::Connected(peer) => {
            shared.metrics.gossip_peers.inc();
            if crate::identity::node_id(&peer) == Some(shared.coordinator) {
                shared.metrics.coordinator_connected.set(1);
            }
            tracing::debug!(%peer, "connected");
        }
        NodeEvent::Disconnected(peer) => {
            let peers = &shared.metrics.gossip_peers;
            peers.set(peers.get().saturating_sub(1));
            if crate::identity::node_id(&peer) == Some(shared.coordinator) {
                shared.metrics.coordinator_connected.set(0);
            }
            tracing::debug!(%peer, "disconnected");
        }
        NodeEvent::Listening(addr) => tracing::info!(%addr, "listening"),
        _ => {}
    }
}

/// Dials the coordinator again when no connection to it is open (it restarted, or the network
/// dropped): gossip and the coordinator's orders reach this peer only over that connection, and
/// the bootstrap dial happens once at start. Called once per heartbeat, which bounds the rate.
async fn redial_coordinator(node: &NodeHandle, addr: &Multiaddr) {
    tracing::debug!(%addr, "not connected to the coordinator; dialling it");
    if let Err(e) = node.dial(addr.clone()).await {
        tracing::debug!(%addr, error = %e, "coordinator dial failed");
    }
}

/// Heartbeats in a row, connected to the coordinator without its gossip subscriptions, before
/// the connection is dropped and redialled.
const UNANNOUNCED_HEARTBEATS: u32 = 3;

/// Watches for a connection to the coordinator that carries no gossip. gossipsub announces a
/// node's subscriptions on the first connection to a peer only; when this device restarted
/// faster than the coordinator noticed (a killed QUIC peer sends no close), the coordinator still
/// holds the dead connection, takes the new one for a second, and never announces itself: this
/// device then publishes its heartbeats and contributions to nobody, for as long as it runs.
/// Dropping the connection makes the next one a first connection again (once the coordinator's
/// dead one has timed out).
#[derive(Default)]
struct Unannounced {
    heartbeats: u32,
}

impl Unannounced {
    async fn check(&mut self, node: &NodeHandle, coordinator: PeerId) {
        match node.gossip_subscribed(coordinator).await {
            Ok(false) => self.heartbeats += 1,
            _ => self.heartbeats = 0,
        }
        if self.heartbeats >= UNANNOUNCED_HEARTBEATS {
            tracing::info!(
                heartbeats = self.heartbeats,
                "connected to the coordinator, but its gossip subscriptions never came; reconnecting"
            );
            self.heartbeats = 0;
            let _ = node.disconnect(coordinator).await;
        }
    }
}

/// Shares past their session's expiry are deleted without waiting for the coordinator, and the
/// sub-shares of redistributions never combined are wiped once past their age bound.
async fn drop_expired(shared: &Shared) {
    // `try_lock`: a holder checking sub-shares keeps the lock for a few milliseconds of scalar
    // arithmetic; the loop does not wait for it (the next tick, or the next order, expires them).
    if let Ok(mut pending) = shared.redistributions.try_lock() {
        let dropped = pending.expire(now_ms());
        if dropped > 0 {
            tracing::info!(
                dropped,
                "sub-shares of uncombined redistributions wiped (too old)"
            );
        }
    }
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_expired(now_ms())).await {
        Ok(Ok(n)) if n > 0 => tracing::info!(deleted = n, "expired shares deleted"),
        Ok(Err(e)) => tracing::warn!(error = %e, "expired shares could not be deleted"),
        _ => {}
    }
}

async fn send_heartbeat(
    shared: &Shared,
    node: &NodeHandle,
    power: PowerState,
    region: &str,
    operator: &str,
    seq: u64,
) {
    let (shares_held, free) = {
        let store = shared.store.clone();
        tokio::task::spawn_blocking(move || {
            (store.len().unwrap_or(0), store.free_slots().unwrap_or(0))
        })
        .await
        .unwrap_or((0, 0))
    };
    shared.metrics.shares_held.set(u64::from(shares_held));
    let sources = shared
        .health
        .lock()
        .map(|h| h.sources.clone())
        .unwrap_or_default();
    shared
        .metrics
        .sources_running
        .set(super::readiness::running(&sources) as u64);
    shared.metrics.set_source_health(
        sources
            .iter()
            .map(|s| (s.source.clone(), s.samples, u64::from(s.failures)))
            .collect(),
    );
    // Without a certificate (not yet, or the coordinator is reachable only through the mesh)
    // the heartbeat goes out bare: a forwarding device asks the coordinator about us.
    let membership = shared.membership.current(now_ms());
    let listen_addrs = node
        .listen_addrs()
        .await
        .unwrap_or_default()
        .iter()
        .map(|a| a.to_string())
        .collect();
    let beat = StatusHeartbeat {
        v: WIRE_VERSION,
        seq,
        at_ms: now_ms(),
        power,
        region: region.to_string(),
        operator: operator.to_string(),
        uptime_s: shared.started.elapsed().as_secs(),
        free_store_slots: free,
        shares_held,
        listen_addrs,
        sources,
        membership,
    };
    let bytes = SignedEnvelope::seal(&shared.key, &beat).to_bytes();
    if let Err(e) = node.publish(STATUS_TOPIC, bytes).await {
        tracing::debug!(error = %e, "heartbeat not published (no gossip peers yet)");
    }
}
