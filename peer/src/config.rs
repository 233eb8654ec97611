//! The device agent's configuration file (TOML), written by `peer init` and read by `peer run`.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

mod simulated_source;
pub use simulated_source::{SIMULATED_SOURCE_FORMS, SimulatedSourceConfig, SimulatedSourceError};

/// Config file problems.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Read or write failed.
    #[error("config {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config {path} is invalid: {detail}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

pub use crate::sources::feed::FeedConfig;

/// Which sources to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// Probe the real Linux sources (thermal, hwmon, IIO, interrupts, CPU load, hwrng, network
    /// counters, softnet, packet arrival timings, Wi-Fi levels, key timings, jitter).
    pub detect_hardware: bool,
    /// Root of sysfs/procfs (for tests; "/" on devices).
    pub system_root: PathBuf,
    /// Simulated sources.
    pub simulated: Vec<SimulatedSourceConfig>,
    /// External feed.
    pub feed: Option<FeedConfig>,
    /// Most samples of a source assessed at first start (SP 800-90B asks for 1,000,000).
    #[serde(default = "default_assess_samples")]
    pub assess_samples: usize,
    /// Longest a source is sampled for its assessment, seconds (a slow source is assessed on
    /// what it gave by then, at least 1,000 samples).
    #[serde(default = "default_assess_max_s")]
    pub assess_max_s: f64,
    /// Use only the detected sources named here (a name, or a kind such as `hwrng` or `net`
    /// matching `hwrng:*`); empty: every source detected.
    #[serde(default)]
    pub only: Vec<String>,
}

fn default_assess_samples() -> usize {
    1_000_000
}
fn default_assess_max_s() -> f64 {
    5.0
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            detect_hardware: true,
            system_root: PathBuf::from("/"),
            simulated: Vec::new(),
            feed: None,
            assess_samples: default_assess_samples(),
            assess_max_s: default_assess_max_s(),
            only: Vec::new(),
        }
    }
}

/// How much memory and how many connections the agent may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceProfile {
    /// libp2p's and redb's usual bounds (a server or a desktop).
    #[default]
    Standard,
    /// Pi-class boards: bounded connections and buffers, a smaller gossip mesh, Kademlia in
    /// client mode, a small database cache and few runtime threads
    /// (see `peer::node::NodeConfig::low_memory`).
    LowMemory,
}

impl ResourceProfile {
    /// redb page cache of the share store, bytes.
    pub fn store_cache_bytes(self) -> usize {
        match self {
            ResourceProfile::Standard => 4 * 1024 * 1024,
            ResourceProfile::LowMemory => 512 * 1024,
        }
    }

    /// Tokio worker threads (`None`: one per core).
    pub fn worker_threads(self) -> Option<usize> {
        match self {
            ResourceProfile::Standard => None,
            ResourceProfile::LowMemory => Some(2),
        }
    }

    /// Most threads for blocking work (disk writes, hashing).
    pub fn max_blocking_threads(self) -> usize {
        match self {
            ResourceProfile::Standard => 512,
            ResourceProfile::LowMemory => 8,
        }
    }
}

/// Whether a peer holds a reservation on relays, so others reach it through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayReservation {
    /// Unless the peer is a relay itself or listens on loopback only (a test on one machine),
    /// and while AutoNAT does not find it public (reservations are dropped once it does).
    #[default]
    Auto,
    /// Always reserve.
    Always,
    /// Never reserve (a device with a public address).
    Never,
}

/// The agent's whole configuration. A key it does not know is refused by name (a misspelt
/// setting would otherwise be ignored silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Coordinator multiaddress ending in `/p2p/<PeerId>`: the pinned coordinator.
    pub coordinator: String,
    /// Region label (failure domain).
    pub region: String,
    /// Operator label (administrative owner).
    pub operator: String,
    /// Data directory (identity, share store).
    pub data_dir: PathBuf,
    /// Listen addresses (TCP and QUIC).
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Run Kademlia in server mode from the start (only for nodes others can reach). Otherwise
    /// AutoNAT decides: a server once a direct address of the peer is confirmed reachable.
    #[serde(default)]
    pub kad_server: bool,
    /// Serve as a circuit relay v2 for NATed peers (only on a device others can reach), within
    /// `peer::node::RelayLimits`'s defaults.
    #[serde(default)]
    pub relay_server: bool,
    /// When to hold a reservation on the relays (the coordinator, then [`PeerConfig::relays`]).
    #[serde(default)]
    pub relay_reservation: RelayReservation,
    /// Relays to reserve a slot on besides the coordinator (multiaddrs ending in `/p2p/<PeerId>`).
    #[serde(default)]
    pub relays: Vec<String>,
    /// Share slots in the store.
    #[serde(default = "default_capacity")]
    pub store_capacity: u32,
    /// Seconds between contributions (before jitter).
    #[serde(default = "default_contribution_interval")]
    pub contribution_interval_s: f64,
    /// Seconds between heartbeats.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval_s: f64,
    /// Share fetches allowed per remote per second (burst twice that).
    #[serde(default = "default_fetch_rate")]
    pub fetch_rate_per_s: f64,
    /// Prometheus `/metrics`, `/health` and `/ready` listen address; off when absent.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// A one-time join token from `coordinator join-token`, redeemed at the first start.
    /// `peer init` keeps it out of this file, in [`PeerConfig::join_token_path`] (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
    /// Sources.
    #[serde(default)]
    pub sources: SourcesConfig,
    /// Resource profile (`standard` or `low-memory`).
    #[serde(default)]
    pub profile: ResourceProfile,
}

