//! Client library of entroshard: create sessions, get tickets, and fetch a session key straight
//! from the holders over QUIC — k shares in parallel, hedged, each verified before use.
//!
//! ```no_run
//! # async fn demo(key: &protocols::identity::NodeKey, coordinator: libp2p::Multiaddr, policy: protocols::wire::SessionPolicy) -> Result<(), requester::RequesterError> {
//! let client = requester::Requester::connect(key, coordinator).await?;
//! let created = client.create_session(policy).await?;
//! let session_key = client.fetch(&created.grant).await?;
//! # Ok(()) }
//! ```

mod fetch;

pub use fetch::{FetchError, HolderFailure, HolderProblem, PathCounts};

use libp2p::{Multiaddr, PeerId};
use peer::node::{self, NodeConfig, NodeHandle, Protocol};
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionKey;
use protocols::sharing::ShareChecker;
use protocols::ticket::{Ticket, TicketGrant};
use protocols::wire::{
    self, CoordinatorCall, CoordinatorRequest, Refusal, Reply, SessionCreate, SessionCreated,
    SessionPolicy, TicketRequest, WIRE_VERSION,
};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;

/// Requester failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RequesterError {
    /// The coordinator address is unusable.
    #[error("coordinator address {0} must end in /p2p/<PeerId> of an Ed25519 key")]
    BadCoordinator(String),
    /// The local node failed.
    #[error(transparent)]
    Node(#[from] peer::node::NodeError),
    /// The coordinator refused, with its typed reason.
    #[error("coordinator refused: {0}")]
    Refused(Refusal),
    /// The coordinator's answer does not decode or verify.
    #[error("coordinator answer refused: {0}")]
    BadAnswer(String),
    /// Fetching the key failed; names each holder and why.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// Why [`Requester::fetch_renewing`] asked for a new ticket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Renewal {
    /// The ticket expired at this time (unix milliseconds).
    Expired {
        /// Its expiry.
        at_ms: u64,
    },
    /// A fetch with it failed.
    Failed(RequesterError),
}

/// A key fetched, the holders that failed on the way, and the renewed grant if there was one.
pub struct Fetched {
    /// The session key.
    pub key: SessionKey,
    /// Holders that failed even though the key was rebuilt from others.
    pub failures: Vec<HolderFailure>,
    /// How the shares came: direct, hole-punched or relayed.
    pub paths: PathCounts,
    /// The grant the key was fetched with when the given one had to be renewed.
    pub renewed: Option<TicketGrant>,
}

/// A connected requester.
pub struct Requester {
    node: NodeHandle,
    coordinator: PeerId,
    coordinator_id: NodeId,
    coordinator_addr: Multiaddr,
    /// How long to wait for a holder before asking one more.
    pub hedge_after: Duration,
    /// How many times a coordinator call answered "busy" (`RateLimited`: it did not look at the
    /// request) is sent again, after 100 ms, 200 ms, 400 ms, …
    pub busy_retries: u32,
    /// Tickets whose coordinator signature checked out: fetching again with the same grant
    /// skips one signature check.
    tickets: peer::ticket_cache::TicketCache,
    /// Share checkers of recent tickets (public shares and Lagrange weights kept between fetches).
    checkers: Mutex<VecDeque<ShareChecker>>,
}

/// Share checkers kept; each holds a few points per holder asked.
const CHECKERS_KEPT: usize = 8;

/// The wait before sending a call again after the coordinator's `attempt`-th busy answer
/// (0-based): 100 ms doubling, at most 3.2 s.
fn busy_backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(5))
}

impl Requester {
    /// Starts a client node for `key` and remembers the coordinator (multiaddr with `/p2p/`).
    pub async fn connect(
        key: &NodeKey,
        coordinator_addr: Multiaddr,
    ) -> Result<Self, RequesterError> {
        let mut config = NodeConfig::network(vec![
            "/ip4/0.0.0.0/udp/0/quic-v1"
                .parse()
                .map_err(|_| RequesterError::BadCoordinator("listen".into()))?,
        ]);
        // Kademlia as a client: a holder the ticket's addresses do not reach is looked up by
        // PeerId, seeded with the coordinator (no dial until a lookup is needed).
        config.kademlia = true;
        // One handshake per holder: QUIC first, TCP only if QUIC fails (not both at once).
        config.dial_concurrency = std::num::NonZeroU8::MIN;
        Self::connect_with(key, coordinator_addr, config).await
    }

