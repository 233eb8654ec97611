//! Why the coordinator could not start; the errors of its requests to holders and of its
//! decisions (rotations, entropy audits) live in the core and are named here too.

pub use crate::core::errors::{AuditError, OrderError, RotationError};
use crate::db::DbError;
use peer::node::NodeError;
use thiserror::Error;

/// Why the coordinator could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The database holds no secrets yet.
    #[error("the database has no secrets: run `coordinator init`")]
    NotInitialised,
    /// The sealing master keys could not be read or trusted.
    #[error(transparent)]
    MasterKey(#[from] crate::master_key::MasterKeyError),
    /// Loading the database ended without an answer.
    #[error("loading the database: {0}")]
    Task(String),
    /// The network node could not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The credit policy in the configuration is invalid.
    #[error("credit policy: {0}")]
    Credit(#[from] protocols::entropy::credit::CreditError),
    /// The clone detector could not be built.
    #[error("clone detector: {0}")]
    Clones(#[from] protocols::entropy::CloneError),
    /// The metrics listener could not bind.
    #[error("metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// The admin socket could not be served.
    #[error("admin socket {}: {source}", path.display())]
    AdminSocket {
        /// The socket's path.
        path: std::path::PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
}
