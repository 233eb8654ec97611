//! The encrypted envelope of a backup file (docs/protocol/backup-format.md): a fixed 92-byte
//! header, then the contents sealed with ChaCha20-Poly1305 under a key derived from a
//! passphrase with Argon2id (RFC 9106), the whole header as associated data. A check value
//! derived from the same passphrase tells a wrong passphrase from altered contents. Pure: the
//! caller passes the salt, nonce and time in.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use protocols::sealing::MasterKeyId;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// The first 8 bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"ESBACKUP";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Key derivation 1: Argon2id, version 0x13.
const KDF_ARGON2ID: u8 = 1;
/// Cipher 1: ChaCha20-Poly1305 (RFC 8439).
const AEAD_CHACHA20_POLY1305: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 92;
/// Length of the AEAD tag after the ciphertext.
const TAG_LEN: usize = 16;
/// The largest backup file read (and written): its contents are decrypted in memory.
pub const MAX_BACKUP_BYTES: usize = 512 << 20;

const INFO_AEAD: &[u8] = b"entroshard/v1/backup/aead-key";
const INFO_CHECK: &[u8] = b"entroshard/v1/backup/passphrase-check";

/// Argon2id's cost parameters, as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// What backups are written with: RFC 9106's second recommended option (64 MiB, 3 passes,
    /// 4 lanes), which a small server computes in about a second.
    pub const WRITTEN: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };
    /// Most memory a file may ask for (1 GiB): a hostile header must not exhaust the machine.
    pub const MAX_M_KIB: u32 = 1024 * 1024;
    /// Most passes a file may ask for.
    pub const MAX_T: u32 = 16;
    /// Most lanes a file may ask for.
    pub const MAX_P: u32 = 16;

    fn within_limits(&self) -> bool {
        self.m_kib <= Self::MAX_M_KIB
            && (1..=Self::MAX_T).contains(&self.t)
            && (1..=Self::MAX_P).contains(&self.p)
            && self.m_kib >= 8 * self.p
    }
}

/// A backup's header: everything that can be read without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// Argon2id salt.
    pub salt: [u8; 16],
    /// AEAD nonce.
    pub nonce: [u8; 12],
    /// The id of the master key that seals new shares in the backed-up coordinator.
    pub master_key: MasterKeyId,
    /// When the backup was taken, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Length of the ciphertext with its tag.
    pub sealed_len: u64,
    /// Passphrase check value.
    pub check: [u8; 16],
}

/// Why a backup could not be written or opened. Opening refuses before anything is written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackupError {
    /// The file does not start with [`MAGIC`].
    #[error("not an entroshard backup (no ESBACKUP header)")]
    NotABackup,
    /// Another format version.
    #[error("backup format version {0} is not one this build reads ({FORMAT_VERSION})")]
    Version(u16),
    /// Unknown algorithms.
    #[error(
        "the backup names key derivation {kdf} and cipher {aead}, which this build does not know"
    )]
    Algorithms {
        /// Key derivation id.
        kdf: u8,
        /// Cipher id.
        aead: u8,
    },
    /// Argon2id parameters beyond this build's limits.
    #[error(
        "the backup asks for Argon2id with m = {} KiB, t = {}, p = {}, beyond this build's limits \
         (m ≤ 1 GiB, t ≤ 16, p ≤ 16)",
        .0.m_kib, .0.t, .0.p
    )]
    KdfLimits(KdfParams),
    /// Fewer bytes than the header announces.
    #[error("the backup is truncated: {len} bytes where its header announces {expected}")]
    Truncated {
        /// Bytes present.
        len: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// More bytes than the header announces.
    #[error("the backup has {len} bytes where its header announces {expected}: bytes were added")]
    Padded {
        /// Bytes present.
        len: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// Larger than [`MAX_BACKUP_BYTES`].
    #[error("the backup is {len} bytes, over this build's limit of {MAX_BACKUP_BYTES}")]
    TooLarge {
        /// Bytes.
        len: u64,
    },
    /// The passphrase does not derive the header's check value.
    #[error("wrong passphrase (or the backup's header was altered)")]
    WrongPassphrase,
    /// The ciphertext or header fails authentication although the passphrase is right.
    #[error("the backup was altered: its contents fail their authentication tag")]
    Tampered,
    /// Argon2 refused its input.
    #[error("key derivation: {0}")]
    Kdf(String),
    /// The decrypted contents are not a backup's contents.
    #[error("the backup's contents do not decode: {0}")]
    Contents(String),
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        h[10] = KDF_ARGON2ID;
        h[11] = AEAD_CHACHA20_POLY1305;
        h[12..16].copy_from_slice(&self.kdf.m_kib.to_be_bytes());
        h[16..20].copy_from_slice(&self.kdf.t.to_be_bytes());
        h[20..24].copy_from_slice(&self.kdf.p.to_be_bytes());
        h[24..40].copy_from_slice(&self.salt);
        h[40..52].copy_from_slice(&self.nonce);
        h[52..60].copy_from_slice(&self.master_key.0);
        h[60..68].copy_from_slice(&self.created_at_ms.to_be_bytes());
        h[68..76].copy_from_slice(&self.sealed_len.to_be_bytes());
        h[76..92].copy_from_slice(&self.check);
        h
    }

    /// Reads the header of a backup file's first bytes, checking magic, version, algorithms
    /// and cost limits (not the length: see [`open`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, BackupError> {
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(BackupError::NotABackup);
        }
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(BackupError::Truncated {
                len: bytes.len() as u64,
                expected: HEADER_LEN as u64,
            });
        };
        let array = |range: std::ops::Range<usize>| -> Result<&[u8], BackupError> {
            h.get(range).ok_or(BackupError::NotABackup)
        };
        let u32_at = |at: usize| -> Result<u32, BackupError> {
            let b: [u8; 4] = array(at..at + 4)?
                .try_into()
                .map_err(|_| BackupError::NotABackup)?;
            Ok(u32::from_be_bytes(b))
        };
        let u64_at = |at: usize| -> Result<u64, BackupError> {
            let b: [u8; 8] = array(at..at + 8)?
                .try_into()
                .map_err(|_| BackupError::NotABackup)?;
            Ok(u64::from_be_bytes(b))
        };
        let fixed = |range: std::ops::Range<usize>| array(range);
        let version = u16::from_be_bytes([h[8], h[9]]);
        if version != FORMAT_VERSION {
            return Err(BackupError::Version(version));
        }
        if (h[10], h[11]) != (KDF_ARGON2ID, AEAD_CHACHA20_POLY1305) {
            return Err(BackupError::Algorithms {
                kdf: h[10],
                aead: h[11],
            });
        }
        let kdf = KdfParams {
            m_kib: u32_at(12)?,
            t: u32_at(16)?,
            p: u32_at(20)?,
        };
        if !kdf.within_limits() {
            return Err(BackupError::KdfLimits(kdf));
        }
        let copy = |range: std::ops::Range<usize>, out: &mut [u8]| -> Result<(), BackupError> {
            out.copy_from_slice(fixed(range)?);
            Ok(())
        };
        let mut header = Header {
            kdf,
            salt: [0; 16],
            nonce: [0; 12],
            master_key: MasterKeyId([0; 8]),
            created_at_ms: u64_at(60)?,
            sealed_len: u64_at(68)?,
            check: [0; 16],
        };
        copy(24..40, &mut header.salt)?;
        copy(40..52, &mut header.nonce)?;
        copy(52..60, &mut header.master_key.0)?;
        copy(76..92, &mut header.check)?;
        Ok(header)
    }

    /// The file's total length as the header announces it.
    fn expected_len(&self) -> u64 {
        (HEADER_LEN as u64).saturating_add(self.sealed_len)
    }
}

