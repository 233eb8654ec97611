//! What `entroshard bench` found: one serialisable document, printed as JSON or as a table.

use super::bare::BareFigures;
use super::fetch_latency::FetchFigures;
use super::stats::{ComparedLatency, LatencySummary};
use super::throughput::{RotationTime, SessionRate};
use serde::Serialize;

/// How the network was set up.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Setup {
    /// Peers for the bare, (5,3), session-rate and rotation parts.
    pub peers: usize,
    /// Peers for the (16,11) part (skipped with `--no-large`), if it ran.
    pub peers_large: Option<usize>,
    /// Regions the peers are spread over.
    pub regions: usize,
    /// Operators the peers are spread over.
    pub operators: usize,
    /// The coordinator's `--min-credited-bits`.
    pub min_credited_bits: u64,
    /// The coordinator's `--min-contributors`.
    pub min_contributors: usize,
    /// The peers' sources (the machine's own) and their start-up assessment.
    pub sources: String,
    /// Seconds between a peer's contributions.
    pub contribution_interval_s: f64,
    /// Seconds between the contributions of the peers the (16,11) part adds.
    pub added_peer_contribution_interval_s: f64,
    /// Share fetches a peer allows per requester per second.
    pub peer_fetch_rate_per_s: f64,
    /// What the bare round trip carries.
    pub bare_probe: &'static str,
    /// `release` or `debug`.
    pub build: &'static str,
}

/// Coordinator with many live sessions.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct LiveSessionsRss {
    /// Live sessions.
    pub sessions: u64,
    /// Coordinator VmRSS with them, KiB.
    pub coordinator_kib: u64,
    /// How long creating them took, s.
    pub fill_seconds: f64,
}

/// Sources cut off by a continuous health test when the timed parts ended.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct SourcesAtEnd {
    /// Cut off (for good).
    pub cut_off: usize,
    /// Every source of every peer.
    pub total: usize,
}

/// Resident set sizes (VmRSS).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct RssFigures {
    /// The coordinator after the timed parts, KiB.
    pub coordinator_kib: u64,
    /// The first peer after the timed parts, KiB.
    pub peer_kib: u64,
    /// The coordinator with `--sessions` live sessions, if asked.
    pub with_live_sessions: Option<LiveSessionsRss>,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchReport {
    /// Set-up.
    pub setup: Setup,
    /// Bare QUIC request/response with `--peers` peers.
    pub bare: BareFigures,
    /// k bare probes at once to k peers: the fan-out floor of a (5,3) fetch, and of a (16,11)
    /// fetch on the grown fleet.
    pub bare_fan_out: Vec<super::bare::FanOutFigures>,
    /// Bare QUIC request/response again on the grown fleet (unless `--no-large`), what (16,11) is
    /// compared with.
    pub bare_large: Option<BareFigures>,
    /// Fetch latencies per (n, k).
    pub fetch: Vec<FetchFigures>,
    /// Sessions per second end to end.
    pub sessions: SessionRate,
    /// Rotation time of the (5,3) session.
    pub rotation: RotationTime,
    /// Rotation time of the (16,11) session (unless `--no-large`).
    pub rotation_large: Option<RotationTime>,
    /// Memory.
    pub rss: RssFigures,
    /// Source health at the end.
    pub sources_at_end: SourcesAtEnd,
    /// Why the (16,11) part failed, if it did (the other figures are still reported).
    pub large_failed: Option<String>,
    /// Wall time of the whole bench, s.
    pub elapsed_s: f64,
}

