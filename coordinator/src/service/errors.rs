//! Why the coordinator's requests to devices and its rotations fail, typed so the loop can count
//! and react by kind and the logs name the cause.

use crate::core::PlacementError;
use crate::db::DbError;
use peer::node::NodeError;
use protocols::entropy::assess::AssessError;
use protocols::ids::{Epoch, NodeId};
use protocols::wire::{Refusal, WireError};
use thiserror::Error;

/// Why a holder did not acknowledge an order.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The holder's node id is not a valid Ed25519 key (it cannot be dialled).
    #[error("holder id is not a valid peer id")]
    BadHolderId,
    /// The request did not complete (no connection, timeout, stream closed).
    #[error(transparent)]
    Request(#[from] NodeError),
    /// The answer could not be decoded.
    #[error("undecodable answer: {0}")]
    Undecodable(#[from] WireError),
    /// The holder refused the order.
    #[error("refused: {0}")]
    Refused(Refusal),
}

/// Why a rotation did not commit (the session stays on its epoch).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum RotationError {
    /// A holder chosen again still owes the deletion of a rolled-back epoch e+1.
    #[error("holder {} still owes the deletion of a rolled-back epoch {epoch}; rotation waits", node.short())]
    DeletionStillOwed {
        /// The holder.
        node: NodeId,
        /// The epoch it must delete first.
        epoch: Epoch,
    },
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] DbError),
    /// A blocking task ended without an answer.
    #[error("database task ended without an answer: {0}")]
    Task(String),
    /// Placing the new epoch failed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The placement stopped without an outcome (never expected).
    #[error("the placement stopped without a decision")]
    Undecided,
}

/// Why an entropy audit gave no estimate (the source is not credited until one succeeds).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The request did not complete.
    #[error("request failed: {0}")]
    Request(#[from] NodeError),
    /// No answer within the bound.
    #[error("no answer in time")]
    NoAnswer,
    /// The answer could not be decoded.
    #[error("malformed answer: {0}")]
    Malformed(#[from] WireError),
    /// The device refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The window is of another source or of a width outside 1..=8.
    #[error("answer for another source or of a bad width")]
    WrongWindow,
    /// More samples than were asked.
    #[error("{got} samples where {asked} were asked")]
    TooManySamples {
        /// Samples in the window.
        got: usize,
        /// Samples asked for.
        asked: u32,
    },
    /// Fewer samples than the estimators need.
    #[error("{got} samples, fewer than the {min} the estimators need")]
    TooFewSamples {
        /// Samples in the window.
        got: usize,
        /// Samples the estimators need.
        min: usize,
    },
    /// The estimators refused the window.
    #[error("assessment: {0}")]
    Assessment(#[from] AssessError),
    /// The coordinator is shutting down, or the assessment thread ended without an answer.
    #[error("assessment did not run: {0}")]
    NotRun(String),
}

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
