//! `entroshard bench`: end-to-end figures on loopback. Starts a coordinator and peers as child
//! processes (4 regions, 3 operators, the machine's own fast sources, one loopback address per
//! peer: see `fleet_layout`), then measures in order: the bare QUIC
//! request/response round trip, fetch latency of a (5,3) session against it, sessions per second,
//! rotation time, and (unless `--no-large`) fetch latency of a (16,11) session after growing the fleet to
//! at least 18 peers (a (16,11) quorum allows ≤ 5 holders per region and ≤ 10 per operator, so it
//! needs 4 regions and a margin of spare peers). RSS comes last. Progress goes to stderr, the
//! table (or `--json`) to stdout.

mod bare;
mod fetch_latency;
mod fleet_layout;
mod report;
mod stats;
mod throughput;

use crate::fleet::{CoordinatorSettings, Fleet, admin_call};
use anyhow::{Context, ensure};
use fleet_layout::{CONTRIBUTION_INTERVAL_S, OPERATORS, PEER_FETCH_RATE_PER_S, REGIONS, rss_kib};
use protocols::identity::NodeKey;
use rand::rngs::SysRng;
use rand_core::UnwrapErr;
use report::{BenchReport, LiveSessionsRss, RssFigures, Setup, SourcesAtEnd};
use requester::Requester;
use stats::Deadline;
use std::time::{Duration, Instant};

/// Peers the (16,11) part runs with, at least.
const LARGE_PEERS: usize = 18;

/// Options of `entroshard bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Peers for the bare, (5,3), session-rate and rotation parts (at least 5).
    #[arg(long, default_value_t = 7)]
    pub peers: usize,
    /// Warm samples of the bare round trip and of each fetch.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Cold samples (a fresh node per sample) of the bare round trip and of each fetch.
    #[arg(long, default_value_t = 30)]
    pub cold: usize,
    /// Skip the (16,11) fetch (it grows the fleet to max(--peers, 18) peers and takes longest).
    #[arg(long)]
    pub no_large: bool,
    /// Measure the coordinator's RSS with this many live sessions (0: skip; it takes long).
    #[arg(long, default_value_t = 0)]
    pub sessions: u64,
    /// Seconds of back-to-back session creation for the session rate.
    #[arg(long, default_value_t = 5.0)]
    pub rate_seconds: f64,
    /// Rotations of an n=5 session to time.
    #[arg(long, default_value_t = 5)]
    pub rotations: usize,
    /// The coordinator's --min-credited-bits (the default 2048 makes refills slower).
    #[arg(long, default_value_t = 256)]
    pub min_credited_bits: u64,
    /// The coordinator's --min-contributors.
    #[arg(long, default_value_t = 2)]
    pub min_contributors: usize,
    /// Global deadline in seconds (default 600, plus one second per --sessions).
    #[arg(long)]
    pub deadline: Option<u64>,
    /// Samples in each peer's first-start assessment and in each of the coordinator's entropy
    /// audits (default 200,000 and 100,000): fewer start the fleet sooner on a slow machine.
    #[arg(long)]
    pub window_samples: Option<u32>,
}

/// The progress bar on a terminal; unset when stderr is not one (plain `[bench]` lines then).
static BAR: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

/// Starts the bar when stderr is a terminal, sized to the steps `args` will take.
fn start_progress(args: &BenchArgs) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let steps = 10 + if args.no_large { 0 } else { 4 } + u64::from(args.sessions > 0);
    let bar = indicatif::ProgressBar::new(steps);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:24}] {pos}/{len} {elapsed_precise} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let _ = BAR.set(bar);
}

/// One step of the bench: the bar moves on, or a plain line is written.
fn progress(line: &str) {
    match BAR.get() {
        Some(bar) => {
            bar.inc(1);
            bar.set_message(line.to_string());
        }
        None => eprintln!("[bench] {line}"),
    }
}

/// Samples in each peer's first-start assessment.
fn assess_samples(args: &BenchArgs) -> usize {
    args.window_samples
        .map_or(fleet_layout::PEER_SOURCES.1, |n| n as usize)
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    ensure!(
        args.peers >= 5,
        "--peers must be at least 5 for (5,3) sessions"
    );
    ensure!(
        args.requests >= 1 && args.cold >= 1 && args.rotations >= 1,
        "--requests, --cold and --rotations must be at least 1"
    );
    ensure!(
        args.rate_seconds.is_finite() && args.rate_seconds > 0.0,
        "--rate-seconds must be positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    start_progress(&args);
    let measured = runtime.block_on(measure_everything(&args));
    if let Some(bar) = BAR.get() {
        bar.finish_and_clear();
    }
    let report = measured?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!("{}", report.table());
    }
    Ok(())
}

