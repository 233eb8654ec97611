//! Running totals of the coordinator loop (rotations by cause, intake counters), for reports.

use super::State;
pub use crate::admin::requests::CoordinatorFigures;

pub(super) fn of(state: &State) -> CoordinatorFigures {
    CoordinatorFigures {
        rotations_by_cause: state.ledger.rotations_by_cause().clone(),
        rotating: state.ledger.busy().len(),
        holder_audits_due: state.audits.due_count(super::now_ms()),
        intake: state.intake.stats().clone(),
    }
}
