//! Fetch latency of one session: warm (one `Requester` reused) and cold (a new `Requester`, hence
//! a new node and fresh QUIC connections to the holders, per sample), compared with the bare
//! round trip.

use super::bare::BareFigures;
use super::stats::{ComparedLatency, Deadline, LatencySummary, SAMPLE_BOUND};
use anyhow::{Context, ensure};
use libp2p::Multiaddr;
use protocols::identity::NodeKey;
use protocols::keys::SessionKey;
use protocols::ticket::TicketGrant;
use protocols::wire::{Refusal, SessionCreated, SessionPolicy};
use requester::{Requester, RequesterError};
use std::time::{Duration, Instant};

/// The fetch figures of one (n, k).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct FetchFigures {
    /// Shares per session.
    pub n: u8,
    /// Shares needed.
    pub k: u8,
    /// Peers running when it was measured.
    pub peers: usize,
    /// Reused requester, against the warm bare figures.
    pub warm: ComparedLatency,
    /// New requester per sample, against the cold bare figures.
    pub cold: ComparedLatency,
}

/// What a fetch measurement needs from the bench.
pub(crate) struct FetchSetup<'a> {
    /// The authorised requester's identity (cold samples reuse it: the ticket names it).
    pub key: &'a NodeKey,
    /// The coordinator.
    pub coordinator: &'a Multiaddr,
    /// The requester reused by the warm samples.
    pub requester: &'a Requester,
    /// The deadline.
    pub deadline: &'a Deadline,
}

/// A session policy for the bench.
pub(crate) fn policy(n: u8, k: u8, label: &str) -> SessionPolicy {
    SessionPolicy {
        n,
        k,
        ttl_s: 3600,
        requesters: Vec::new(),
        label: label.into(),
    }
}

/// Creates a session, retrying while the coordinator says it is not ready (pool short, or not
/// enough eligible holders yet).
pub(crate) async fn create_session_when_ready(
    requester: &Requester,
    policy: SessionPolicy,
    deadline: &Deadline,
) -> anyhow::Result<SessionCreated> {
    loop {
        match requester.create_session(policy.clone()).await {
            Ok(created) => return Ok(created),
            Err(RequesterError::Refused(Refusal::NotReady(why))) => {
                deadline.check(&format!(
                    "waiting to create a ({},{}) session: {why}",
                    policy.n, policy.k
                ))?;
                tokio::time::sleep(super::throughput::NOT_READY_RETRY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn timed_fetch(
    requester: &Requester,
    grant: &TicketGrant,
    expected: &SessionKey,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let key = requester.fetch(grant).await?;
    let elapsed = started.elapsed();
    ensure!(&key == expected, "a fetch rebuilt a different key");
    Ok(elapsed)
}

/// Measures `warm_samples` and `cold_samples` fetches of the session `created`.
pub(crate) async fn measure(
    setup: &FetchSetup<'_>,
    created: &SessionCreated,
    (warm_samples, cold_samples): (usize, usize),
    bare: &BareFigures,
    peers: usize,
) -> anyhow::Result<FetchFigures> {
    let grant = &created.grant;
    let (n, k) = ticket_shape(created)?;
    // One untimed fetch opens the connections and gives the key every sample must rebuild.
    let deadline = setup.deadline;
    let opening = async { Ok(setup.requester.fetch(grant).await?) };
    let expected = deadline
        .bound("the first fetch", SAMPLE_BOUND, opening)
        .await?;
    let mut warm = Vec::with_capacity(warm_samples);
    for number in 1..=warm_samples {
        let fetch = timed_fetch(setup.requester, grant, &expected);
        warm.push(deadline.sample("warm fetch", number, fetch).await?);
    }
    let mut cold = Vec::with_capacity(cold_samples);
    for number in 1..=cold_samples {
        let fresh = Requester::connect(setup.key, setup.coordinator.clone()).await?;
        let fetch = timed_fetch(&fresh, grant, &expected);
        cold.push(deadline.sample("cold fetch", number, fetch).await?);
        fresh.node().shutdown().await;
    }
    let warm = LatencySummary::of(&warm).context("no warm fetch samples")?;
    let cold = LatencySummary::of(&cold).context("no cold fetch samples")?;
    Ok(FetchFigures {
        n,
        k,
        peers,
        warm: ComparedLatency::against(warm, &bare.warm),
        cold: ComparedLatency::against(cold, &bare.cold),
    })
}

/// (holders, threshold) of the session's ticket.
fn ticket_shape(created: &SessionCreated) -> anyhow::Result<(u8, u8)> {
    let ticket: protocols::ticket::Ticket = created.grant.ticket.open_from_any_signer()?.1;
    Ok((
        u8::try_from(ticket.holders.len()).context("more than 255 holders")?,
        u8::try_from(ticket.threshold()).context("threshold over 255")?,
    ))
}
