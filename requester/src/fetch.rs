//! Parallel, hedged share fetching: ask k holders, add one more whenever one is slow or fails,
//! ask the unreachable ones once more when the others are exhausted, verify every share against
//! the commitments as it arrives, combine, check G·s = C0, derive the user key; stop early when
//! the holders' refusals prove the ticket superseded.

mod stale;

use futures::stream::{FuturesUnordered, StreamExt};
use libp2p::Multiaddr;
use peer::node::{ConnectionPath, NodeHandle, Protocol};
use protocols::holder_box;
use protocols::ids::{Epoch, NodeId};
use protocols::keys::SessionKey;
use protocols::sealing::{self, ShareSlot};
use protocols::share_box::BoxSecret;
use protocols::sharing::{ShareChecker, VerifiedShare};
use protocols::ticket::{Ticket, TicketGrant, TicketHolder};
use protocols::wire::{
    self, BoxedFetch, BoxedFetchReply, FetchedShare, Refusal, ShareFetch, ShareFetchReply,
    WIRE_VERSION, WIRE_VERSION_2,
};
use std::time::Duration;
use thiserror::Error;

/// What went wrong with one holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderProblem {
    /// Could not reach it, or it did not answer in time.
    Unreachable(String),
    /// It refused, with its typed reason.
    Refused(Refusal),
    /// Its share did not open or did not match the commitments.
    BadShare(String),
}

/// One holder's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderFailure {
    /// The holder.
    pub node: NodeId,
    /// Its share index.
    pub index: u8,
    /// Why.
    pub problem: HolderProblem,
}

impl std::fmt::Display for HolderFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            HolderProblem::Unreachable(e) => write!(
                f,
                "holder {} (share {}): unreachable: {e}",
                self.node.short(),
                self.index
            ),
            HolderProblem::Refused(r) => write!(
                f,
                "holder {} (share {}): refused: {r}",
                self.node.short(),
                self.index
            ),
            HolderProblem::BadShare(e) => write!(
                f,
                "holder {} (share {}): bad share: {e}",
                self.node.short(),
                self.index
            ),
        }
    }
}

/// Fetch failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The grant's ticket does not verify.
    #[error("ticket does not verify: {0}")]
    BadTicket(String),
    /// Fewer than k verified shares could be gathered.
    #[error("only {got} of {need} shares verified; {}", failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
    NotEnoughShares {
        /// Verified shares.
        got: usize,
        /// Threshold.
        need: usize,
        /// Every holder that failed, and why.
        failures: Vec<HolderFailure>,
    },
    /// Holders named in the ticket no longer hold its epoch (they have a newer one, or nothing
    /// of the session), and the others did not make up k soon after: ask the coordinator.
    #[error("ticket is for epoch {ticket_epoch}, out of date: {}; only {got} of {need} shares verified; {}", newer_epoch.map_or_else(|| "named holders no longer hold the session".to_string(), |e| format!("holders have epoch {e}")), failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
    StaleTicket {
        /// The ticket's epoch.
        ticket_epoch: Epoch,
        /// The newest epoch a holder said it has (`None`: only holders that hold nothing).
        newer_epoch: Option<Epoch>,
        /// Verified shares.
        got: usize,
        /// Threshold.
        need: usize,
        /// Every holder that failed, and why (holders still asked when the fetch stopped are
        /// not named).
        failures: Vec<HolderFailure>,
    },
    /// The shares verified but did not combine to commitment 0 (never expected).
    #[error("shares do not combine: {0}")]
    Combine(String),
}

/// How many holders answered over each kind of connection in one fetch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCounts {
    /// Over a direct connection.
    pub direct: u32,
    /// Over a direct connection DCUtR opened by hole punching.
    pub hole_punched: u32,
    /// Through a circuit relay.
    pub relayed: u32,
    /// Over a connection that closed before its path was read.
    pub unknown: u32,
}