async fn measure_everything(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let budget = args.deadline.unwrap_or(600 + args.sessions).max(1);
    let deadline = Deadline::after(Duration::from_secs(budget));
    let settings = CoordinatorSettings {
        min_credited_bits: args.min_credited_bits,
        min_contributors: args.min_contributors,
        entropy_audit_samples: args.window_samples,
    };
    progress("starting the coordinator");
    let mut fleet = fleet_layout::start(settings, assess_samples(args), &deadline)?;
    let measured = measure_on(&mut fleet, args, &deadline, started).await;
    let tails = measured.is_err().then(|| fleet.log_tails(12));
    drop(fleet);
    progress("every child process stopped and its directory removed");
    measured.map_err(|e| match tails {
        Some(tails) => e.context(format!("the bench failed; the logs ended with:\n{tails}")),
        None => e,
    })
}

/// The fan-out floor of a k-share fetch on the fleet as it is: k probes at once to its first k peers.
async fn measure_fan_out(
    fleet: &Fleet,
    k: usize,
    args: &BenchArgs,
    deadline: &Deadline,
) -> anyhow::Result<bare::FanOutFigures> {
    let targets: Vec<bare::BareTarget> = fleet
        .peers
        .iter()
        .take(k)
        .map(|p| bare::BareTarget {
            peer: p.peer_id,
            quic: p.quic.clone(),
        })
        .collect();
    ensure!(targets.len() == k, "fewer than {k} peers for the fan-out");
    progress(&format!("bare fan-out: {k} probes at once to {k} peers"));
    bare::measure_fan_out(
        &targets,
        fleet.peers.len(),
        args.requests,
        args.cold,
        deadline,
    )
    .await
}

/// What the (16,11) part measures: the grown fleet's size, its bare round trip and fan-out floor,
/// and the fetch.
struct LargeFigures {
    peers: usize,
    bare: bare::BareFigures,
    fan_out: bare::FanOutFigures,
    fetch: fetch_latency::FetchFigures,
    rotation: throughput::RotationTime,
}

/// Grows the fleet to max(--peers, 18), measures the bare round trip and the 11-probe fan-out
/// floor again on it, creates a (16,11) session and measures its fetches against them.
async fn measure_large(
    fleet: &mut Fleet,
    args: &BenchArgs,
    setup: &fetch_latency::FetchSetup<'_>,
    bare_target: &bare::BareTarget,
) -> anyhow::Result<LargeFigures> {
    let total = args.peers.max(LARGE_PEERS);
    progress(&format!("growing the fleet to {total} peers for (16,11)"));
    fleet.grow_to(total).await?;
    fleet_layout::wait_until_all_eligible(fleet, setup.deadline).await?;
    progress(&format!("bare round trips again with {total} peers"));
    let bare = bare::measure(bare_target, args.requests, args.cold, setup.deadline).await?;
    let fan_out = measure_fan_out(fleet, 11, args, setup.deadline).await?;
    let large = fetch_latency::create_session_when_ready(
        setup.requester,
        fetch_latency::policy(16, 11, "bench-fetch-large"),
        setup.deadline,
    )
    .await?;
    progress("fetch (16,11): warm and cold");
    let samples = (args.requests, args.cold);
    let fetch = fetch_latency::measure(setup, &large, samples, &bare, total).await?;
    progress(&format!(
        "rotating the n=16 session {} times",
        args.rotations
    ));
    let rotation = throughput::rotation_time(
        setup.requester,
        &fleet.admin_socket,
        large.session,
        16,
        args.rotations,
        setup.deadline,
    )
    .await?;
    Ok(LargeFigures {
        peers: total,
        bare,
        fan_out,
        fetch,
        rotation,
    })
}

