//! The device's share key on disk (`share-key.key`, 0600): the ristretto255 secret every share
//! this device holds is boxed to (docs/protocol/redistribution.md, "Keys"). Written like the
//! identity, never overwritten; a device without one (an install from before share keys)
//! makes it once at start.

use crate::identity::IdentityError;
use protocols::share_box::BoxSecret;
use std::path::Path;

/// The share key's file name inside the data directory.
pub const FILE_NAME: &str = "share-key.key";

/// Writes a new share key file with mode 0600, whole or not at all; refuses to overwrite an
/// existing file or to follow a symlink ([`crate::secret_file::write_new`]).
pub fn write_new(path: &Path, key: &BoxSecret) -> Result<(), IdentityError> {
    crate::secret_file::write_new(path, key.to_bytes().as_ref()).map_err(IdentityError::Write)
}

/// Reads a share key file, refusing one that others can read or that is not a key.
pub fn read(path: &Path) -> Result<BoxSecret, IdentityError> {
    let bytes = crate::identity::read_secret_file(path)?;
    BoxSecret::from_bytes(&bytes).ok_or_else(|| IdentityError::Malformed {
        path: path.display().to_string(),
    })
}

/// The share key at `path`, created (from the OS generator) when there is none; `true` when
/// it was created now.
pub fn load_or_create(path: &Path) -> Result<(BoxSecret, bool), IdentityError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok((read(path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = BoxSecret::generate(&mut rand_core::UnwrapErr(rand::rngs::SysRng));
            write_new(path, &key)?;
            Ok((key, true))
        }
        Err(source) => Err(IdentityError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_share_key_is_created_once_0600_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (made, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.public(), made.public());
        assert!(write_new(&path, &BoxSecret::from_bytes(&[1; 32]).unwrap()).is_err());
    }

    #[test]
    fn a_share_key_readable_by_others_or_not_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        write_new(&path, &BoxSecret::from_bytes(&[1; 32]).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::TooOpen { .. })
        ));
        let junk = dir.path().join("junk.key");
        crate::secret_file::write_new(&junk, &[0xff; 32]).unwrap();
        assert!(matches!(read(&junk), Err(IdentityError::Malformed { .. })));
        let short = dir.path().join("short.key");
        crate::secret_file::write_new(&short, &[1; 31]).unwrap();
        assert!(matches!(read(&short), Err(IdentityError::Malformed { .. })));
    }
}
