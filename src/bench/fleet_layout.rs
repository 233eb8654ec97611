//! The bench's layout of the shared [`crate::fleet`] and what it waits for before measuring.
//!
//! The coordinator listens on 127.0.0.1 and peer i on 127.0.0.(2+i), and peers reach the
//! coordinator over QUIC (sent from their own listening address): gossipsub's peer scoring
//! penalises many peers behind one IP address, and past about a dozen of them on 127.0.0.1 the
//! coordinator greylists them all and no heartbeat gets through.

use super::stats::Deadline;
use crate::fleet::{CoordinatorSettings, Fleet, FleetSettings, PeerLayout};
use anyhow::Context;
use coordinator::admin::SourceStanding;
use protocols::wire::SourceState;
use std::time::Duration;

/// Four regions, not three: a (16,11) quorum allows at most n−k = 5 holders per region, so three
/// regions could place only 15 shares.
pub(crate) const REGIONS: [&str; 4] = ["eu-west", "us-east", "ap-south", "sa-east"];
pub(crate) const OPERATORS: [&str; 3] = ["alpha", "bravo", "charlie"];

/// Seconds between a peer's contributions: short, so the pool fills fast.
pub(crate) const CONTRIBUTION_INTERVAL_S: f64 = 0.3;

/// Seconds between the contributions of the peers the (16,11) part adds: they are there to hold
/// shares, the first peers keep the pool filled. On the machine's own sources a release peer
/// contributing every 0.3 s takes 5–10 % of a core (the jitter source times its workload for
/// every sample), so eighteen of them filled both cores of the 2-core machine and a bare round
/// trip took over a second.
pub(crate) const ADDED_PEER_CONTRIBUTION_INTERVAL_S: f64 = 5.0;

/// Pause once every peer is eligible, before anything is measured.
const SETTLE_AFTER_START: Duration = Duration::from_secs(2);

/// Peers answer this many share fetches per requester per second: far above what the bench
/// sends, so every sample measures a served fetch rather than the rate limiter (the default of
/// 20 per second would refuse most of the bench's fetches).
pub(crate) const PEER_FETCH_RATE_PER_S: f64 = 1_000_000.0;

/// Starts the bench's coordinator; children log warnings only, or `$ENTROSHARD_BENCH_LOG`
/// (per-request log lines would be part of what is measured).
/// The peers' sources: the machine's fast ones only, assessed on 200,000 samples (18 peers
/// assessing every polled sensor on 1,000,000 samples would be what the bench measures).
pub(crate) const PEER_SOURCES: (&[&str], usize) = (&["jitter", "hwrng"], 200_000);

pub(crate) fn start(
    coordinator: CoordinatorSettings,
    assess_samples: usize,
    deadline: &Deadline,
) -> anyhow::Result<Fleet> {
    let settings = FleetSettings {
        coordinator,
        peers: PeerLayout {
            regions: &REGIONS,
            operators: &OPERATORS,
            real_sources: (PEER_SOURCES.0, assess_samples),
            address_per_peer: true,
            coordinator_over_quic: true,
            contribution_interval_s: CONTRIBUTION_INTERVAL_S,
            fetch_rate_per_s: Some(PEER_FETCH_RATE_PER_S),
        },
        log_filter: std::env::var("ENTROSHARD_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
    };
    Fleet::start(settings, |what| deadline.check(what))
}

/// Waits until every peer is attested, trusted and heartbeating and the coordinator has audited
/// every source it reports once (each audit assesses a window of 100,000 samples through the
/// ten SP 800-90B estimators: CPU that would otherwise land in the first figures), then
/// [`SETTLE_AFTER_START`].
pub(crate) async fn wait_until_all_eligible(
    fleet: &Fleet,
    deadline: &Deadline,
) -> anyhow::Result<()> {
    loop {
        let lines = fleet.status().await?;
        let eligible = lines
            .iter()
            .filter(|l| l.trusted && l.heartbeat_age_s.is_some())
            .count();
        let sources: usize = lines.iter().map(|l| l.sources.len()).sum();
        let audited = lines
            .iter()
            .flat_map(|l| &l.source_lines)
            .filter(|s| !s.audit_pending && !matches!(s.standing, SourceStanding::Unaudited))
            .count();
        if eligible >= fleet.peers.len() && audited >= sources {
            // Start-up work (health tests, first contributions) would otherwise be measured.
            tokio::time::sleep(SETTLE_AFTER_START).await;
            return Ok(());
        }
        if eligible >= fleet.peers.len() {
            deadline.check(&format!(
                "waiting for the coordinator's first audit of every source ({audited} of {sources} so far)"
            ))?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let waiting_for: Vec<String> = lines
            .iter()
            .filter(|l| !(l.trusted && l.heartbeat_age_s.is_some()))
            .map(|l| {
                format!(
                    "{} (quarantine {:?}, heartbeat age {:?} s, {} shares)",
                    l.node.short(),
                    l.quarantine,
                    l.heartbeat_age_s,
                    l.shares_held
                )
            })
            .collect();
        deadline.check(&format!(
            "waiting for peers to attest ({eligible} of {} so far; not yet: {})",
            fleet.peers.len(),
            waiting_for.join(", ")
        ))?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (sources cut off by a health test, sources) over every peer, from the coordinator's view.
pub(crate) async fn source_health(fleet: &Fleet) -> anyhow::Result<(usize, usize)> {
    let lines = fleet.status().await?;
    let sources = lines.iter().flat_map(|l| &l.sources);
    let cut_off = sources
        .clone()
        .filter(|s| s.state == SourceState::CutOff)
        .count();
    Ok((cut_off, sources.count()))
}

/// Resident set size of a process in KiB, from `/proc/PID/status`.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}
