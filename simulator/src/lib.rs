//! The entroshard simulator: thousands of real peer agents, the real coordinator and real
//! requesters in one process over libp2p's in-memory transport, with churn, partitions, region
//! outages and misbehaving devices, measured into a report with plots.
//!
//! Nothing here re-implements a protocol: devices are [`peer::agent::embedded`] agents (the same
//! handlers, contribution task and heartbeats as `peer run`), the coordinator is
//! [`coordinator::service::spawn_with_node`], and fetches go through [`requester::Requester`].
//! The simulator only builds them, feeds them simulated entropy, injects faults and watches.

mod byzantine;
mod faults;
mod fleet;
mod observe;
pub mod report;
mod run;
pub mod scenario;
mod workload;

pub use run::{Options, Progress, SimError, run};
pub use scenario::Scenario;

use serde::{Deserialize, Serialize};

/// The ways a simulated device can misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByzantineKind {
    /// Sensor stuck at one value.
    Stuck,
    /// Raw biased bits sent as debiased blocks.
    Biased,
    /// Another device's blocks, sent just after it.
    Cloned,
    /// Stored shares altered.
    TamperedShares,
    /// Fetches answered "not found".
    Withholding,
    /// Own contributions sent again.
    Replayed,
    /// Heartbeats with false labels and power.
    FalseHeartbeats,
    /// A binary the coordinator does not allow.
    FailingAttestation,
}

impl ByzantineKind {
    /// Kinds whose devices record when their first lie reached the network (a published biased,
    /// replayed or cloned block), so one that left before lying is known to have done nothing.
    pub fn marks_first_lie(self) -> bool {
        matches!(self, Self::Biased | Self::Replayed | Self::Cloned)
    }

    /// The scenario-file name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stuck => "stuck",
            Self::Biased => "biased",
            Self::Cloned => "cloned",
            Self::TamperedShares => "tampered_shares",
            Self::Withholding => "withholding",
            Self::Replayed => "replayed",
            Self::FalseHeartbeats => "false_heartbeats",
            Self::FailingAttestation => "failing_attestation",
        }
    }
}

/// What a simulated device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the agent as shipped.
    Honest,
    /// Misbehaves in one way.
    Byzantine(ByzantineKind),
}
