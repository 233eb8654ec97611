//! `coordinator backup FILE`: the coordinator's identity, master keys, config and a consistent
//! snapshot of its database (one read transaction, taken by the running coordinator over its
//! admin socket, or on the database when it is stopped), encrypted under a passphrase into a
//! new 0600 file (decision 0046, docs/protocol/backup-format.md).

use super::passphrase::{self, Purpose};
use anyhow::{Context, bail};
use coordinator::admin::{AdminAnswer, AdminCall};
use coordinator::backup::{self, GatherError, Summary};
use coordinator::db::DbSnapshot;
use std::path::{Path, PathBuf};

/// Options of `coordinator backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (never over an existing file).
    pub file: PathBuf,
    /// Data directory.
    #[arg(long, default_value_os_t = super::data_dir::default_data_dir())]
    pub data_dir: PathBuf,
    /// The config file to include (default `<data-dir>/coordinator.toml`, else the packaged
    /// `/etc/entroshard/coordinator.toml` when it names this data directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Read the passphrase from this file's first line (else `ENTROSHARD_BACKUP_PASSPHRASE`,
    /// else it is asked on the terminal).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

/// Snapshots taken before one whose sessions' keys are all in `master.key` (a master-key
/// rotation can finish between the snapshot and the read of the file).
const ATTEMPTS: usize = 3;

/// Runs `coordinator backup`.
pub fn run(runtime: &tokio::runtime::Runtime, args: BackupArgs) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(&args.file).is_ok() {
        bail!(
            "{} already exists; a backup is never written over a file",
            args.file.display()
        );
    }
    let config = config_path(&args)?;
    let passphrase = passphrase::read(args.passphrase_file.as_deref(), Purpose::Backup)?;
    let mut attempt = 0;
    let (contents, summary) = loop {
        attempt += 1;
        let snapshot = snapshot(runtime, &args.data_dir)?;
        match backup::gather(
            &args.data_dir,
            Some(&config),
            snapshot,
            coordinator::service::now_ms(),
        ) {
            Ok(gathered) => break gathered,
            Err(GatherError::Inconsistent(e)) if attempt < ATTEMPTS => {
                tracing::debug!(error = %e, "master key changed during the snapshot; taking it again");
            }
            Err(e) => return Err(e).context("gathering the backup"),
        }
    };
    let bytes = backup::seal_contents(&contents, passphrase.as_bytes())?;
    drop(contents);
    peer::secret_file::write_new(&args.file, &bytes)?;
    report(&args.file, bytes.len(), &summary);
    Ok(())
}

/// The config to include: `--config`, else `<data-dir>/coordinator.toml`, else the packaged one
/// when it names this data directory.
fn config_path(args: &BackupArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.config {
        return Ok(path.clone());
    }
    let own = args.data_dir.join("coordinator.toml");
    if own.exists() {
        return Ok(own);
    }
    if let Some(packaged) = super::data_dir::packaged_config_naming(&args.data_dir) {
        return Ok(packaged);
    }
    bail!(
        "no config for {}: neither {} nor a packaged config naming it; pass --config FILE",
        args.data_dir.display(),
        own.display()
    )
}

/// The database at one committed state: from the running coordinator, else from its database.
fn snapshot(runtime: &tokio::runtime::Runtime, data_dir: &Path) -> anyhow::Result<DbSnapshot> {
    match super::answer_of(runtime, data_dir, AdminCall::Snapshot)? {
        AdminAnswer::Snapshot(snapshot) => Ok(*snapshot),
        AdminAnswer::Error(e) => bail!("{e}"),
        _ => bail!("the coordinator answered the snapshot request with something else"),
    }
}

fn report(file: &Path, len: usize, s: &Summary) {
    outln!(
        "backup written to {} ({len} bytes, mode 0600)",
        file.display()
    );
    outln!("coordinator     {}", s.peer_id);
    match s.retiring {
        None => outln!("master key      {}", s.master_key),
        Some(r) => outln!("master key      {} (and {r}, retiring)", s.master_key),
    }
    outln!(
        "holds           identity.key, master.key, the config, the database: {} sessions, {} enrolled peers, {} audit entries",
        s.sessions,
        s.enrolled,
        s.audit_entries
    );
    outln!(
        "a session rotated after this backup cannot be served from it: back up more often than rotation_period_s"
    );
}
