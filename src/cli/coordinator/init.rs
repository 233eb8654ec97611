//! `coordinator init`: a new coordinator's identity, sealing master key, database and config,
//! every input checked before anything is written, and everything written undone on failure.

use super::data_dir::env_data_dir;
use crate::cli::systemd;
use anyhow::{Context, bail};
use coordinator::config::CoordinatorConfig;
use coordinator::db::{CoordinatorDb, CoordinatorSecrets};
use protocols::identity::NodeKey;
use rand::rngs::SysRng;
use rand_core::{Rng, UnwrapErr};
use std::path::PathBuf;

/// Options of `coordinator init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Data directory (default `ENTROSHARD_DATA_DIR`, else `entroshard-coordinator`).
    #[arg(long, default_value_os_t = env_data_dir().unwrap_or_else(|| PathBuf::from("entroshard-coordinator")))]
    pub data_dir: PathBuf,
    /// Listen addresses (repeatable); default TCP 7400 and QUIC 7400 on every interface.
    #[arg(long)]
    pub listen: Vec<String>,
    /// Credited bits required before a key is derived.
    #[arg(long)]
    pub min_credited_bits: Option<u64>,
    /// Distinct contributors required before a key is derived.
    #[arg(long)]
    pub min_contributors: Option<usize>,
    /// Seconds between attestation challenges.
    #[arg(long)]
    pub attestation_interval: Option<f64>,
    /// Seconds between crediting rounds (per-peer credit caps reset each round).
    #[arg(long)]
    pub credit_round: Option<f64>,
    /// Raw samples asked for in each entropy audit of a source (default 100000; fewer audit
    /// slow sensors sooner, with wider error; 0 turns audits off); `entropy_audit_samples`.
    #[arg(long)]
    pub entropy_audit_samples: Option<u32>,
    /// Serve Prometheus /metrics, /health and /ready on this address (e.g. 127.0.0.1:9400).
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Longest a ticket lives, seconds (default 3600); `ticket_ttl_s` in the config.
    #[arg(long)]
    pub ticket_ttl: Option<u64>,
    /// Where to write the config (default `<data-dir>/coordinator.toml`). A comment-only
    /// template there, such as the package's `/etc/entroshard/coordinator.toml`, is filled in.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub(super) fn init(args: InitArgs) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| args.data_dir.join("coordinator.toml"));
    let listen = if args.listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/7400".into(),
            "/ip4/0.0.0.0/udp/7400/quic-v1".into(),
        ]
    } else {
        args.listen
    };
    let mut config = CoordinatorConfig::new(args.data_dir.clone(), listen);
    if let Some(v) = args.min_credited_bits {
        config.min_credited_bits = v;
    }
    if let Some(v) = args.min_contributors {
        config.min_contributors = v;
    }
    if let Some(v) = args.attestation_interval {
        config.attestation_interval_s = v;
    }
    if let Some(v) = args.credit_round {
        config.credit_round_s = v;
    }
    if let Some(v) = args.entropy_audit_samples {
        config.entropy_audit_samples = v;
    }
    config.metrics = args.metrics;
    if let Some(v) = args.ticket_ttl {
        config.ticket_ttl_s = v;
    }
    // Everything is checked before anything is written: a refused command leaves no file behind
    // and can be run again as typed, corrected.
    config.validate()?;
    let target = systemd::config_target(&config_path)?;
    let settings = toml::to_string_pretty(&config).context("encoding the config")?;
    for existing in [
        config.identity_path(),
        config.master_key_path(),
        config.db_path(),
    ] {
        if std::fs::symlink_metadata(&existing).is_ok() {
            bail!(
                "{} already exists: {} already holds a coordinator",
                existing.display(),
                args.data_dir.display()
            );
        }
    }
    // Peers running this very build are allowed; other builds must be allowed explicitly.
    let own = peer::agent::measure::binary_sha256().context("hashing the running binary")?;
    let mut os = UnwrapErr(SysRng);
    let key = NodeKey::generate(&mut os);
    let mut written = crate::cli::Written::default();
    written.create_dir_all(&args.data_dir)?;
    let result = (|| -> anyhow::Result<()> {
        std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", args.data_dir.display()))?;
        written.secret(&config.identity_path(), key.secret_bytes())?;
        coordinator::master_key::create(&config.master_key_path())?;
        written.file(&config.master_key_path());
        written.file(&config.db_path());
        let db = CoordinatorDb::open(&config.db_path())?;
        std::fs::set_permissions(config.db_path(), std::fs::Permissions::from_mode(0o600))?;
        let mut secrets = CoordinatorSecrets {
            noise_static: [0; 32],
        };
        os.fill_bytes(&mut secrets.noise_static);
        db.init_secrets(&secrets)?;
        db.allow_binary(own)?;
        systemd::write_config(&mut written, &config_path, &target, &settings, |path| {
            Ok(config.save_new(path)?)
        })
    })();
    if let Err(e) = result {
        written.undo();
        return Err(e);
    }
    let peer_id = peer::identity::peer_id(&key.node_id()).context("identity")?;
    outln!("coordinator initialised in {}", args.data_dir.display());
    outln!("peer id {peer_id}");
    outln!("allowed peer binary {}", protocols::ids::hex8(&own));
    outln!(
        "peers pin it with: entroshard peer init --coordinator /ip4/<address>/tcp/<port>/p2p/{peer_id} ..."
    );
    Ok(())
}
