//! Node identities on disk and their libp2p forms: NodeKey ↔ Keypair, NodeId ↔ PeerId.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use std::path::Path;
use thiserror::Error;

/// Identity file problems.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file does not hold a 32-byte key.
    #[error("key file {path} does not hold a valid 32-byte secret key")]
    Malformed {
        /// File.
        path: String,
    },
    /// The file is readable by others.
    #[error("key file {path} has mode {mode:o}; it must be 0600")]
    TooOpen {
        /// File.
        path: String,
        /// Mode found.
        mode: u32,
    },
    /// A new identity file was not written.
    #[error("identity file: {0}")]
    Write(crate::secret_file::SecretFileError),
    /// The key bytes were refused by libp2p.
    #[error("libp2p refused the key: {0}")]
    Libp2p(String),
}

/// The libp2p keypair of a node key.
pub fn keypair(key: &NodeKey) -> Result<Keypair, IdentityError> {
    let mut secret = *key.secret_bytes();
    Keypair::ed25519_from_bytes(&mut secret).map_err(|e| IdentityError::Libp2p(e.to_string()))
}

/// The PeerId of a node id (exact for Ed25519 keys).
pub fn peer_id(node: &NodeId) -> Option<PeerId> {
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(node.as_bytes()).ok()?;
    Some(PublicKey::from(public).to_peer_id())
}

/// The node id behind a PeerId, when it is an inlined Ed25519 key.
pub fn node_id(peer: &PeerId) -> Option<NodeId> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    let public = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = public.try_into_ed25519().ok()?;
    Some(NodeId(ed.to_bytes()))
}

/// Writes a new identity file with mode 0600, whole or not at all; refuses to overwrite an
/// existing file or to follow a symlink ([`crate::secret_file::write_new`]).
pub fn write_new_key(path: &Path, key: &NodeKey) -> Result<(), IdentityError> {
    crate::secret_file::write_new(path, key.secret_bytes()).map_err(IdentityError::Write)
}

/// Reads an identity file, refusing one that others can read.
pub fn read_key(path: &Path) -> Result<NodeKey, IdentityError> {
    Ok(NodeKey::from_secret_bytes(&*read_secret_file(path)?))
}

/// The 32 bytes of a secret key file, refusing one that others can read or of another length.
pub(crate) fn read_secret_file(path: &Path) -> Result<zeroize::Zeroizing<[u8; 32]>, IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| IdentityError::Io {
        path: shown.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::TooOpen { path: shown, mode });
    }
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| IdentityError::Io {
            path: shown.clone(),
            source,
        })?);
    let secret: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::Malformed { path: shown })?;
    Ok(zeroize::Zeroizing::new(secret))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn node_id_and_peer_id_convert_both_ways() {
        let key = NodeKey::from_secret_bytes(&[9; 32]);
        let pid = peer_id(&key.node_id()).unwrap();
        assert_eq!(pid, keypair(&key).unwrap().public().to_peer_id());
        assert_eq!(node_id(&pid), Some(key.node_id()));
    }

    #[test]
    fn identity_file_is_written_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        let key = NodeKey::from_secret_bytes(&[5; 32]);
        write_new_key(&path, &key).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_new_key(&path, &NodeKey::from_secret_bytes(&[6; 32])).is_err());
        assert_eq!(read_key(&path).unwrap().node_id(), key.node_id());
    }

    #[test]
    fn identity_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        write_new_key(&path, &NodeKey::from_secret_bytes(&[5; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_key(&path),
            Err(IdentityError::TooOpen { mode: 0o644, .. })
        ));
    }
}
