//! The coordinator's configuration file (TOML), written by `coordinator init`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Config file problems (the same shape as the peer's `peer::config::ConfigError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Read or write failed.
    #[error("config {}: {source}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema, or a setting is out of range.
    #[error("config {} is invalid: {detail}", path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A setting out of range ([`CoordinatorConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// No listen address at all.
    #[error("no listen address; the coordinator would listen on nothing (expected {expected})")]
    NoListenAddress {
        /// The forms a listen address takes.
        expected: &'static str,
    },
    /// A listen address that cannot be listened on.
    #[error("{0}")]
    ListenAddress(String),
    /// A duration or interval that must be above zero.
    #[error("{name} must be positive")]
    NotPositive {
        /// The setting.
        name: &'static str,
    },
    /// A duration that must be zero or more.
    #[error("{name} must be 0 or more")]
    Negative {
        /// The setting.
        name: &'static str,
    },
    /// A count that must be at least one.
    #[error("{name} must be at least 1")]
    Zero {
        /// The setting.
        name: &'static str,
    },
}

/// How the coordinator runs. A key it does not know is refused by name (a misspelt setting
/// would otherwise be ignored silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Data directory (identity, database, admin socket).
    pub data_dir: PathBuf,
    /// Listen addresses (TCP and QUIC).
    pub listen: Vec<String>,
    /// Credited min-entropy (bits) the pool must hold before a key is derived.
    #[serde(default = "d_min_bits")]
    pub min_credited_bits: u64,
    /// Distinct attested contributors required before a key is derived.
    #[serde(default = "d_min_contributors")]
    pub min_contributors: usize,
    /// Per-peer credit cap per round, bits.
    #[serde(default = "d_peer_cap")]
    pub per_peer_cap_bits: u64,
    /// Seconds between crediting rounds (per-peer caps reset).
    #[serde(default = "d_round")]
    pub credit_round_s: f64,
    /// Seconds between attestation challenges to each peer.
    #[serde(default = "d_attest")]
    pub attestation_interval_s: f64,
    /// Seconds an attestation stays valid.
    #[serde(default = "d_attest_valid")]
    pub attestation_validity_s: f64,
    /// Seconds a peer has to answer a challenge.
    #[serde(default = "d_answer")]
    pub attestation_answer_s: f64,
    /// A heartbeat older than this makes a peer ineligible to hold shares.
    #[serde(default = "d_heartbeat_age")]
    pub heartbeat_max_age_s: f64,
    /// A contribution older than this is refused as stale.
    #[serde(default = "d_freshness")]
    pub contribution_max_age_s: f64,
    /// Seconds between rotations of every session.
    #[serde(default = "d_rotation")]
    pub rotation_period_s: f64,
    /// Seconds a contribution's credit is held before it counts; another peer sending the same
    /// block within it cancels the credit of both (decision 0013). 0 credits at once.
    #[serde(default = "d_credit_hold")]
    pub credit_hold_s: f64,
    /// Duplicate events with one partner, later in a clear majority, before a peer is
    /// quarantined as a clone (decision 0013).
    #[serde(default = "d_clone_events")]
    pub clone_min_events: u32,
    /// Seconds after a session's epoch is committed that the coordinator fetches every share
    /// itself and quarantines holders whose share is bad or withheld (decision 0014); 0: only
    /// rotations check.
    #[serde(default = "d_holder_audit")]
    pub holder_audit_s: f64,
    /// Raw samples asked for in an entropy audit (docs/protocol/entropy-audit.md); 0 turns
    /// audits off and credits every source from its accounting alone (the simulator).
    #[serde(default = "d_audit_samples")]
    pub entropy_audit_samples: u32,
    /// Mean seconds between two audits of one source (exponentially spread; the first comes
    /// with its first contribution).
    #[serde(default = "d_audit_interval")]
    pub entropy_audit_s: f64,
    /// Longest session lifetime a requester may ask for.
    #[serde(default = "d_max_ttl")]
    pub max_session_ttl_s: u64,
    /// Longest a ticket lives, seconds (it never outlives its session). A requester's `fetch`
    /// asks for a new one when it has expired; a removed requester gets none (decision 0045).
    #[serde(default = "d_ticket_ttl")]
    pub ticket_ttl_s: u64,
    /// Prometheus `/metrics`, `/health` and `/ready` listen address; off when absent.
    #[serde(default)]
    pub metrics: Option<std::net::SocketAddr>,
}

