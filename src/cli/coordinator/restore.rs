//! `coordinator restore FILE`: a coordinator's data directory rebuilt from a backup, only into
//! an empty or new directory, whole or not at all. The backup is opened and checked in memory
//! first; the files are written (0600, through synced temporary files) into a staging
//! directory inside the target, the database restored and read back there, and only then moved
//! into place. A refusal or failure before that leaves the target as it was (decision 0046).

use super::passphrase::{self, Purpose};
use crate::cli::Written;
use crate::cli::systemd::{self, ConfigTarget};
use anyhow::{Context, bail};
use coordinator::backup::{self, BackupContents, Header, MAX_BACKUP_BYTES, Summary};
use coordinator::db::{AuditEntry, CoordinatorDb};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Options of `coordinator restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// The data directory to restore into: new, or empty.
    #[arg(long, default_value_os_t = super::data_dir::default_data_dir())]
    pub data_dir: PathBuf,
    /// Where to write the config (default `<data-dir>/coordinator.toml`); a comment-only
    /// template there, such as the package's `/etc/entroshard/coordinator.toml`, is filled in.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Read the passphrase from this file's first line (else `ENTROSHARD_BACKUP_PASSPHRASE`,
    /// else it is asked on the terminal).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

/// The files of a data directory a restore writes, in the order they are moved into place.
const FILES: [&str; 3] = ["identity.key", "master.key", "coordinator.redb"];

/// Runs `coordinator restore`.
pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let target = absolute(&args.data_dir)?;
    let created = check_target(&target)?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| target.join("coordinator.toml"));
    let config_target = systemd::config_target(&config_path)?;
    let bytes = read_backup(&args.file)?;
    let passphrase = passphrase::read(args.passphrase_file.as_deref(), Purpose::Restore)?;
    let (header, contents, summary) = backup::open_contents(&bytes, passphrase.as_bytes())
        .with_context(|| format!("{} is refused, nothing was written", args.file.display()))?;
    drop(passphrase);
    let settings = match contents.config()? {
        Some(mut config) => {
            config.data_dir = target.clone();
            Some(toml::to_string_pretty(&config).context("encoding the config")?)
        }
        None => None,
    };
    let mut written = Written::default();
    if created {
        written.create_dir_all(&target)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", target.display()))?;
    }
    let staging = match stage(&target, &contents, &args.file, &header) {
        Ok(staging) => staging,
        Err(e) => {
            written.undo();
            return Err(e);
        }
    };
    drop(contents);
    // From here on the files move into place; each later failure takes back what was moved.
    let mut placed = Vec::new();
    let moved = (|| -> anyhow::Result<()> {
        for name in FILES {
            let to = target.join(name);
            std::fs::rename(staging.join(name), &to)
                .with_context(|| format!("moving {name} into {}", target.display()))?;
            placed.push(to);
        }
        sync_dir(&target)?;
        if let Some(settings) = &settings {
            match &config_target {
                ConfigTarget::New => {
                    write_config(&config_path, settings)?;
                    placed.push(config_path.clone());
                }
                ConfigTarget::Template(template) => {
                    written.template(&config_path, template);
                    systemd::fill_template(&config_path, settings, template)?;
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = moved {
        for file in placed.iter().rev() {
            let _ = std::fs::remove_file(file);
        }
        written.undo();
        return Err(e);
    }
    report(&target, &config_path, settings.is_some(), &header, &summary);
    Ok(())
}

/// `path` made absolute (the restored config names the data directory by it).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Refuses anything but a new path or an empty directory (never a symlink); `true` when the
/// directory must be created.
fn check_target(target: &Path) -> anyhow::Result<bool> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).with_context(|| format!("reading {}", target.display())),
    };
    if meta.file_type().is_symlink() {
        bail!(
            "{} is a symlink; a restore never writes through one",
            target.display()
        );
    }
    if !meta.is_dir() {
        bail!("{} exists and is not a directory", target.display());
    }
    let mut entries =
        std::fs::read_dir(target).with_context(|| format!("reading {}", target.display()))?;
    if entries.next().is_some() {
        bail!(
            "{} is not empty; a restore writes only into an empty or new directory, never over a coordinator",
            target.display()
        );
    }
    Ok(false)
}

/// Reads the backup whole, refusing a file larger than any backup before reading it.
fn read_backup(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_BACKUP_BYTES as u64 {
        bail!(
            "{} is {len} bytes, larger than any backup this build writes; nothing was written",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes every file into a new staging directory inside `target` and reads the database back
/// as a coordinator's start does; removes the staging directory on failure.
fn stage(
    target: &Path,
    contents: &BackupContents,
    file: &Path,
    header: &Header,
) -> anyhow::Result<PathBuf> {
    let suffix: u64 = rand::random();
    let staging = target.join(format!(".restore-{suffix:016x}"));
    std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let result = (|| -> anyhow::Result<()> {
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))?;
        peer::secret_file::write_new(&staging.join("identity.key"), &contents.identity_key)?;
        peer::secret_file::write_new(&staging.join("master.key"), &contents.master_key)?;
        let db_path = staging.join("coordinator.redb");
        let db = CoordinatorDb::open(&db_path)?;
        std::fs::set_permissions(&db_path, std::fs::Permissions::from_mode(0o600))?;
        db.restore_snapshot(&contents.database)?;
        db.check_restored()?;
        coordinator::master_key::open(&staging.join("master.key"), &db)?;
        db.mark_restored(header.created_at_ms)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        db.append_audit(AuditEntry::new(
            coordinator::service::now_ms(),
            coordinator::admin::database_actor(),
            "restore",
            name,
            format!(
                "backup taken {}, master key {}",
                coordinator::admin::rfc3339::format_ms(header.created_at_ms),
                header.master_key
            ),
        ))?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(staging),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Writes a new config file (not secret: 0644), synced.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn report(target: &Path, config: &Path, with_config: bool, header: &Header, s: &Summary) {
    outln!("restored into {}", target.display());
    outln!("coordinator     {}", s.peer_id);
    match s.retiring {
        None => outln!("master key      {}", s.master_key),
        Some(r) => outln!(
            "master key      {} (and {r}, retiring: its sessions are re-sealed once the coordinator runs)",
            s.master_key
        ),
    }
    outln!(
        "backup taken    {}",
        coordinator::admin::rfc3339::format_ms(header.created_at_ms)
    );
    outln!(
        "database        {} sessions, {} enrolled peers, {} audit entries",
        s.sessions,
        s.enrolled,
        s.audit_entries
    );
    if with_config {
        outln!(
            "config          {} (data_dir = {})",
            config.display(),
            target.display()
        );
    } else {
        outln!(
            "config          none in the backup: write one with the listen addresses the peers dial"
        );
    }
    outln!(
        "start it with: entroshard coordinator run --data-dir {}",
        target.display()
    );
}
