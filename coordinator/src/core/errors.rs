//! Why the coordinator's rotations, entropy audits, holder orders and holders' proofs fail, typed
//! so the loop can count and react by kind and the logs name the cause.

use crate::core::PlacementError;
use crate::db::DbError;
use peer::node::NodeError;
use protocols::entropy::assess::AssessError;
use protocols::ids::{Epoch, NodeId, ShareIndex};
use protocols::share_proof::ProofError;
use protocols::wire::{Refusal, WireError};
use thiserror::Error;

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

/// Why a holder's proof of possession does not prove the share it was asked about.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ProofMismatch {
    /// The proof is of another share or epoch than the holder holds.
    #[error(
        "proved share {proved_index} of epoch {proved_epoch}, holds share {index} of epoch {epoch}"
    )]
    OtherShare {
        /// The share index proved.
        proved_index: ShareIndex,
        /// The epoch proved.
        proved_epoch: Epoch,
        /// The share index the holder holds.
        index: ShareIndex,
        /// The epoch the holder holds.
        epoch: Epoch,
    },
    /// The proof does not verify.
    #[error("share proof: {0}")]
    Proof(#[from] ProofError),
}

/// Why no answer to a request to a peer came (an attestation challenge).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum NoAnswer {
    /// The request did not complete (no connection, stream closed, refused by the transport).
    #[error(transparent)]
    Request(#[from] NodeError),
    /// Nothing came within the bound.
    #[error("no answer in time")]
    Timeout,
}
