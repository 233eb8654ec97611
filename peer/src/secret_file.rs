//! Secret files (identity keys, join tokens) written whole or not at all: mode 0600 from the
//! start, never over an existing file and never through a symlink.
//!
//! The bytes go to a fresh temporary file in the destination's directory, are synced, and the
//! file is then hard-linked to its name: `link(2)` fails when the name exists (a file, or a
//! symlink, which it does not follow), so a secret is never replaced, and a crash leaves either
//! no file or the whole one (decision 0042).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a secret file was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// Something is already at the path.
    #[error("{path} already exists; a secret file is never overwritten")]
    Exists {
        /// The destination.
        path: String,
    },
    /// The path is a symlink (possibly dangling), which is never followed.
    #[error("{path} is a symlink; a secret file is never written through one")]
    Symlink {
        /// The destination.
        path: String,
    },
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file being written.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to a new file at `path` with mode 0600, atomically and without replacing or
/// following anything already there.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let shown = path.display().to_string();
    refuse_existing(path)?;
    let dir = parent_dir(path);
    let io = |source| SecretFileError::Io {
        path: shown.clone(),
        source,
    };
    let temp = create_temp(&dir, path).map_err(io)?;
    let written = write_synced(&temp.path, bytes)
        .and_then(|()| std::fs::hard_link(&temp.path, path))
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => {
                refuse_existing(path)
                    .err()
                    .unwrap_or(SecretFileError::Exists {
                        path: shown.clone(),
                    })
            }
            _ => io(source),
        });
    drop(temp);
    written?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Writes `bytes` to `path` with mode 0600 through a synced temporary file renamed over it: an
/// existing regular file is replaced whole (a ticket or key fetched again), a symlink is
/// refused rather than followed or replaced.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(SecretFileError::Symlink { path: shown });
        }
        Ok(meta) if !meta.is_file() => return Err(SecretFileError::Exists { path: shown }),
        _ => {}
    }
    let dir = parent_dir(path);
    let io = |source| SecretFileError::Io {
        path: shown.clone(),
        source,
    };
    let temp = create_temp(&dir, path).map_err(io)?;
    write_synced(&temp.path, bytes)
        .and_then(|()| std::fs::rename(&temp.path, path))
        .map_err(io)?;
    drop(temp);
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Refuses a path that exists or is a symlink.
fn refuse_existing(path: &Path) -> Result<(), SecretFileError> {
    let shown = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(SecretFileError::Symlink { path: shown() })
        }
        Ok(_) => Err(SecretFileError::Exists { path: shown() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SecretFileError::Io {
            path: shown(),
            source,
        }),
    }
}

/// A temporary file removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates an empty 0600 file `.<name>.<random>.tmp` in `dir` (`O_EXCL`, so never an existing
/// file or a planted symlink).
fn create_temp(dir: &Path, path: &Path) -> std::io::Result<TempFile> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempts = 0;
    loop {
        let suffix: u64 = rand::random();
        let temp = dir.join(format!(".{name}.{suffix:016x}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(_) => return Ok(TempFile { path: temp }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_is_written_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        write_new(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, b"old").unwrap();
        let err = write_new(&path, b"new").unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replacing_rewrites_a_file_whole_at_0600_and_refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticket");
        std::fs::write(&path, b"old").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let link = dir.path().join("key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(
            replace(&link, b"x")
                .unwrap_err()
                .to_string()
                .contains("is a symlink")
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_symlink_at_the_destination_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let path = dir.path().join("identity.key");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = write_new(&path, b"secret").unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(!target.exists(), "the dangling link was followed");
    }
}
