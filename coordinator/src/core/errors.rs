//! Why the coordinator's rotations and entropy audits fail, typed so the loop can count and
//! react by kind and the logs name the cause.

use crate::core::PlacementError;
use crate::db::DbError;
use peer::node::NodeError;
use protocols::entropy::assess::AssessError;
use protocols::ids::{Epoch, NodeId};
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
