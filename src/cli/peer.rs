//! `entroshard peer init|run`: set up and run the device agent.
// Field comments are clap's help text, where `<PeerId>` reads as a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use super::systemd;
use anyhow::Context;
use peer::config::{
    FeedConfig, PeerConfig, RelayReservation, ResourceProfile, SimulatedSourceConfig, SourcesConfig,
};

/// `--relay-reservation` (peer::config::RelayReservation).
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum ReservationArg {
    /// Unless a relay itself or listening on loopback only.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never (a device with a public address).
    Never,
}
use protocols::identity::NodeKey;
use rand::rngs::SysRng;
use rand_core::UnwrapErr;
use std::path::PathBuf;

/// `peer` subcommands.
#[derive(Debug, clap::Subcommand)]
// Parsed once per process; the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum PeerCommand {
    /// Create a peer's identity (mode 0600) and config file, pinned to a coordinator.
    Init(InitArgs),
    /// Run the device agent until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Print this device's PeerId (what `coordinator enrol` takes) and node id.
    Id(IdArgs),
}

/// Options of `peer id`.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// Data directory written by `peer init`.
    #[arg(long, default_value = "entroshard-peer")]
    pub data_dir: PathBuf,
    /// Config file (default `<data-dir>/peer.toml`); its `data_dir` names the identity.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Options of `peer init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Coordinator multiaddress ending in /p2p/<PeerId>.
    #[arg(long)]
    pub coordinator: String,
    /// Region label (failure domain).
    #[arg(long)]
    pub region: String,
    /// Operator label (administrative owner).
    #[arg(long)]
    pub operator: String,
    /// Data directory (identity, config, share store).
    #[arg(long, default_value = "entroshard-peer")]
    pub data_dir: PathBuf,
    /// Listen addresses (repeatable); default TCP and QUIC on every interface, ephemeral ports.
    #[arg(long)]
    pub listen: Vec<String>,
    /// Add a simulated source: `biased:P:SEED`, `correlated:BITS:P:SEED`, `stuck:VALUE`, or a
    /// sensor model: `walk:BITS:STEP:SEED` (a drifting reading's low bits),
    /// `periodic:BITS:PERIOD:NOISE:SEED` (flicker plus noise), `jitter:BITS:SPREAD:SEED`
    /// (timing deltas).
    #[arg(long = "simulated-source")]
    pub simulated: Vec<String>,
    /// External feed: `PATH:BITS:H` (PATH may be `-` for stdin).
    #[arg(long)]
    pub feed: Option<String>,
    /// Do not probe hardware sources.
    #[arg(long)]
    pub no_hardware: bool,
    /// Most samples of each source assessed at the first start (SP 800-90B §3.1 asks for
    /// 1,000,000; the model is stored and reused until the binary or the source changes).
    #[arg(long, default_value_t = 1_000_000)]
    pub assess_samples: usize,
    /// Use only this detected source (a name, or a kind such as `hwrng`); repeatable.
    #[arg(long = "only-source")]
    pub only_sources: Vec<String>,
    /// Serve Prometheus /metrics, /health and /ready on this address.
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// A one-time join token from `coordinator join-token` (instead of enrolment by PeerId).
    #[arg(long)]
    pub join_token: Option<String>,
    /// Seconds between contributions.
    #[arg(long, default_value_t = 60.0)]
    pub contribution_interval: f64,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 15.0)]
    pub heartbeat_interval: f64,
    /// Where to write the config (default `<data-dir>/peer.toml`). A comment-only template
    /// there, such as the package's `/etc/entroshard/peer.toml`, is filled in.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Use the low-memory resource profile (Pi-class boards).
    #[arg(long)]
    pub low_memory: bool,
    /// Serve as a circuit relay for NATed peers (only on a device others can reach).
    #[arg(long)]
    pub relay_server: bool,
    /// When to hold a relay reservation (`auto`: unless a relay or on loopback only).
    #[arg(long, value_enum, default_value_t)]
    pub relay_reservation: ReservationArg,
    /// A relay to reserve a slot on besides the coordinator (multiaddr with /p2p/); repeatable.
    #[arg(long = "relay")]
    pub relays: Vec<String>,
}

/// Options of `peer run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Data directory written by `peer init`.
    #[arg(long, default_value = "entroshard-peer")]
    pub data_dir: PathBuf,
    /// Config file (default `<data-dir>/peer.toml`); its `data_dir` names the state.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: super::LogFormat,
}

