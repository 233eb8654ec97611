//! What a peer measures about itself for attestation and heartbeats: binary hash, config digest, boot id, power.

use crate::config::{ConfigError, PeerConfig};
use protocols::wire::PowerState;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The measurements attestation evidence carries.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// SHA-256 of the running binary.
    pub binary_sha256: [u8; 32],
    /// SHA-256 of the config file.
    pub config_digest: [u8; 32],
    /// Kernel boot id.
    pub boot_id: String,
}

impl Measurement {
    /// Measures the running process and its config file.
    pub fn take(config_path: &Path) -> Result<Self, ConfigError> {
        Ok(Self {
            binary_sha256: binary_sha256().unwrap_or([0; 32]),
            config_digest: PeerConfig::digest_file(config_path)?,
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        })
    }
}

/// SHA-256 of `/proc/self/exe`, streamed.
pub fn binary_sha256() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/self/exe")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher.finalize().into())
}

/// Battery state from `<root>/sys/class/power_supply`: the first battery's capacity when it
/// is discharging, mains otherwise; `None` when there is no power-supply class at all.
pub fn power_state(root: &Path) -> Option<PowerState> {
    let dir = root.join("sys/class/power_supply");
    let entries = std::fs::read_dir(&dir).ok()?;
    let mut on_mains = false;
    let mut battery = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let kind = std::fs::read_to_string(path.join("type")).unwrap_or_default();
        match kind.trim() {
            "Mains" | "USB" => {
                on_mains |= std::fs::read_to_string(path.join("online"))
                    .map(|s| s.trim() == "1")
                    .unwrap_or(false);
            }
            "Battery" => {
                let capacity = std::fs::read_to_string(path.join("capacity"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u8>().ok());
                let discharging = std::fs::read_to_string(path.join("status"))
                    .map(|s| s.trim() == "Discharging")
                    .unwrap_or(false);
                if let Some(percent) = capacity
                    && discharging
                {
                    battery = Some(percent.min(100));
                }
            }
            _ => {}
        }
    }
    match (on_mains, battery) {
        (false, Some(percent)) => Some(PowerState::Battery { percent }),
        _ => Some(PowerState::Mains),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn supply(root: &Path, name: &str, files: &[(&str, &str)]) {
        let dir = root.join("sys/class/power_supply").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    #[test]
    fn discharging_battery_reports_its_capacity() {
        let root = tempfile::tempdir().unwrap();
        supply(
            root.path(),
            "BAT0",
            &[
                ("type", "Battery\n"),
                ("capacity", "42\n"),
                ("status", "Discharging\n"),
            ],
        );
        supply(root.path(), "AC", &[("type", "Mains\n"), ("online", "0\n")]);
        assert_eq!(
            power_state(root.path()),
            Some(PowerState::Battery { percent: 42 })
        );
    }

    #[test]
    fn online_mains_wins_over_a_battery() {
        let root = tempfile::tempdir().unwrap();
        supply(
            root.path(),
            "BAT0",
            &[
                ("type", "Battery\n"),
                ("capacity", "42\n"),
                ("status", "Charging\n"),
            ],
        );
        supply(root.path(), "AC", &[("type", "Mains\n"), ("online", "1\n")]);
        assert_eq!(power_state(root.path()), Some(PowerState::Mains));
    }

    #[test]
    fn binary_hash_is_stable_for_the_running_process() {
        assert_eq!(binary_sha256().unwrap(), binary_sha256().unwrap());
    }
}