/// Encrypts `plain` under `passphrase` into a whole backup file. `salt` and `nonce` must be
/// fresh random bytes for every backup.
pub fn seal(
    plain: &[u8],
    passphrase: &[u8],
    kdf: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
    master_key: MasterKeyId,
    created_at_ms: u64,
) -> Result<Vec<u8>, BackupError> {
    let sealed_len = plain.len().saturating_add(TAG_LEN);
    if sealed_len.saturating_add(HEADER_LEN) > MAX_BACKUP_BYTES {
        return Err(BackupError::TooLarge {
            len: sealed_len.saturating_add(HEADER_LEN) as u64,
        });
    }
    let keys = derive(passphrase, &salt, kdf)?;
    let header = Header {
        kdf,
        salt,
        nonce,
        master_key,
        created_at_ms,
        sealed_len: sealed_len as u64,
        check: keys.check,
    };
    let aad = header.encode();
    let cipher = ChaCha20Poly1305::new(&(*keys.aead).into());
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .map_err(|_| BackupError::TooLarge {
            len: sealed_len as u64,
        })?;
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.extend_from_slice(&aad);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens a whole backup file: header, length, passphrase, then the authentication tag. Returns
/// the header and the decrypted contents (zeroed on drop).
pub fn open(bytes: &[u8], passphrase: &[u8]) -> Result<(Header, Zeroizing<Vec<u8>>), BackupError> {
    if bytes.len() > MAX_BACKUP_BYTES {
        return Err(BackupError::TooLarge {
            len: bytes.len() as u64,
        });
    }
    let header = Header::parse(bytes)?;
    let (len, expected) = (bytes.len() as u64, header.expected_len());
    if len < expected {
        return Err(BackupError::Truncated { len, expected });
    }
    if len > expected {
        return Err(BackupError::Padded { len, expected });
    }
    let keys = derive(passphrase, &header.salt, header.kdf)?;
    if !bool::from(keys.check.ct_eq(&header.check)) {
        return Err(BackupError::WrongPassphrase);
    }
    let (aad, sealed) = bytes.split_at(HEADER_LEN);
    let cipher = ChaCha20Poly1305::new(&(*keys.aead).into());
    let plain = cipher
        .decrypt(&header.nonce.into(), Payload { msg: sealed, aad })
        .map_err(|_| BackupError::Tampered)?;
    Ok((header, Zeroizing::new(plain)))
}

/// The keys one passphrase derives for one salt.
struct Keys {
    aead: Zeroizing<[u8; 32]>,
    check: [u8; 16],
}

/// Argon2id(passphrase, salt) → 32 bytes, expanded by HKDF-SHA256 into the AEAD key and the
/// check value.
fn derive(passphrase: &[u8], salt: &[u8; 16], kdf: KdfParams) -> Result<Keys, BackupError> {
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| BackupError::Kdf(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut blocks = vec![Block::default(); argon.params().block_count()];
    let mut root = Zeroizing::new([0u8; 32]);
    let hashed = argon.hash_password_into_with_memory(passphrase, salt, &mut *root, &mut blocks);
    blocks.zeroize();
    hashed.map_err(|e| BackupError::Kdf(e.to_string()))?;
    let hk = Hkdf::<Sha256>::new(None, &*root);
    let mut aead = Zeroizing::new([0u8; 32]);
    let mut check = [0u8; 16];
    // Both lengths are far below HKDF's limit.
    let _ = hk.expand(INFO_AEAD, &mut *aead);
    let _ = hk.expand(INFO_CHECK, &mut check);
    Ok(Keys { aead, check })
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