impl PathCounts {
    fn count(&mut self, path: Option<ConnectionPath>) {
        let slot = match path {
            Some(ConnectionPath::Direct) => &mut self.direct,
            Some(ConnectionPath::HolePunched) => &mut self.hole_punched,
            Some(ConnectionPath::Relayed) => &mut self.relayed,
            None => &mut self.unknown,
        };
        *slot = slot.saturating_add(1);
    }
}

impl std::fmt::Display for PathCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "direct {}, hole-punched {}, relayed {}",
            self.direct, self.hole_punched, self.relayed
        )?;
        if self.unknown > 0 {
            write!(f, ", unknown {}", self.unknown)?;
        }
        Ok(())
    }
}

/// Prefers direct QUIC addresses (the fetch path), then direct TCP, then relayed ones.
fn dial_addrs(holder: &TicketHolder) -> Vec<Multiaddr> {
    let mut addrs: Vec<Multiaddr> = holder.addrs.iter().filter_map(|a| a.parse().ok()).collect();
    addrs.sort_by_key(|a: &Multiaddr| {
        let relayed = a
            .iter()
            .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit));
        (relayed, !a.to_string().contains("quic"))
    });
    addrs
}

/// Asks `holder` with `request` (a version-2 fetch); a holder on a build from before boxed
/// shares refuses that version and is asked once more with `legacy` (version 1), which it
/// answers with its sealed share.
async fn ask(
    node: &NodeHandle,
    request: Vec<u8>,
    legacy: Vec<u8>,
    holder: &TicketHolder,
    seeds: &[Multiaddr],
) -> Result<(FetchedShare, Option<ConnectionPath>), HolderProblem> {
    match ask_once(node, request, holder, seeds).await {
        Err(HolderProblem::Refused(Refusal::Malformed(why)))
            if why.contains("unknown wire version") =>
        {
            let peer = peer::identity::peer_id(&holder.node)
                .ok_or_else(|| HolderProblem::Unreachable("bad holder id".into()))?;
            let answer = node
                .request_traced(Protocol::Fetch, peer, dial_addrs(holder), legacy)
                .await
                .map_err(|e| HolderProblem::Unreachable(e.to_string()))?;
            let reply: ShareFetchReply = wire::decode(&answer.bytes, Protocol::Fetch.limits().1)
                .map_err(|e| HolderProblem::BadShare(format!("undecodable reply: {e}")))?;
            reply
                .result
                .map(|sealed| (FetchedShare::Sealed(sealed), answer.path))
                .map_err(HolderProblem::Refused)
        }
        other => other,
    }
}

async fn ask_once(
    node: &NodeHandle,
    ticket_bytes: Vec<u8>,
    holder: &TicketHolder,
    seeds: &[Multiaddr],
) -> Result<(FetchedShare, Option<ConnectionPath>), HolderProblem> {
    let peer = peer::identity::peer_id(&holder.node)
        .ok_or_else(|| HolderProblem::Unreachable("bad holder id".into()))?;
    let mut raw = node
        .request_traced(
            Protocol::Fetch,
            peer,
            dial_addrs(holder),
            ticket_bytes.clone(),
        )
        .await;
    match &raw {
        // A connection that died under the request (the holder restarted since we last asked
        // it) is gone now: ask once more, on a new connection. A fetch changes nothing at the
        // holder.
        Err(peer::node::NodeError::Request {
            connection_lost: true,
            ..
        }) => {
            raw = node
                .request_traced(Protocol::Fetch, peer, dial_addrs(holder), ticket_bytes)
                .await;
        }
        // None of the ticket's addresses answered: the holder may have moved (a new home
        // address, another relay). Look its PeerId up in Kademlia and ask there.
        Err(peer::node::NodeError::Request { .. }) => {
            let found = node
                .find_peer(peer, seeds.to_vec())
                .await
                .unwrap_or_default();
            if !found.is_empty() {
                tracing::info!(holder = %holder.node.short(), addrs = found.len(), "holder found through Kademlia");
                raw = node
                    .request_traced(Protocol::Fetch, peer, found, ticket_bytes)
                    .await;
            }
        }
        _ => {}
    }
    let answer = raw.map_err(|e| HolderProblem::Unreachable(e.to_string()))?;
    let reply: BoxedFetchReply = wire::decode(&answer.bytes, Protocol::Fetch.limits().1)
        .map_err(|e| HolderProblem::BadShare(format!("undecodable reply: {e}")))?;
    reply
        .result
        .map(|share| (share, answer.path))
        .map_err(HolderProblem::Refused)
}