fn latency_row(what: &str, l: &LatencySummary, ratios: Option<&ComparedLatency>) -> String {
    let ratios = ratios
        .map(|c| {
            format!(
                "{:>9.2}x {:>9.2}x",
                c.p50_ratio_to_bare, c.p99_ratio_to_bare
            )
        })
        .unwrap_or_default();
    format!(
        "  {what:<34} {:>7} {:>9.3} {:>9.3} {ratios}",
        l.samples, l.p50_ms, l.p99_ms
    )
    .trim_end()
    .to_string()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl BenchReport {
    /// The human table.
    pub(crate) fn table(&self) -> String {
        let s = &self.setup;
        let mut out = vec![
            format!(
                "entroshard bench: {} peers ({} regions, {} operators) and a coordinator on loopback (coordinator 127.0.0.1, peer i 127.0.0.(2+i)), {} build, {:.1} s",
                s.peers, s.regions, s.operators, s.build, self.elapsed_s
            ),
            format!(
                "  coordinator --min-credited-bits {} --min-contributors {}; peers on {}, contribute every {} s, allow {} fetches/s per requester",
                s.min_credited_bits,
                s.min_contributors,
                s.sources,
                s.contribution_interval_s,
                s.peer_fetch_rate_per_s
            ),
            format!(
                "  peers added for (16,11) contribute every {} s",
                s.added_peer_contribution_interval_s
            ),
            format!("  bare probe: {}", s.bare_probe),
            String::new(),
            format!(
                "  {:<34} {:>7} {:>9} {:>9} {:>10} {:>10}",
                "round trip (ms)", "samples", "p50", "p99", "p50/bare", "p99/bare"
            ),
            latency_row(
                &format!("bare, {} peers, warm", s.peers),
                &self.bare.warm,
                None,
            ),
            latency_row(
                &format!("bare, {} peers, cold", s.peers),
                &self.bare.cold,
                None,
            ),
        ];
        if let (Some(bare), Some(peers)) = (&self.bare_large, s.peers_large) {
            let what = |kind: &str| format!("bare, {peers} peers, {kind}");
            out.push(latency_row(&what("warm"), &bare.warm, None));
            out.push(latency_row(&what("cold"), &bare.cold, None));
        }
        for fan in &self.bare_fan_out {
            let what = |kind: &str| format!("bare x{} at once, {} peers, {kind}", fan.k, fan.peers);
            out.push(latency_row(&what("warm"), &fan.warm, None));
            out.push(latency_row(&what("cold"), &fan.cold, None));
        }
        for f in &self.fetch {
            let what = |kind: &str| format!("fetch ({},{}) {} peers, {kind}", f.n, f.k, f.peers);
            out.push(latency_row(&what("warm"), &f.warm.latency, Some(&f.warm)));
            out.push(latency_row(&what("cold"), &f.cold.latency, Some(&f.cold)));
        }
        match (&self.large_failed, s.peers_large) {
            (Some(why), _) => out.push(format!("  fetch (16,11): FAILED: {why}")),
            (None, None) => out.push("  fetch (16,11): not run (--no-large)".into()),
            (None, Some(_)) => {}
        }
        // Each fetch against the fan-out floor of its k on the same fleet (decision 0037).
        for f in &self.fetch {
            let floor = self
                .bare_fan_out
                .iter()
                .find(|fan| fan.k == usize::from(f.k) && fan.peers == f.peers);
            if let Some(fan) = floor {
                out.push(format!(
                    "  fetch ({},{}) / bare x{} at once (p50): warm {:.2}x, cold {:.2}x",
                    f.n,
                    f.k,
                    fan.k,
                    super::stats::ratio(f.warm.latency.p50_ms, fan.warm.p50_ms),
                    super::stats::ratio(f.cold.latency.p50_ms, fan.cold.p50_ms)
                ));
            }
        }
        out.push(
            "  goal: fetch / bare x k at once <= 1.5 warm and cold (decision 0037; fetch/bare is shown for reference)"
                .into(),
        );
        out.push(String::new());
        let r = &self.sessions;
        out.push(format!(
            "  sessions: {:.2} /s end to end, (5,3): {} created in {:.1} s; {} NotReady refusals (each retried after {} ms); {} receipts credit fewer than {} bits",
            r.sessions_per_s,
            r.created,
            r.seconds,
            r.not_ready_refusals,
            r.retry_after_ms,
            r.receipts_below_min_credited_bits,
            s.min_credited_bits
        ));
        for t in std::iter::once(&self.rotation).chain(&self.rotation_large) {
            out.push(format!(
                "  rotation (n={}): median {:.1} ms over {} (min {:.1}, max {:.1}), admin Rotate until the ticket shows the new epoch (polled every {} ms, {} ms pause between rotations, {} Rotate calls resent)",
                t.n, t.median_ms, t.rotations, t.min_ms, t.max_ms, t.poll_ms, t.settle_ms, t.rotate_calls_resent
            ));
        }
        out.push(format!(
            "  RSS: coordinator {}, one peer {}",
            mib(self.rss.coordinator_kib),
            mib(self.rss.peer_kib)
        ));
        out.push(format!(
            "  sources cut off by a health test by the end: {} of {}",
            self.sources_at_end.cut_off, self.sources_at_end.total
        ));
        match &self.rss.with_live_sessions {
            Some(l) => out.push(format!(
                "  RSS: coordinator with {} live sessions {} (created in {:.1} s)",
                l.sessions,
                mib(l.coordinator_kib),
                l.fill_seconds
            )),
            None => out.push("  RSS with many live sessions: not run (--sessions 1000)".into()),
        }
        out.join("\n")
    }
}