async fn measure_on(
    fleet: &mut Fleet,
    args: &BenchArgs,
    deadline: &Deadline,
    started: Instant,
) -> anyhow::Result<BenchReport> {
    progress(&format!("starting {} peers", args.peers));
    fleet.grow_to(args.peers).await?;
    fleet_layout::wait_until_all_eligible(fleet, deadline).await?;
    progress(&format!(
        "{} peers attested ({:.1} s)",
        args.peers,
        started.elapsed().as_secs_f64()
    ));

    let key = NodeKey::generate(&mut UnwrapErr(SysRng));
    admin_call(
        &fleet.admin_socket,
        coordinator::admin::AdminCall::AddRequester {
            node: key.node_id(),
        },
    )
    .await?;
    let requester = Requester::connect(&key, fleet.coordinator_addr.clone()).await?;

    let target = fleet.peers.first().context("no peers")?;
    let bare_target = bare::BareTarget {
        peer: target.peer_id,
        quic: target.quic.clone(),
    };
    progress(&format!(
        "bare round trips: {} warm, {} cold",
        args.requests, args.cold
    ));
    let bare = bare::measure(&bare_target, args.requests, args.cold, deadline).await?;
    let fan_out = measure_fan_out(fleet, 3, args, deadline).await?;

    progress("creating a (5,3) session (waiting for the pool)");
    let small = fetch_latency::create_session_when_ready(
        &requester,
        fetch_latency::policy(5, 3, "bench-fetch"),
        deadline,
    )
    .await?;
    let coordinator_addr = fleet.coordinator_addr.clone();
    let setup = fetch_latency::FetchSetup {
        key: &key,
        coordinator: &coordinator_addr,
        requester: &requester,
        deadline,
    };
    let samples = (args.requests, args.cold);
    progress("fetch (5,3): warm and cold");
    let mut fetch = vec![fetch_latency::measure(&setup, &small, samples, &bare, args.peers).await?];

    progress(&format!("sessions per second for {} s", args.rate_seconds));
    let window = Duration::from_secs_f64(args.rate_seconds);
    let sessions =
        throughput::session_rate(&requester, window, args.min_credited_bits, deadline).await?;

    progress(&format!("rotating an n=5 session {} times", args.rotations));
    let rotation = throughput::rotation_time(
        &requester,
        &fleet.admin_socket,
        small.session,
        5,
        args.rotations,
        deadline,
    )
    .await?;

    let mut live_sessions = 1 + sessions.created;
    let large = if !args.no_large {
        let measured = measure_large(fleet, args, &setup, &bare_target).await?;
        live_sessions += 1;
        Some(measured)
    } else {
        None
    };
    let mut bare_fan_out = vec![fan_out];
    let (peers_large, bare_large, rotation_large) = match large {
        Some(large) => {
            fetch.push(large.fetch);
            bare_fan_out.push(large.fan_out);
            (Some(large.peers), Some(large.bare), Some(large.rotation))
        }
        None => (None, None, None),
    };

    let coordinator_pid = fleet.coordinator_pid().context("no coordinator process")?;
    let peer_pid = fleet.first_peer_pid().context("no peer process")?;
    let mut rss = RssFigures {
        coordinator_kib: rss_kib(coordinator_pid)?,
        peer_kib: rss_kib(peer_pid)?,
        with_live_sessions: None,
    };
    let (cut_off, total) = fleet_layout::source_health(fleet).await?;
    let sources_at_end = SourcesAtEnd { cut_off, total };
    if args.sessions > 0 {
        progress(&format!(
            "creating sessions until {} are live ({live_sessions} so far)",
            args.sessions
        ));
        let took =
            throughput::fill_sessions(&requester, live_sessions, args.sessions, deadline).await?;
        rss.with_live_sessions = Some(LiveSessionsRss {
            sessions: args.sessions.max(live_sessions),
            coordinator_kib: rss_kib(coordinator_pid)?,
            fill_seconds: took.as_secs_f64(),
        });
    }
    requester.node().shutdown().await;
    Ok(BenchReport {
        setup: Setup {
            peers: args.peers,
            peers_large,
            regions: REGIONS.len(),
            operators: OPERATORS.len(),
            min_credited_bits: args.min_credited_bits,
            min_contributors: args.min_contributors,
            sources: format!(
                "this machine's {} ({}-sample assessment)",
                fleet_layout::PEER_SOURCES.0.join(" and "),
                assess_samples(args)
            ),
            contribution_interval_s: CONTRIBUTION_INTERVAL_S,
            peer_fetch_rate_per_s: PEER_FETCH_RATE_PER_S,
            bare_probe: "ShareFetch on /entroshard/fetch/1 with a ticket signed by a stranger, \
                         refused by the holder as BadSignature before any signature check",
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        },
        bare,
        bare_fan_out,
        bare_large,
        fetch,
        sessions,
        rotation,
        rotation_large,
        rss,
        sources_at_end,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}