fn failed(failures: &mut Vec<HolderFailure>, holder: &TicketHolder, problem: HolderProblem) {
    tracing::info!(holder = %holder.node.short(), ?problem, "holder failed; asking another");
    failures.push(HolderFailure {
        node: holder.node,
        index: holder.index,
        problem,
    });
}

/// Fetches with `ticket`, the grant's ticket already opened with the coordinator's key.
pub(crate) async fn fetch(
    node: &NodeHandle,
    ticket: &Ticket,
    checker: &mut ShareChecker,
    grant: &TicketGrant,
    hedge_after: Duration,
    seeds: &[Multiaddr],
) -> Result<(SessionKey, Vec<HolderFailure>, PathCounts), FetchError> {
    let need = ticket.threshold();
    // Fresh for this fetch: holders box their shares to it; wiped when the fetch returns.
    let reply_secret = BoxSecret::generate(&mut rand_core::UnwrapErr(rand::rngs::SysRng));
    let request = wire::encode(&BoxedFetch {
        v: WIRE_VERSION_2,
        ticket: grant.ticket.clone(),
        reply_key: reply_secret.public(),
    });
    let legacy = wire::encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket: grant.ticket.clone(),
    });
    let mut waiting = ticket.holders.iter();
    let mut in_flight = FuturesUnordered::new();
    let launch = |holder: &TicketHolder| {
        let holder = holder.clone();
        let (request, legacy) = (request.clone(), legacy.clone());
        async move {
            let result = ask(node, request, legacy, &holder, seeds).await;
            (holder, result)
        }
    };
    for holder in waiting.by_ref().take(need) {
        in_flight.push(launch(holder));
    }
    let mut verified: Vec<VerifiedShare> = Vec::with_capacity(need);
    let mut failures: Vec<HolderFailure> = Vec::new();
    let mut paths = PathCounts::default();
    // Holders that were unreachable (no answer in time, a dial that failed) are asked once
    // more when every other holder has answered and shares are still missing: on a loaded
    // machine or a lossy link a live holder can miss one request's timeout.
    let mut unreachable: Vec<TicketHolder> = Vec::new();
    let mut asked_again = false;
    let mut superseded: Option<stale::Superseded> = None;
    while verified.len() < need {
        let tally = stale::Tally {
            verified: verified.len(),
            need,
            in_flight: in_flight.len(),
            not_asked: waiting.len(),
        };
        let now = tokio::time::Instant::now().into_std();
        if stale::give_up(superseded.as_ref(), tally, now, stale::GRACE) {
            tracing::info!(
                ticket_epoch = ticket.epoch,
                got = verified.len(),
                need,
                still_asked = in_flight.len(),
                "ticket out of date; fetch stopped"
            );
            break;
        }
        let wait = superseded.map_or(hedge_after, |s| hedge_after.min(s.left(now, stale::GRACE)));
        let next = tokio::time::timeout(wait, in_flight.next()).await;
        let (holder, result) = match next {
            Ok(Some(done)) => done,
            Ok(None) if superseded.is_none() && !asked_again && !unreachable.is_empty() => {
                asked_again = true;
                for h in unreachable.drain(..) {
                    tracing::debug!(holder = %h.node.short(), "asking an unreachable holder once more");
                    in_flight.push(launch(&h));
                }
                continue;
            }
            Ok(None) => break,
            Err(_) => {
                // Slow holders: hedge with one more, keep waiting for the slow ones too.
                if let Some(h) = waiting.next() {
                    tracing::debug!(holder = %h.node.short(), "hedging with another holder");
                    in_flight.push(launch(h));
                }
                continue;
            }
        };
        let outcome = result.and_then(|(fetched, path)| {
            paths.count(path);
            let slot = ShareSlot {
                session: ticket.session,
                epoch: ticket.epoch,
                holder: holder.node,
                index: holder.index,
            };
            let share = match fetched {
                FetchedShare::Reboxed { index, boxed } => {
                    if index != holder.index {
                        return Err(HolderProblem::BadShare(format!(
                            "answered with share {index}, holds {}",
                            holder.index
                        )));
                    }
                    holder_box::open_fetched_unverified(&reply_secret, &slot, &ticket.nonce, &boxed)
                        .map_err(|e| HolderProblem::BadShare(e.to_string()))?
                }
                // A session dealt before holder share keys, until it is re-dealt boxed.
                FetchedShare::Sealed(sealed) => {
                    let key = grant
                        .opening_keys
                        .iter()
                        .find(|e| e.index == holder.index)
                        .ok_or_else(|| {
                            HolderProblem::BadShare("no opening key for this index".into())
                        })?;
                    sealing::open(&key.key, &slot, &sealed)
                        .map_err(|e| HolderProblem::BadShare(e.to_string()))?
                }
            };
            // Checked on arrival, while the other holders' answers are still on their way.
            checker
                .verify(share)
                .map_err(|e| HolderProblem::BadShare(e.to_string()))
        });
        match outcome {
            Ok(share) => {
                // A holder asked again that answered is no failure.
                failures.retain(|f| f.node != holder.node);
                verified.push(share);
            }
            Err(problem) => {
                superseded = stale::Superseded::note(
                    superseded,
                    ticket.epoch,
                    &problem,
                    tokio::time::Instant::now().into_std(),
                );
                if matches!(problem, HolderProblem::Unreachable(_)) && !asked_again {
                    unreachable.push(holder.clone());
                }
                failures.retain(|f| f.node != holder.node);
                failed(&mut failures, &holder, problem);
                // Replace the failed holder by the next one not yet asked.
                if let Some(h) = waiting.next() {
                    in_flight.push(launch(h));
                }
            }
        }
    }
    if let Some(known) = superseded
        && verified.len() < need
    {
        return Err(FetchError::StaleTicket {
            ticket_epoch: ticket.epoch,
            newer_epoch: known.newer,
            got: verified.len(),
            need,
            failures,
        });
    }
    if verified.len() < need {
        return Err(FetchError::NotEnoughShares {
            got: verified.len(),
            need,
            failures,
        });
    }
    let secret = checker
        .combine(&verified)
        .map_err(|e| FetchError::Combine(e.to_string()))?;
    Ok((secret.user_key(&ticket.policy_digest), failures, paths))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn direct_quic_is_dialled_first_then_direct_tcp_then_relayed_addresses() {
        let relay = "/ip4/100.64.1.2/tcp/4001/p2p/12D3KooWCwJTZGxJrpsBeZfavqd7YiuiuGMEwYJnEYwEriZaj2E3/p2p-circuit";
        let holder = TicketHolder {
            node: NodeId([7; 32]),
            index: 1,
            addrs: vec![
                relay.into(),
                "/ip4/10.1.0.11/tcp/4001".into(),
                "not an address".into(),
                "/ip4/10.1.0.11/udp/4001/quic-v1".into(),
            ],
        };
        let order: Vec<String> = dial_addrs(&holder).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            order,
            [
                "/ip4/10.1.0.11/udp/4001/quic-v1",
                "/ip4/10.1.0.11/tcp/4001",
                relay
            ]
        );
    }

    #[test]
    fn path_counts_name_each_path_and_show_unknown_only_when_some_were() {
        let mut counts = PathCounts::default();
        for path in [
            Some(ConnectionPath::Direct),
            Some(ConnectionPath::Relayed),
            Some(ConnectionPath::Relayed),
            Some(ConnectionPath::HolePunched),
        ] {
            counts.count(path);
        }
        assert_eq!(counts.to_string(), "direct 1, hole-punched 1, relayed 2");
        counts.count(None);
        assert_eq!(
            counts.to_string(),
            "direct 1, hole-punched 1, relayed 2, unknown 1"
        );
    }
}
