//! One event of the fault timeline carried out on the fleet: a device leaving (for a while or
//! for good), coming back or joining, and a partition or a regional outage starting or ending.

use super::{SimError, enrolment};
use crate::Role;
use crate::faults::{Event, Timeline, exponential};
use crate::fleet::{Down, Fleet};
use crate::report::RunFacts;
use coordinator::db::CoordinatorDb;
use coordinator::service::{self, AdminRequest};
use std::sync::Arc;

/// Applies one event; returns what to log.
pub(super) async fn apply(
    fleet: &mut Fleet,
    timeline: &mut Timeline,
    coordinator: &service::Handle,
    db: &Arc<CoordinatorDb>,
    event: &Event,
    at_s: f64,
    facts: &mut RunFacts,
) -> Result<Option<String>, SimError> {
    let scenario_churn = fleet.scenario().churn.clone();
    let what = match event {
        Event::Leave => {
            let Some(index) = fleet.random_running() else {
                return Ok(None);
            };
            let permanent = fleet.unit() < scenario_churn.permanent_fraction;
            let back_after = exponential(fleet.unit(), scenario_churn.offline_mean_s.max(0.1));
            if let Some(p) = fleet.peers.get_mut(index) {
                p.down.insert(Down::Churn);
                p.gone = permanent;
            }
            fleet.reconcile(index).await?;
            facts.left.insert(index);
            if permanent {
                facts.left_for_good += 1;
            } else {
                timeline.push(at_s + back_after, Event::Return { index });
            }
            None
        }
        Event::Return { index } => {
            if let Some(p) = fleet.peers.get_mut(*index) {
                p.down.remove(&Down::Churn);
            }
            fleet.reconcile(*index).await?;
            facts.returned += 1;
            None
        }
        Event::Join => {
            let index = fleet.add(Role::Honest)?;
            if let Some(p) = fleet.peers.get(index) {
                let e = enrolment(&p.region, &p.operator);
                let (store, node) = (db.clone(), p.node);
                let _ = tokio::task::spawn_blocking(move || store.enrol(&node, &e)).await;
                let _ = coordinator
                    .admin
                    .send(AdminRequest::Enrol {
                        node: p.node,
                        region: p.region.clone(),
                        operator: p.operator.clone(),
                    })
                    .await;
            }
            fleet.reconcile(index).await?;
            facts.joined += 1;
            None
        }
        Event::PartitionStart { regions } | Event::PartitionEnd { regions } => {
            let start = matches!(event, Event::PartitionStart { .. });
            let affected = set_down(fleet, regions, Down::Partition, start).await?;
            Some(format!(
                "partition of {} ({affected} devices) {}",
                regions.join(", "),
                if start { "starts" } else { "heals" }
            ))
        }
        Event::OutageStart { region } | Event::OutageEnd { region } => {
            let start = matches!(event, Event::OutageStart { .. });
            let affected =
                set_down(fleet, std::slice::from_ref(region), Down::Outage, start).await?;
            Some(format!(
                "region {region} ({affected} devices) {}",
                if start { "goes down" } else { "comes back" }
            ))
        }
    };
    Ok(what)
}

/// Marks (or clears) `why` on every device in `regions` and brings each in line; returns how many
/// devices that was.
async fn set_down(
    fleet: &mut Fleet,
    regions: &[String],
    why: Down,
    start: bool,
) -> Result<usize, SimError> {
    let affected: Vec<usize> = fleet
        .peers
        .iter()
        .filter(|p| regions.contains(&p.region))
        .map(|p| p.index)
        .collect();
    for &i in &affected {
        if let Some(p) = fleet.peers.get_mut(i) {
            if start {
                p.down.insert(why);
            } else {
                p.down.remove(&why);
            }
        }
        fleet.reconcile(i).await?;
    }
    Ok(affected.len())
}