    /// Like [`Self::connect`], on a node built from `config` (the simulator passes a
    /// memory-transport config).
    pub async fn connect_with(
        key: &NodeKey,
        coordinator_addr: Multiaddr,
        config: NodeConfig,
    ) -> Result<Self, RequesterError> {
        let Some(libp2p::multiaddr::Protocol::P2p(coordinator)) = coordinator_addr.iter().last()
        else {
            return Err(RequesterError::BadCoordinator(coordinator_addr.to_string()));
        };
        let coordinator_id = peer::identity::node_id(&coordinator)
            .ok_or_else(|| RequesterError::BadCoordinator(coordinator_addr.to_string()))?;
        let (node, mut events) = node::start(key, config).await?;
        // A client answers nothing: drain and refuse whatever arrives.
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let peer::node::NodeEvent::Request { responder, .. } = event {
                    let _ = responder
                        .respond(wire::encode(&Reply::<()>::refused(Refusal::Unauthorized)))
                        .await;
                }
            }
        });
        Ok(Self {
            node,
            coordinator,
            coordinator_id,
            coordinator_addr,
            hedge_after: Duration::from_millis(500),
            busy_retries: 4,
            tickets: peer::ticket_cache::TicketCache::default(),
            checkers: Mutex::new(VecDeque::new()),
        })
    }

    /// The node handle (for tests and benches).
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    async fn coordinator_call<T: serde::de::DeserializeOwned>(
        &self,
        request: CoordinatorRequest,
    ) -> Result<T, RequesterError> {
        let call = wire::encode(&CoordinatorCall {
            v: WIRE_VERSION,
            request,
        });
        let mut attempt = 0;
        loop {
            let raw = self
                .node
                .request(
                    Protocol::Coord,
                    self.coordinator,
                    vec![self.coordinator_addr.clone()],
                    call.clone(),
                )
                .await?;
            let reply: Reply<T> = wire::decode(&raw, Protocol::Coord.limits().1)
                .map_err(|e| RequesterError::BadAnswer(e.to_string()))?;
            match reply.result {
                Err(Refusal::RateLimited) if attempt < self.busy_retries => {
                    let wait = busy_backoff(attempt);
                    tracing::info!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "coordinator busy; asking again"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result.map_err(RequesterError::Refused),
            }
        }
    }

    /// Asks the coordinator for a session; returns its id, the creator's grant and the entropy receipt.
    pub async fn create_session(
        &self,
        policy: SessionPolicy,
    ) -> Result<SessionCreated, RequesterError> {
        let created: SessionCreated = self
            .coordinator_call(CoordinatorRequest::CreateSession(SessionCreate {
                v: WIRE_VERSION,
                policy,
            }))
            .await?;
        self.check_grant(&created.grant)?;
        Ok(created)
    }

    /// A grant for the session's current epoch (after a rotation, ask again).
    pub async fn ticket(&self, session: SessionId) -> Result<TicketGrant, RequesterError> {
        let grant: TicketGrant = self
            .coordinator_call(CoordinatorRequest::GetTicket(TicketRequest {
                v: WIRE_VERSION,
                session,
            }))
            .await?;
        self.check_grant(&grant)?;
        Ok(grant)
    }

    fn check_grant(&self, grant: &TicketGrant) -> Result<(), RequesterError> {
        grant
            .ticket
            .open::<protocols::ticket::Ticket>(&self.coordinator_id)
            .map(|_| ())
            .map_err(|e| RequesterError::BadAnswer(format!("ticket: {e}")))
    }

    /// Fetches k shares from the holders, verifies each, rebuilds and returns the session key.
    pub async fn fetch(&self, grant: &TicketGrant) -> Result<SessionKey, RequesterError> {
        Ok(self.fetch_with_report(grant).await?.0)
    }

    /// Like [`Self::fetch`], and also names every holder that failed on the way (unreachable,
    /// refused, or a share that did not verify) even when the key was rebuilt from others.
    pub async fn fetch_with_report(
        &self,
        grant: &TicketGrant,
    ) -> Result<(SessionKey, Vec<HolderFailure>), RequesterError> {
        let (key, failures, _) = self.fetch_traced(grant).await?;
        Ok((key, failures))
    }

    /// Like [`Self::fetch_with_report`], and also counts the holders that answered directly,
    /// after a hole punch, or through a relay.
    pub async fn fetch_traced(
        &self,
        grant: &TicketGrant,
    ) -> Result<(SessionKey, Vec<HolderFailure>, PathCounts), RequesterError> {
        let ticket = self.open_ticket(grant)?;
        let mut checker = self.checker_for(&ticket)?;
        let seeds = [self.coordinator_addr.clone()];
        let fetched = fetch::fetch(
            &self.node,
            &ticket,
            &mut checker,
            grant,
            self.hedge_after,
            &seeds,
        )
        .await;
        if let Ok(mut kept) = self.checkers.lock() {
            if kept.len() >= CHECKERS_KEPT {
                kept.pop_back();
            }
            kept.push_front(checker);
        }
        Ok(fetched?)
    }

    /// Fetches the key of `grant`'s session, renewing the ticket when it has expired by
    /// `now_ms` or when a fetch with it fails (the session may have rotated to a new epoch).
    /// `on_renew` hears why, before the coordinator is asked; a renewed grant comes back in
    /// [`Fetched::renewed`] for the caller to keep. A refused renewal is
    /// [`RequesterError::Refused`] with the coordinator's reason.
    pub async fn fetch_renewing(
        &self,
        grant: &TicketGrant,
        now_ms: u64,
        on_renew: impl FnOnce(&Renewal),
    ) -> Result<Fetched, RequesterError> {
        let ticket = self.open_ticket(grant)?;
        let why = if ticket.expires_at_ms <= now_ms {
            Renewal::Expired {
                at_ms: ticket.expires_at_ms,
            }
        } else {
            match self.fetch_traced(grant).await {
                Ok((key, failures, paths)) => {
                    return Ok(Fetched {
                        key,
                        failures,
                        paths,
                        renewed: None,
                    });
                }
                Err(e) => Renewal::Failed(e),
            }
        };
        on_renew(&why);
        let fresh = self.ticket(ticket.session).await?;
        let (key, failures, paths) = self.fetch_traced(&fresh).await?;
        Ok(Fetched {
            key,
            failures,
            paths,
            renewed: Some(fresh),
        })
    }

    /// The kept checker for the ticket's commitments, or a new one (taken out while in use, so
    /// concurrent fetches never wait on each other).
    fn checker_for(&self, ticket: &Ticket) -> Result<ShareChecker, FetchError> {
        if let Ok(mut kept) = self.checkers.lock()
            && let Some(at) = kept
                .iter()
                .position(|c| c.commitments() == &ticket.commitments)
            && let Some(checker) = kept.remove(at)
        {
            return Ok(checker);
        }
        ShareChecker::new(&ticket.commitments).map_err(|e| FetchError::BadTicket(e.to_string()))
    }

    /// The grant's ticket, its signature checked against the coordinator's key (or found equal,
    /// byte for byte, to one that was).
    fn open_ticket(&self, grant: &TicketGrant) -> Result<Ticket, FetchError> {
        self.tickets
            .open(&grant.ticket, &self.coordinator_id)
            .map_err(|e| FetchError::BadTicket(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::busy_backoff;
    use std::time::Duration;

    #[test]
    fn busy_backoff_doubles_from_100_ms_and_stops_growing_at_3_2_s() {
        let waits: Vec<Duration> = (0..8).map(busy_backoff).collect();
        assert_eq!(waits[0], Duration::from_millis(100));
        assert_eq!(waits[3], Duration::from_millis(800));
        assert_eq!(waits[5], Duration::from_millis(3200));
        assert_eq!(waits[7], Duration::from_millis(3200));
    }
}
