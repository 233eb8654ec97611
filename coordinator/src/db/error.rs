//! Why a coordinator-database operation failed: the generic database errors plus the coordinator's own.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a coordinator-database operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbError {
    /// The file is not a coordinator database (garbage, another program's database, a share
    /// store) or its contents fail their checks. Nothing was written to it by the failed open.
    #[error("coordinator database {} is corrupt or not one: {detail}", path.display())]
    Corrupt {
        /// The database's file.
        path: PathBuf,
        /// What was found, naming the table and key where one record is at fault.
        detail: String,
    },
    /// Another process (or another handle in this one) has the database open.
    #[error("coordinator database {} is already open elsewhere", path.display())]
    Locked {
        /// The database's file.
        path: PathBuf,
    },
    /// The operating system refused an operation on the database's file.
    #[error("I/O error on coordinator database {} while {op}: {detail}", path.display())]
    Io {
        /// The database's file.
        path: PathBuf,
        /// What the database was doing.
        op: &'static str,
        /// The error's kind, for callers that react to it (e.g. `StorageFull`).
        kind: std::io::ErrorKind,
        /// The error's text.
        detail: String,
    },
    /// redb failed in a way that is none of the above.
    #[error("coordinator database {} failed while {op}: {detail}", path.display())]
    Database {
        /// The database's file.
        path: PathBuf,
        /// What the database was doing.
        op: &'static str,
        /// redb's error text.
        detail: String,
    },
    /// The coordinator's secrets are already stored; they are never replaced.
    #[error("coordinator database {} already holds the coordinator's secrets", path.display())]
    AlreadyInitialised {
        /// The database's file.
        path: PathBuf,
    },
    /// A snapshot (from a backup) cannot be restored: nothing was written.
    #[error("the backup's database cannot be restored: {detail}")]
    BadSnapshot {
        /// What is wrong with it.
        detail: String,
    },
    /// The encoded record is larger than a record may be; nothing was written.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What kind of record it is.
        what: &'static str,
        /// Encoded length of the record.
        len: usize,
        /// Limit in force.
        max: usize,
    },
}

impl DbError {
    /// An I/O error on `path` during `op`.
    pub(super) fn io(path: &Path, op: &'static str, e: &std::io::Error) -> Self {
        peer::db::DbError::io(path, op, e).into()
    }

    /// A corruption finding on `path`.
    pub(super) fn corrupt(path: &Path, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// Maps any redb error met on `path` during `op`.
    pub(super) fn redb(path: &Path, op: &'static str, e: impl Into<redb::Error>) -> Self {
        peer::db::DbError::redb(path, op, e).into()
    }
}

impl From<peer::db::DbError> for DbError {
    fn from(e: peer::db::DbError) -> Self {
        use peer::db::DbError as E;
        match e {
            E::Corrupt { path, detail } => Self::Corrupt { path, detail },
            E::Locked { path } => Self::Locked { path },
            E::Io {
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
            E::Database { path, op, detail } => Self::Database { path, op, detail },
            // `peer::db::DbError` is non-exhaustive: a cause added there is at least reported.
            other => Self::Database {
                path: other.path().to_path_buf(),
                op: "using the database",
                detail: other.to_string(),
            },
        }
    }
}
