//! The bare cost of one request/response round trip on the same libp2p QUIC stack as a fetch:
//! a `ShareFetch` on `/entroshard/fetch/1` to one peer, whose ticket names a stranger as signer,
//! so the holder refuses it after decoding, without a signature check or a store read.

use super::stats::{Deadline, LatencySummary};
use anyhow::{Context, bail};
use libp2p::{Multiaddr, PeerId};
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle, Protocol};
use protocols::identity::NodeKey;
use protocols::ticket::TicketRefusal;
use protocols::wire::{
    self, Refusal, Reply, ShareFetch, ShareFetchReply, SignedEnvelope, WIRE_VERSION,
};
use rand::rngs::SysRng;
use rand_core::UnwrapErr;
use std::time::{Duration, Instant};

/// The bare figures, warm and cold.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct BareFigures {
    /// Requests on one reused connection.
    pub warm: LatencySummary,
    /// Requests each on a fresh node with a fresh identity (dial + QUIC handshake + request).
    pub cold: LatencySummary,
}

/// The floor of a k-share fetch: k probes at once to k different peers, timed until the last
/// answer (what fan-out alone costs on this machine, without any crypto).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct FanOutFigures {
    /// Probes sent at once.
    pub k: usize,
    /// Peers running in the fleet meanwhile.
    pub peers: usize,
    /// Time until all k answered, on warm connections.
    pub warm: LatencySummary,
    /// The same from a new node per sample: k QUIC handshakes at once, then the probes.
    pub cold: LatencySummary,
}

/// One probe to each of `targets` at once from `node`; the time until the last answer.
async fn fan_out_round(
    node: &NodeHandle,
    targets: &[BareTarget],
    request: &[u8],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    futures::future::try_join_all(
        targets
            .iter()
            .map(|t| round_trip(node, t, request.to_vec())),
    )
    .await?;
    Ok(started.elapsed())
}

/// `samples` rounds of one probe to each of `targets` at once on one warm node, then
/// `cold_samples` rounds each from a new node; `peers` run in the fleet meanwhile.
pub(crate) async fn measure_fan_out(
    targets: &[BareTarget],
    peers: usize,
    samples: usize,
    cold_samples: usize,
    deadline: &Deadline,
) -> anyhow::Result<FanOutFigures> {
    let request = probe_request();
    let node = requester_side_node().await?;
    let opening = "opening the bare fan-out's connections";
    deadline
        .sample(opening, 0, fan_out_round(&node, targets, &request))
        .await?;
    let mut warm = Vec::with_capacity(samples);
    for number in 1..=samples {
        let round = fan_out_round(&node, targets, &request);
        warm.push(deadline.sample("warm bare fan-out", number, round).await?);
    }
    node.shutdown().await;
    let mut cold = Vec::with_capacity(cold_samples);
    for number in 1..=cold_samples {
        let fresh = requester_side_node().await?;
        let round = fan_out_round(&fresh, targets, &request);
        cold.push(deadline.sample("cold bare fan-out", number, round).await?);
        fresh.shutdown().await;
    }
    Ok(FanOutFigures {
        k: targets.len(),
        peers,
        warm: LatencySummary::of(&warm).context("no fan-out samples")?,
        cold: LatencySummary::of(&cold).context("no cold fan-out samples")?,
    })
}

/// The peer the bare requests go to.
pub(crate) struct BareTarget {
    /// Its identity.
    pub peer: PeerId,
    /// Its QUIC address.
    pub quic: Multiaddr,
}

/// Starts a requester-side node the way `Requester::connect` does (QUIC only, no Kademlia,
/// refusing whatever arrives), listening on 127.0.0.1.
pub(crate) async fn requester_side_node() -> anyhow::Result<NodeHandle> {
    let key = NodeKey::generate(&mut UnwrapErr(SysRng));
    let mut config = NodeConfig::network(vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse()?]);
    config.kademlia = false;
    config.dial_concurrency = std::num::NonZeroU8::MIN;
    let (node, mut events) = node::start(&key, config).await?;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NodeEvent::Request { responder, .. } = event {
                let refusal = Reply::<()>::refused(Refusal::Unauthorized);
                let _ = responder.respond(wire::encode(&refusal)).await;
            }
        }
    });
    Ok(node)
}

/// A well-formed `ShareFetch` whose ticket is signed (garbage signature) by a stranger.
fn probe_request() -> Vec<u8> {
    let stranger = NodeKey::generate(&mut UnwrapErr(SysRng)).node_id();
    wire::encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket: SignedEnvelope {
            v: WIRE_VERSION,
            signer: stranger,
            payload: Vec::new(),
            signature: vec![0; 64],
        },
    })
}

/// Sends one probe and checks that the answer is the expected typed refusal.
async fn round_trip(
    node: &NodeHandle,
    target: &BareTarget,
    request: Vec<u8>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let raw = node
        .request(
            Protocol::Fetch,
            target.peer,
            vec![target.quic.clone()],
            request,
        )
        .await?;
    let elapsed = started.elapsed();
    let reply: ShareFetchReply =
        wire::decode(&raw, Protocol::Fetch.limits().1).context("the holder's answer")?;
    match reply.result {
        Err(Refusal::Ticket(TicketRefusal::BadSignature)) => Ok(elapsed),
        other => bail!("the holder answered the bare probe with {other:?}, not a ticket refusal"),
    }
}

/// `warm_samples` requests on one connection (after one untimed request opens it), then
/// `cold_samples` requests each from a new node with a new identity.
pub(crate) async fn measure(
    target: &BareTarget,
    warm_samples: usize,
    cold_samples: usize,
    deadline: &Deadline,
) -> anyhow::Result<BareFigures> {
    let request = probe_request();
    let node = requester_side_node().await?;
    let opening = "opening the bare round trip's connection";
    deadline
        .sample(opening, 0, round_trip(&node, target, request.clone()))
        .await?;
    let mut warm = Vec::with_capacity(warm_samples);
    for number in 1..=warm_samples {
        let trip = round_trip(&node, target, request.clone());
        warm.push(
            deadline
                .sample("warm bare round trip", number, trip)
                .await?,
        );
    }
    node.shutdown().await;
    let mut cold = Vec::with_capacity(cold_samples);
    for number in 1..=cold_samples {
        let fresh = requester_side_node().await?;
        let trip = round_trip(&fresh, target, request.clone());
        cold.push(
            deadline
                .sample("cold bare round trip", number, trip)
                .await?,
        );
        fresh.shutdown().await;
    }
    Ok(BareFigures {
        warm: LatencySummary::of(&warm).context("no warm bare samples")?,
        cold: LatencySummary::of(&cold).context("no cold bare samples")?,
    })
}
