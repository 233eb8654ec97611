//! Scenario files (TOML): the fleet, its faults and misbehaviour, the workload and the timing.
//!
//! Every field has a default, so a scenario names only what it changes; unknown fields are
//! refused so a typo is an error, not a silently ignored setting. Times are wall-clock seconds
//! of the run (the protocols' timers run for real); `time_scale` only says how many seconds of
//! device life one wall second stands for, for the report's labels.

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod validate;

/// A scenario that could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("scenario {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML does not fit the schema.
    #[error("scenario {path}: {detail}")]
    Parse {
        /// File.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A value is out of range.
    #[error("scenario field {field}: {reason}")]
    Invalid {
        /// Field.
        field: String,
        /// Why.
        reason: String,
    },
}

/// A whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in the report.
    pub name: String,
    /// One sentence on what it shows.
    pub description: String,
    /// Devices at the start (the CLI's `--peers` overrides it).
    pub peers: usize,
    /// Seed of every random choice the simulator makes (the CLI's `--seed` overrides it).
    pub seed: u64,
    /// Wall seconds the workload and the faults run, after the warm-up.
    pub duration_s: f64,
    /// Longest wait for the first session (the pool must first hold enough credited entropy).
    pub warmup_max_s: f64,
    /// Seconds of device life one wall second stands for (report labels only).
    pub time_scale: f64,
    /// Regions (failure domains) with their share of the devices.
    pub regions: Vec<Weighted>,
    /// Operators (administrative owners) with their share of the devices.
    pub operators: Vec<Weighted>,
    /// Power supply of the devices.
    pub battery: Battery,
    /// Devices leaving and joining.
    pub churn: Churn,
    /// Network partitions.
    pub partitions: Vec<Partition>,
    /// Whole regions going down.
    pub outages: Vec<Outage>,
    /// Fractions of misbehaving devices by kind.
    pub byzantine: Byzantine,
    /// Session creation and fetches.
    pub sessions: Sessions,
    /// Protocol timers.
    pub timing: Timing,
    /// Mesh shape.
    pub network: Network,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "unnamed".into(),
            description: String::new(),
            peers: 50,
            seed: 1,
            duration_s: 60.0,
            warmup_max_s: 120.0,
            time_scale: 60.0,
            regions: ["eu-west", "eu-north", "us-east", "us-west", "ap-south"]
                .iter()
                .map(|r| Weighted::new(r, 1.0))
                .collect(),
            operators: ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
                .iter()
                .map(|o| Weighted::new(o, 1.0))
                .collect(),
            battery: Battery::default(),
            churn: Churn::default(),
            partitions: Vec::new(),
            outages: Vec::new(),
            byzantine: Byzantine::default(),
            sessions: Sessions::default(),
            timing: Timing::default(),
            network: Network::default(),
        }
    }
}

/// A label with a relative weight.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weighted {
    /// Label.
    pub name: String,
    /// Relative weight (> 0).
    pub weight: f64,
}

impl Weighted {
    /// A label with a weight.
    pub fn new(name: &str, weight: f64) -> Self {
        Self {
            name: name.into(),
            weight,
        }
    }
}

/// Power supply distribution.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Battery {
    /// Fraction of devices on mains.
    pub mains_fraction: f64,
    /// Battery charge of the others is uniform in `[min_percent, max_percent]`.
    pub min_percent: u8,
    /// Upper bound of the charge.
    pub max_percent: u8,
}

impl Default for Battery {
    fn default() -> Self {
        Self {
            mains_fraction: 0.7,
            min_percent: 5,
            max_percent: 100,
        }
    }
}

/// Devices leaving and joining.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Churn {
    /// Fraction of the running devices that leave per minute.
    pub leave_per_min: f64,
    /// Mean seconds a leaving device stays away (exponential) before it comes back with its
    /// identity and its share store.
    pub offline_mean_s: f64,
    /// Fraction of leaving devices that never come back.
    pub permanent_fraction: f64,
    /// New devices enrolled and started per minute, as a fraction of the initial fleet.
    pub join_per_min: f64,
}

/// One network partition: the devices of `regions` cannot reach, nor be reached by, the
/// coordinator and the requesters for `duration_s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Start, seconds into the run.
    pub at_s: f64,
    /// Length.
    pub duration_s: f64,
    /// The regions cut off.
    pub regions: Vec<String>,
}

