//! `master.key` on disk: created at `coordinator init`, replaced whole (temporary file, sync,
//! rename) when a master-key rotation starts or ends, checked at every start like
//! `identity.key` (mode 0600, exact format), and moved out of a database that still holds the
//! key (layouts before decision 0046): the file is written and synced first, the key removed
//! from the database after, so a crash in between leaves both copies and the next start
//! finishes the move.

use super::{FormatError, Keyring, MAX_FILE_BYTES};
use crate::db::{CoordinatorDb, DbError};
use peer::secret_file::{self, SecretFileError};
use protocols::ids::SessionId;
use protocols::sealing::{MasterKeyId, SealingMasterKey};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

/// Why the master keys could not be read, written or trusted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// Neither the file nor the database holds a master key.
    #[error(
        "{} is missing: it holds the key that seals every session's shares; restore the data \
         directory from a backup (`entroshard coordinator restore`)",
        path.display()
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file is readable by others than its owner.
    #[error("{} has mode {mode:o}; a master key file must be 0600", path.display())]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file's contents are not a master key file.
    #[error("{}: {source}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: FormatError,
    },
    /// The file is not a regular file, or is larger than any master key file.
    #[error("{} is not a master key file ({detail})", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Reading failed.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing failed, or something is in the way.
    #[error(transparent)]
    Write(#[from] SecretFileError),
    /// The database holds a master key the file does not.
    #[error(
        "{} holds master key {file} but the database still holds master key {database}: they \
         are not from one coordinator; restore both from one backup",
        path.display()
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The file's current key.
        file: MasterKeyId,
        /// The database's key.
        database: MasterKeyId,
    },
    /// A session is sealed under a key the file does not hold.
    #[error(
        "session {session} is sealed under master key {key}, which {} does not hold (it holds \
         {held}); restore the master key file and the database from one backup",
        path.display()
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The session.
        session: SessionId,
        /// Its key.
        key: MasterKeyId,
        /// The ids the file holds.
        held: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Writes a new `master.key` holding one fresh key from the OS generator (never over an
/// existing file); returns its id.
pub fn create(path: &Path) -> Result<MasterKeyId, MasterKeyError> {
    let raw = Zeroizing::new(crate::os::os_random::<32>());
    let ring = Keyring::single(SealingMasterKey::from_bytes(*raw));
    secret_file::write_new(path, &ring.encode())?;
    Ok(ring.current().id())
}

/// Replaces `master.key` with `ring`, whole or not at all (synced temporary file renamed over it).
pub fn replace(path: &Path, ring: &Keyring) -> Result<(), MasterKeyError> {
    Ok(secret_file::replace(path, &ring.encode())?)
}

/// Reads and checks `master.key`: a regular file, mode 0600 (no group or other bits), in the
/// format of `format`.
pub fn read(path: &Path) -> Result<Keyring, MasterKeyError> {
    read_if_present(path)?.ok_or_else(|| MasterKeyError::Missing {
        path: path.to_path_buf(),
    })
}

fn read_if_present(path: &Path) -> Result<Option<Keyring>, MasterKeyError> {
    let io = |source| MasterKeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let not_a_file = |detail: String| MasterKeyError::NotAFile {
        path: path.to_path_buf(),
        detail,
    };
    if !meta.is_file() {
        return Err(not_a_file(format!("a {:?}", meta.file_type())));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(MasterKeyError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(not_a_file(format!("{} bytes", meta.len())));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
    Keyring::decode(&bytes)
        .map(Some)
        .map_err(|source| MasterKeyError::Malformed {
            path: path.to_path_buf(),
            source,
        })
}

/// The master keys of a coordinator at start: reads `path`, moves a key the database still
/// holds into it first (see the module documentation), and checks that every session is sealed
/// under a key it holds. A session record without a key id predates key ids and was sealed
/// under the one key there was: it is stamped with that key's id, in the same transaction that
/// removes the key from the database.
pub fn open(path: &Path, db: &CoordinatorDb) -> Result<Keyring, MasterKeyError> {
    let legacy = db.legacy_sealing_master()?;
    let ring = match (read_if_present(path)?, &legacy) {
        (None, None) => {
            return Err(MasterKeyError::Missing {
                path: path.to_path_buf(),
            });
        }
        (None, Some(key)) => {
            let ring = Keyring::single(SealingMasterKey::from_bytes(*key.expose()));
            secret_file::write_new(path, &ring.encode())?;
            tracing::info!(
                path = %path.display(),
                key = %ring.current().id(),
                "sealing master key written to its own file; removing it from the database"
            );
            ring
        }
        (Some(ring), Some(key)) if ring.get(&key.id()).is_none() => {
            return Err(MasterKeyError::Mismatch {
                path: path.to_path_buf(),
                file: ring.current().id(),
                database: key.id(),
            });
        }
        (Some(ring), _) => ring,
    };
    let stamp = legacy.map_or(ring.current().id(), |k| k.id());
    let moved = db.finish_master_key_move(stamp)?;
    if moved.key_removed {
        tracing::info!(key = %stamp, "sealing master key removed from the database");
    }
    if moved.stamped > 0 {
        tracing::info!(sessions = moved.stamped, key = %stamp, "sessions stamped with their master key id");
    }
    for s in db.sessions()?.into_iter().filter(|s| !s.boxed) {
        let key = s.sealed_under.unwrap_or(stamp);
        if ring.get(&key).is_none() {
            return Err(MasterKeyError::UnknownKey {
                path: path.to_path_buf(),
                session: s.session,
                key,
                held: ring
                    .ids()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(ring)
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
