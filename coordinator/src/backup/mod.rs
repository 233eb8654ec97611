//! Backup files of a coordinator (decision 0046, format in docs/protocol/backup-format.md):
//! everything a coordinator needs to start again — identity, master keys, config, database —
//! encrypted under a passphrase. `envelope` is the encryption, `contents` what is inside;
//! this module gathers the files of a data directory and puts the two together.

mod contents;
mod envelope;

pub use contents::{BackupContents, CONTENTS_VERSION, Summary};
pub use envelope::{
    BackupError, FORMAT_VERSION, HEADER_LEN, Header, KdfParams, MAGIC, MAX_BACKUP_BYTES, open, seal,
};

use crate::db::DbSnapshot;
use crate::master_key::{self, MasterKeyError};
use std::path::Path;
use thiserror::Error;

/// Why the files of a data directory could not be gathered into a backup.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GatherError {
    /// `identity.key` is missing, too open or malformed.
    #[error(transparent)]
    Identity(#[from] peer::identity::IdentityError),
    /// `master.key` is missing, too open or malformed.
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    /// The config file could not be read.
    #[error("reading {}: {source}", path.display())]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The gathered files and the database do not fit together.
    #[error(transparent)]
    Inconsistent(#[from] BackupError),
}

/// Gathers a backup's contents: `identity.key` and `master.key` of `data_dir` (read and checked
/// as `coordinator run` reads them), the config at `config` if given, and `database`. Fails if
/// a session of `database` is sealed under a key `master.key` does not hold (a master-key
/// rotation finished between the snapshot and this read: take the snapshot again).
pub fn gather(
    data_dir: &Path,
    config: Option<&Path>,
    database: DbSnapshot,
    now_ms: u64,
) -> Result<(BackupContents, Summary), GatherError> {
    let identity = peer::identity::read_key(&data_dir.join("identity.key"))?;
    let ring = master_key::read(&data_dir.join("master.key"))?;
    let config = match config {
        None => None,
        Some(path) => {
            Some(
                std::fs::read_to_string(path).map_err(|source| GatherError::Config {
                    path: path.to_path_buf(),
                    source,
                })?,
            )
        }
    };
    let contents = BackupContents {
        v: CONTENTS_VERSION,
        created_at_ms: now_ms,
        identity_key: *identity.secret_bytes(),
        master_key: ring.encode().to_vec(),
        config,
        database,
    };
    let summary = contents.check()?;
    Ok((contents, summary))
}

/// Encrypts `contents` under `passphrase` into a whole backup file, with the parameters
/// backups are written with and a fresh salt and nonce from the OS generator.
pub fn seal_contents(contents: &BackupContents, passphrase: &[u8]) -> Result<Vec<u8>, BackupError> {
    let summary = contents.check()?;
    seal(
        &contents.encode(),
        passphrase,
        KdfParams::WRITTEN,
        crate::os::os_random(),
        crate::os::os_random(),
        summary.master_key,
        contents.created_at_ms,
    )
}

/// Opens a whole backup file and checks its contents ([`BackupContents::check`]) and that they
/// hold the master key its header names.
pub fn open_contents(
    bytes: &[u8],
    passphrase: &[u8],
) -> Result<(Header, BackupContents, Summary), BackupError> {
    let (header, plain) = open(bytes, passphrase)?;
    let contents = BackupContents::decode(&plain)?;
    let summary = contents.check()?;
    if summary.master_key != header.master_key {
        return Err(BackupError::Contents(format!(
            "its header names master key {} but it holds {}",
            header.master_key, summary.master_key
        )));
    }
    Ok((header, contents, summary))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
