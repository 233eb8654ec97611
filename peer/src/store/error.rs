//! Why a share-store operation failed, mapped from [`DbError`] where the cause is generic.

use crate::db::DbError;
use protocols::ids::{Epoch, SessionId};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a share-store operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The file is not a share store (garbage, another program's database) or its contents fail
    /// their checks. Nothing was written to it by the failed open.
    #[error("share store {} is corrupt or not a share store: {detail}", path.display())]
    Corrupt {
        /// The store's file.
        path: PathBuf,
        /// What was found, naming the record's key where one record is at fault.
        detail: String,
    },
    /// A different share is already stored for this (session, epoch) slot.
    #[error("a different share is already stored for session {session} epoch {epoch}")]
    Conflict {
        /// Session of the slot.
        session: SessionId,
        /// Epoch of the slot.
        epoch: Epoch,
    },
    /// The store holds as many shares as its capacity allows.
    #[error("share store is full: it holds its capacity of {capacity} shares")]
    Full {
        /// The capacity in force.
        capacity: u32,
    },
    /// The encoded share is larger than a record may be.
    #[error("share record of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Encoded length of the record.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// Another process (or another handle in this one) has the store open.
    #[error("share store {} is already open elsewhere", path.display())]
    Locked {
        /// The store's file.
        path: PathBuf,
    },
    /// The operating system refused an operation on the store's file.
    #[error("I/O error on share store {} while {op}: {detail}", path.display())]
    Io {
        /// The store's file.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// The error's kind, for callers that react to it (e.g. `StorageFull`).
        kind: std::io::ErrorKind,
        /// The error's text.
        detail: String,
    },
    /// redb failed in a way that is none of the above.
    #[error("share store {} failed while {op}: {detail}", path.display())]
    Database {
        /// The store's file.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// redb's error text.
        detail: String,
    },
}

impl StoreError {
    /// An I/O error on `path` during `op`.
    pub(crate) fn io(path: &Path, op: &'static str, e: &std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            op,
            kind: e.kind(),
            detail: e.to_string(),
        }
    }

    /// A corruption finding on `path`.
    pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// Maps any redb error met on `path` during `op`.
    pub(crate) fn redb(path: &Path, op: &'static str, e: impl Into<redb::Error>) -> Self {
        DbError::redb(path, op, e).into()
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Corrupt { path, detail } => Self::Corrupt { path, detail },
            DbError::Locked { path } => Self::Locked { path },
            DbError::Io {
                path,
                op,
                kind,
                detail,
            } => Self::Io {
                path,
                op,
                kind,
                detail,
            },
            DbError::Database { path, op, detail } => Self::Database { path, op, detail },
        }
    }
}
