//! `entroshard simulate`: runs a scenario over thousands of in-process devices and writes a
//! report with plots; a progress bar shows live counters meanwhile (or, when stderr is not a
//! terminal, a plain line on each phase change and every 10 s, for logs of long runs).

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use simulator::{Options, Progress, Scenario};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain progress line is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Options of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (TOML, see `scenarios/`); the built-in defaults when absent.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Devices at the start (overrides the scenario).
    #[arg(long)]
    pub peers: Option<usize>,
    /// Seed of every random choice (overrides the scenario).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds of the run after the warm-up (overrides the scenario).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Directory for report.json, report.md and the plots.
    #[arg(long, default_value = "sim-report")]
    pub out: PathBuf,
    /// Directory for the share stores and the coordinator database (default: a temporary
    /// directory on /dev/shm when it exists).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Skip the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Exit with status 1 when a check of the report fails.
    #[arg(long)]
    pub strict: bool,
}

/// Runs the simulation.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    // Devices log at their own pace; only warnings and errors would drown the progress bar.
    if std::env::var_os("RUST_LOG").is_none() {
        let filter = tracing_subscriber::EnvFilter::new("error");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init();
    } else {
        super::init_tracing(super::LogFormat::Human);
    }
    let mut scenario = match &args.scenario {
        Some(path) => {
            Scenario::load(path).with_context(|| format!("scenario {}", path.display()))?
        }
        None => Scenario {
            name: "default".into(),
            ..Scenario::default()
        },
    };
    if let Some(p) = args.peers {
        scenario.peers = p;
    }
    if let Some(s) = args.seed {
        scenario.seed = s;
    }
    if let Some(d) = args.duration {
        scenario.duration_s = d;
    }
    scenario.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()?;
    let plain = !std::io::stderr().is_terminal();
    let bar = if plain {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix:<26} [{bar:30}] {pos:>5}/{len:<5} {elapsed_precise} {msg}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    if !plain {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    let started = Instant::now();
    // The phase shown and when the last plain line was written.
    let shown = Mutex::new(("", None::<Instant>));
    let show = |p: &Progress| {
        let counters = format!(
            "running {} | fetch ok {} failed {} | sessions {} | quarantined {} | RSS {:.0} MiB",
            p.live_peers, p.fetch_ok, p.fetch_failed, p.sessions, p.quarantined, p.rss_mib
        );
        let Ok(mut shown) = shown.lock() else { return };
        let new_phase = shown.0 != p.phase;
        if new_phase {
            shown.0 = p.phase;
            bar.set_prefix(p.phase);
            bar.reset_elapsed();
        }
        if plain {
            if new_phase || shown.1.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
                shown.1 = Some(Instant::now());
                eprintln!(
                    "[{:>6.0} s] {} {}/{} | {counters}",
                    started.elapsed().as_secs_f64(),
                    p.phase,
                    p.done,
                    p.total
                );
            }
            return;
        }
        bar.set_length(p.total.max(1));
        bar.set_position(p.done.min(p.total.max(1)));
        bar.set_message(counters);
    };
    let out = args.out.clone();
    let report = runtime.block_on(simulator::run(
        Options {
            scenario,
            out: args.out,
            work_dir: args.work_dir,
            plots: !args.no_plots,
        },
        &show,
    ));
    bar.finish_and_clear();
    let report = report?;
    outln!(
        "{}: {} devices, {:.3} % of {} fetches succeeded, {} wrong keys, peak RSS {:.0} MiB ({:.0} KiB per device)",
        report.scenario.name,
        report.peers,
        report.fetch.success_rate * 100.0,
        report.fetch.operations,
        report.wrong_keys_accepted,
        report.memory.peak_mib,
        report.memory.per_device_kib_peak
    );
    let mut failed = 0;
    for c in &report.checks {
        outln!(
            "  [{}] {} — {}",
            if c.passed { "ok" } else { "FAILED" },
            c.name,
            c.detail
        );
        failed += usize::from(!c.passed);
    }
    outln!("report: {}", out.join("report.md").display());
    if args.strict && failed > 0 {
        bail!("{failed} checks failed");
    }
    Ok(())
}