fn d_min_bits() -> u64 {
    2048
}
fn d_min_contributors() -> usize {
    3
}
fn d_peer_cap() -> u64 {
    1024
}
fn d_round() -> f64 {
    10.0
}
fn d_attest() -> f64 {
    30.0
}
fn d_attest_valid() -> f64 {
    120.0
}
fn d_answer() -> f64 {
    10.0
}
fn d_heartbeat_age() -> f64 {
    60.0
}
fn d_freshness() -> f64 {
    120.0
}
fn d_rotation() -> f64 {
    3600.0
}
fn d_credit_hold() -> f64 {
    5.0
}
fn d_clone_events() -> u32 {
    3
}
fn d_holder_audit() -> f64 {
    60.0
}
/// Raw samples asked for in an entropy audit unless the config says otherwise.
pub const DEFAULT_ENTROPY_AUDIT_SAMPLES: u32 = 100_000;

fn d_audit_samples() -> u32 {
    DEFAULT_ENTROPY_AUDIT_SAMPLES
}
fn d_audit_interval() -> f64 {
    600.0
}
fn d_ticket_ttl() -> u64 {
    3600
}
fn d_max_ttl() -> u64 {
    30 * 24 * 3600
}

impl CoordinatorConfig {
    /// Defaults for a data directory and listen addresses.
    pub fn new(data_dir: PathBuf, listen: Vec<String>) -> Self {
        Self {
            data_dir,
            listen,
            min_credited_bits: d_min_bits(),
            min_contributors: d_min_contributors(),
            per_peer_cap_bits: d_peer_cap(),
            credit_round_s: d_round(),
            attestation_interval_s: d_attest(),
            attestation_validity_s: d_attest_valid(),
            attestation_answer_s: d_answer(),
            heartbeat_max_age_s: d_heartbeat_age(),
            contribution_max_age_s: d_freshness(),
            rotation_period_s: d_rotation(),
            ticket_ttl_s: d_ticket_ttl(),
            credit_hold_s: d_credit_hold(),
            clone_min_events: d_clone_events(),
            holder_audit_s: d_holder_audit(),
            entropy_audit_samples: d_audit_samples(),
            entropy_audit_s: d_audit_interval(),
            max_session_ttl_s: d_max_ttl(),
            metrics: None,
        }
    }

    /// Identity file.
    pub fn identity_path(&self) -> PathBuf {
        self.data_dir.join("identity.key")
    }

    /// Sealing master key file (decision 0046).
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// Database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("coordinator.redb")
    }

    /// Admin socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |detail: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let config: Self = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        config.validate().map_err(|e| invalid(e.to_string()))?;
        Ok(config)
    }

    /// Checks every setting (what [`CoordinatorConfig::load`] refuses); `coordinator init` runs
    /// it before writing anything. At least one listen address is required: a coordinator that
    /// listens on nothing cannot be reached.
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.listen.is_empty() {
            return Err(SettingError::NoListenAddress {
                expected: peer::addr::LISTEN_FORMS,
            });
        }
        for l in &self.listen {
            peer::addr::listen_addr(l).map_err(SettingError::ListenAddress)?;
        }
        for (name, v) in [
            ("credit_round_s", self.credit_round_s),
            ("attestation_interval_s", self.attestation_interval_s),
            ("attestation_validity_s", self.attestation_validity_s),
            ("attestation_answer_s", self.attestation_answer_s),
            ("heartbeat_max_age_s", self.heartbeat_max_age_s),
            ("contribution_max_age_s", self.contribution_max_age_s),
            ("rotation_period_s", self.rotation_period_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SettingError::NotPositive { name });
            }
        }
        if self.ticket_ttl_s == 0 {
            return Err(SettingError::NotPositive {
                name: "ticket_ttl_s",
            });
        }
        for (name, v) in [
            ("credit_hold_s", self.credit_hold_s),
            ("holder_audit_s", self.holder_audit_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(SettingError::Negative { name });
            }
        }
        if self.clone_min_events == 0 {
            return Err(SettingError::Zero {
                name: "clone_min_events",
            });
        }
        Ok(())
    }

    /// The intake's duplicate rules from this configuration.
    pub fn duplicate_rules(&self) -> crate::intake::DuplicateRules {
        crate::intake::DuplicateRules {
            hold_ms: (self.credit_hold_s.max(0.0) * 1000.0) as u64,
            min_events: self.clone_min_events.max(1),
        }
    }

    /// Writes a new config file (refuses to overwrite).
    pub fn save_new(&self, path: &Path) -> Result<(), ConfigError> {
        use std::io::Write;
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io)
    }
}
