//! This device's membership certificate (docs/protocol/gossip-admission.md): asked of the
//! pinned coordinator at start and at half its lifetime, carried in every contribution and
//! heartbeat; without a usable one the device publishes bare, and forwarders ask about it.

use super::{Shared, now_ms};
use crate::node::NodeHandle;
use libp2p::{Multiaddr, PeerId};
use protocols::membership::{self, MembershipCert};
use protocols::wire::{CoordinatorRequest, Reply, SignedEnvelope};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// First wait after a failed or refused request; doubled after each failure in a row.
const RETRY_FIRST: Duration = Duration::from_secs(2);
/// Longest wait between requests while none succeeds.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The certificate held, and a signal for whoever waits for a new one.
#[derive(Default)]
pub(crate) struct Membership {
    held: Mutex<Option<Held>>,
    renewed: Notify,
}

#[derive(Clone)]
struct Held {
    cert: SignedEnvelope,
    issued_at_ms: u64,
    expires_at_ms: u64,
}

impl Membership {
    /// The certificate to carry at `now_ms`, if one is usable (it has `SKEW` left).
    pub fn current(&self, now_ms: u64) -> Option<SignedEnvelope> {
        let held = self.held.lock().ok()?;
        held.as_ref()
            .filter(|h| membership::usable(h.expires_at_ms, now_ms))
            .map(|h| h.cert.clone())
    }

    /// Resolves when a new certificate has been stored.
    pub async fn renewed(&self) {
        self.renewed.notified().await;
    }

    fn due(&self, now_ms: u64) -> bool {
        match self.held.lock() {
            Ok(held) => held.as_ref().is_none_or(|h| {
                membership::due_for_renewal(h.issued_at_ms, h.expires_at_ms, now_ms)
            }),
            Err(_) => true,
        }
    }

    fn store(&self, held: Held) {
        if let Ok(mut slot) = self.held.lock() {
            *slot = Some(held);
        }
        // One waiter, the event loop; a permit is kept if it is busy at this moment.
        self.renewed.notify_one();
    }
}

/// Keeps a certificate: asks the coordinator whenever none is held or the one held is past half
/// its lifetime, retrying failures after 2 s, doubled up to 60 s. Runs until aborted.
pub(super) async fn keep(
    shared: std::sync::Arc<Shared>,
    node: NodeHandle,
    coordinator: PeerId,
    addr: Multiaddr,
) {
    let mut retry = RETRY_FIRST;
    loop {
        let now = now_ms();
        shared
            .metrics
            .membership_held
            .set(u64::from(shared.membership.current(now).is_some()));
        if !shared.membership.due(now) {
            tokio::time::sleep(Duration::from_secs(10)).await;
            continue;
        }
        match ask(&shared, &node, coordinator, &addr).await {
            Ok(held) => {
                tracing::debug!(
                    expires_at_ms = held.expires_at_ms,
                    "membership certificate renewed"
                );
                shared.membership.store(held);
                shared.metrics.membership_held.set(1);
                retry = RETRY_FIRST;
            }
            Err(e) => {
                tracing::info!(error = %e, retry_s = retry.as_secs(), "no membership certificate from the coordinator yet");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// One `GetMembership` to the pinned coordinator; the answer must be a certificate for this
/// device signed by the pinned coordinator identity.
async fn ask(
    shared: &Shared,
    node: &NodeHandle,
    coordinator: PeerId,
    addr: &Multiaddr,
) -> Result<Held, String> {
    let reply: Reply<SignedEnvelope> =
        super::coordinator_call::ask(node, coordinator, addr, CoordinatorRequest::GetMembership)
            .await
            .map_err(|e| e.to_string())?;
    let cert = reply
        .result
        .map_err(|refusal| format!("refused: {refusal}"))?;
    let me = shared.key.node_id();
    // The same check a forwarder makes, so that what this device carries is forwarded.
    membership::check(Some(&cert), &shared.coordinator, &me, now_ms())
        .map_err(|e| format!("the coordinator's answer is no certificate for us: {e}"))?;
    let opened: MembershipCert = cert
        .open(&shared.coordinator)
        .map_err(|e| format!("certificate does not open: {e}"))?;
    Ok(Held {
        cert,
        issued_at_ms: opened.issued_at_ms,
        expires_at_ms: opened.expires_at_ms,
    })
}