/// Runs a `peer` subcommand.
pub fn run(command: PeerCommand) -> anyhow::Result<()> {
    match command {
        PeerCommand::Init(args) => init(args),
        PeerCommand::Id(args) => {
            let config_path = args
                .config
                .unwrap_or_else(|| args.data_dir.join("peer.toml"));
            let config = PeerConfig::load(&config_path).context("loading the peer config")?;
            let key = peer::identity::read_key(&config.identity_path())
                .with_context(|| format!("reading {}", config.identity_path().display()))?;
            let peer_id = peer::identity::peer_id(&key.node_id()).context("identity")?;
            outln!("peer id {peer_id}");
            outln!("node id {}", key.node_id());
            match peer::share_key::read(&config.share_key_path()) {
                Ok(share_key) => outln!(
                    "share key {}",
                    protocols::share_box::fingerprint(&share_key.public())
                ),
                Err(_) => outln!("share key none yet (made at the next start)"),
            }
            Ok(())
        }
        PeerCommand::Run(args) => {
            super::init_tracing(args.log_format);
            let config_path = args
                .config
                .unwrap_or_else(|| args.data_dir.join("peer.toml"));
            let profile = PeerConfig::load(&config_path)
                .context("loading the peer config")?
                .profile;
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = profile.worker_threads() {
                builder.worker_threads(threads);
            }
            let runtime = builder
                .max_blocking_threads(profile.max_blocking_threads())
                .enable_all()
                .build()?;
            let result = runtime.block_on(async {
                // The watchdog proves the runtime still schedules tasks; systemd restarts a
                // wedged agent when the pings stop.
                let watchdog = tokio::spawn(systemd::run_watchdog(|| async { true }));
                let result =
                    peer::agent::run_with_readiness(&config_path, super::shutdown_signal(), || {
                        systemd::notify_ready("harvesting and serving shares")
                    })
                    .await;
                systemd::notify_stopping();
                watchdog.abort();
                result
            });
            result.context("peer agent failed")
        }
    }
}

fn parse_simulated(spec: &str) -> anyhow::Result<SimulatedSourceConfig> {
    Ok(spec.parse()?)
}

fn parse_feed(spec: &str) -> anyhow::Result<FeedConfig> {
    let mut parts = spec.rsplitn(3, ':');
    let h = parts.next().context("feed needs PATH:BITS:H")?.parse()?;
    let bits = parts.next().context("feed needs PATH:BITS:H")?.parse()?;
    let path = PathBuf::from(parts.next().context("feed needs PATH:BITS:H")?);
    Ok(FeedConfig {
        path,
        bits_per_sample: bits,
        min_entropy_per_sample: h,
    })
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let listen = if args.listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/0".into(),
            "/ip4/0.0.0.0/udp/0/quic-v1".into(),
        ]
    } else {
        args.listen
    };
    let config = PeerConfig {
        coordinator: args.coordinator,
        region: args.region,
        operator: args.operator,
        data_dir: args.data_dir.clone(),
        listen,
        kad_server: false,
        relay_server: args.relay_server,
        relay_reservation: match args.relay_reservation {
            ReservationArg::Auto => RelayReservation::Auto,
            ReservationArg::Always => RelayReservation::Always,
            ReservationArg::Never => RelayReservation::Never,
        },
        relays: args.relays,
        store_capacity: 4096,
        contribution_interval_s: args.contribution_interval,
        heartbeat_interval_s: args.heartbeat_interval,
        fetch_rate_per_s: 20.0,
        profile: if args.low_memory {
            ResourceProfile::LowMemory
        } else {
            ResourceProfile::Standard
        },
        metrics: args.metrics,
        // Kept out of the config file: it goes to its own 0600 file below.
        join_token: None,
        sources: SourcesConfig {
            detect_hardware: !args.no_hardware,
            system_root: PathBuf::from("/"),
            simulated: args
                .simulated
                .iter()
                .map(|s| parse_simulated(s))
                .collect::<anyhow::Result<_>>()?,
            feed: args.feed.as_deref().map(parse_feed).transpose()?,
            assess_samples: args.assess_samples,
            only: args.only_sources.clone(),
            ..SourcesConfig::default()
        },
    };
    let config_path = args
        .config
        .unwrap_or_else(|| args.data_dir.join("peer.toml"));
    // Everything is checked before anything is written: a refused command leaves no file behind
    // and can be run again as typed, corrected.
    config.validate().map_err(anyhow::Error::msg)?;
    let target = systemd::config_target(&config_path)?;
    let settings = toml::to_string_pretty(&config).context("encoding the config")?;
    let key = NodeKey::generate(&mut UnwrapErr(SysRng));
    let share_key = protocols::share_box::BoxSecret::generate(&mut UnwrapErr(SysRng));
    let mut written = super::Written::default();
    written.create_dir_all(&args.data_dir)?;
    let result = (|| -> anyhow::Result<()> {
        written.secret(&config.identity_path(), key.secret_bytes())?;
        written.secret(&config.share_key_path(), share_key.to_bytes().as_ref())?;
        if let Some(token) = &args.join_token {
            written.secret(&config.join_token_path(), token.trim().as_bytes())?;
        }
        systemd::write_config(&mut written, &config_path, &target, &settings, |path| {
            Ok(config.save_new(path)?)
        })?;
        PeerConfig::load(&config_path).context("the written config does not load back")?;
        Ok(())
    })();
    if let Err(e) = result {
        written.undo();
        return Err(e);
    }
    let peer_id = peer::identity::peer_id(&key.node_id()).context("identity")?;
    outln!(
        "peer initialised in {} (config {})",
        args.data_dir.display(),
        config_path.display()
    );
    outln!("node id {}", key.node_id());
    outln!("peer id {peer_id}");
    outln!(
        "share key {} (the shares this device holds are boxed to it)",
        protocols::share_box::fingerprint(&share_key.public())
    );
    outln!(
        "enrol it on the coordinator with: entroshard coordinator enrol {peer_id} --region {} --operator {}",
        config.region,
        config.operator
    );
    Ok(())
}