fn default_listen() -> Vec<String> {
    vec![
        "/ip4/0.0.0.0/tcp/0".into(),
        "/ip4/0.0.0.0/udp/0/quic-v1".into(),
    ]
}
fn default_capacity() -> u32 {
    4096
}
fn default_contribution_interval() -> f64 {
    60.0
}
fn default_heartbeat_interval() -> f64 {
    15.0
}
fn default_fetch_rate() -> f64 {
    20.0
}

impl PeerConfig {
    /// The relays to reserve a slot on: none when [`PeerConfig::relay_reservation`] says so,
    /// else the coordinator and [`PeerConfig::relays`].
    pub fn reservation_relays(&self) -> Vec<libp2p::Multiaddr> {
        let loopback_only = !self.listen.is_empty()
            && self.listen.iter().all(|l| {
                l.parse::<libp2p::Multiaddr>().is_ok_and(|a| {
                    a.iter().any(|p| match p {
                        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
                        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
                        _ => false,
                    })
                })
            });
        let reserve = match self.relay_reservation {
            RelayReservation::Always => true,
            RelayReservation::Never => false,
            RelayReservation::Auto => !self.relay_server && !loopback_only,
        };
        if !reserve {
            return Vec::new();
        }
        std::iter::once(&self.coordinator)
            .chain(&self.relays)
            .filter_map(|a| crate::addr::coordinator_addr(a).ok())
            .collect()
    }

    /// Whether the reservations of [`Self::reservation_relays`] follow AutoNAT: dropped while the
    /// device is found public (`relay_reservation = auto`).
    pub fn reserve_unless_public(&self) -> bool {
        self.relay_reservation == RelayReservation::Auto
    }

    /// The identity file inside the data directory.
    pub fn identity_path(&self) -> PathBuf {
        self.data_dir.join("identity.key")
    }

    /// The share key file inside the data directory ([`crate::share_key`]).
    pub fn share_key_path(&self) -> PathBuf {
        self.data_dir.join(crate::share_key::FILE_NAME)
    }

    /// The file `peer init` keeps a join token in (mode 0600), beside the identity.
    pub fn join_token_path(&self) -> PathBuf {
        self.data_dir.join("join-token")
    }

    /// The join token to redeem: the config's own, else the one in
    /// [`PeerConfig::join_token_path`], if any.
    pub fn join_token(&self) -> Result<Option<String>, ConfigError> {
        if let Some(token) = &self.join_token {
            return Ok(Some(token.clone()));
        }
        let path = self.join_token_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The share store inside the data directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("shares.redb")
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        config.validate().map_err(|detail| ConfigError::Invalid {
            path: shown,
            detail,
        })?;
        Ok(config)
    }

    /// Writes the config file (refuses to overwrite).
    pub fn save_new(&self, path: &Path) -> Result<(), ConfigError> {
        use std::io::Write;
        let shown = path.display().to_string();
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        let io = |source| ConfigError::Io {
            path: shown.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// SHA-256 of the config file's bytes, for attestation evidence.
    pub fn digest_file(path: &Path) -> Result<[u8; 32], ConfigError> {
        use sha2::Digest;
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(sha2::Sha256::digest(&bytes).into())
    }

    /// Checks every setting (what [`PeerConfig::load`] refuses); `peer init` runs it before
    /// writing anything.
    pub fn validate(&self) -> Result<(), String> {
        crate::addr::coordinator_addr(&self.coordinator)?;
        for l in &self.listen {
            crate::addr::listen_addr(l)?;
        }
        for r in &self.relays {
            crate::addr::coordinator_addr(r).map_err(|e| format!("relay: {e}"))?;
        }
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be positive"))
            }
        };
        positive("contribution_interval_s", self.contribution_interval_s)?;
        positive("heartbeat_interval_s", self.heartbeat_interval_s)?;
        positive("fetch_rate_per_s", self.fetch_rate_per_s)?;
        if self.region.trim().is_empty() || self.operator.trim().is_empty() {
            return Err("region and operator must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
