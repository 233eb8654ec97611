//! Running totals of the coordinator loop (rotations by cause, intake counters), for reports.

use super::State;
use crate::intake::IntakeStats;
use std::collections::BTreeMap;

/// A snapshot of the coordinator's running totals.
#[derive(Debug, Clone, Default)]
pub struct CoordinatorFigures {
    /// Committed rotations by cause (`Period`, `Repair`, `Quarantine`, `Manual`).
    pub rotations_by_cause: BTreeMap<String, u64>,
    /// Sessions rotating (or being deleted) right now.
    pub rotating: usize,
    /// Intake counters: FIPS passes and failures, clones, replays, credited bits.
    pub intake: IntakeStats,
}

pub(super) fn of(state: &State) -> CoordinatorFigures {
    CoordinatorFigures {
        rotations_by_cause: state.rotations_by_cause.clone(),
        rotating: state.rotating.len(),
        intake: state.intake.stats().clone(),
    }
}