/// One region outage: every device of `region` stops (power cut) and comes back after
/// `duration_s` with its share store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// Start, seconds into the run.
    pub at_s: f64,
    /// Length.
    pub duration_s: f64,
    /// The region.
    pub region: String,
}

/// Fractions of the fleet that misbehave, by kind (each device has at most one kind).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Byzantine {
    /// A sensor stuck at one value (its own health tests cut it off).
    pub stuck: f64,
    /// A device that skips its pipeline and sends biased raw bits as "debiased" blocks.
    pub biased: f64,
    /// A cloned device image: it sends the very blocks another device sends, just after it.
    pub cloned: f64,
    /// A holder whose stored shares are altered on disk.
    pub tampered_shares: f64,
    /// A holder that stores shares but answers every fetch with "not found".
    pub withholding: f64,
    /// A device that republishes its own earlier contributions (same and fresh sequence numbers).
    pub replayed: f64,
    /// A device whose heartbeats claim another region and operator and mains power.
    pub false_heartbeats: f64,
    /// A device running a binary the coordinator does not allow.
    pub failing_attestation: f64,
}

impl Byzantine {
    /// Every kind with its fraction, in a fixed order.
    pub fn kinds(&self) -> [(crate::ByzantineKind, f64); 8] {
        use crate::ByzantineKind as K;
        [
            (K::Stuck, self.stuck),
            (K::Biased, self.biased),
            (K::Cloned, self.cloned),
            (K::TamperedShares, self.tampered_shares),
            (K::Withholding, self.withholding),
            (K::Replayed, self.replayed),
            (K::FalseHeartbeats, self.false_heartbeats),
            (K::FailingAttestation, self.failing_attestation),
        ]
    }
}

/// The workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sessions {
    /// Shares per session.
    pub n: u8,
    /// Threshold.
    pub k: u8,
    /// Session lifetime, seconds.
    pub ttl_s: u64,
    /// Sessions created per minute (until `max_live` are alive).
    pub create_per_min: f64,
    /// Most sessions alive at once.
    pub max_live: usize,
    /// Key fetches per minute, over all requesters.
    pub fetch_per_min: f64,
    /// Requesters (each is named by every session).
    pub requesters: usize,
    /// Fetches in flight at most.
    pub max_in_flight: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            n: 9,
            k: 4,
            ttl_s: 3600,
            create_per_min: 12.0,
            max_live: 20,
            fetch_per_min: 120.0,
            requesters: 3,
            max_in_flight: 32,
        }
    }
}

/// Protocol timers and coordinator thresholds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// Seconds between heartbeats of a device.
    pub heartbeat_s: f64,
    /// Seconds between contributions of a device.
    pub contribution_s: f64,
    /// Seconds between attestation challenges.
    pub attestation_s: f64,
    /// Seconds an attestation stays valid.
    pub attestation_validity_s: f64,
    /// Seconds a device has to answer a challenge.
    pub attestation_answer_s: f64,
    /// A heartbeat older than this makes a device ineligible to hold shares.
    pub heartbeat_max_age_s: f64,
    /// Seconds between rotations of every session.
    pub rotation_period_s: f64,
    /// Seconds between crediting rounds.
    pub credit_round_s: f64,
    /// Credited bits the pool must hold before a key is drawn.
    pub min_credited_bits: u64,
    /// Distinct contributors required before a key is drawn.
    pub min_contributors: usize,
    /// Seconds a contribution's credit is held for a duplicate from another device (0: none).
    pub credit_hold_s: f64,
    /// Seconds after an epoch is committed that the coordinator checks every holder's share
    /// (0: only rotations check).
    pub holder_audit_s: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat_s: 3.0,
            contribution_s: 6.0,
            attestation_s: 10.0,
            attestation_validity_s: 40.0,
            attestation_answer_s: 8.0,
            heartbeat_max_age_s: 12.0,
            rotation_period_s: 60.0,
            credit_round_s: 5.0,
            min_credited_bits: 2048,
            min_contributors: 3,
            credit_hold_s: 5.0,
            holder_audit_s: 3.0,
        }
    }
}

/// Mesh shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Fraction of devices that subscribe to the gossip topics and relay them; the others are
    /// leaves that only publish (see decision 0011).
    pub relay_fraction: f64,
    /// Gossipsub mesh degree of relays and the coordinator.
    pub gossip_mesh_n: usize,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            relay_fraction: 0.05,
            gossip_mesh_n: 4,
        }
    }
}
