//! Where a `coordinator` command finds the data directory when `--data-dir` is not given:
//! `ENTROSHARD_DATA_DIR`, the packaged config's `data_dir`, or `./entroshard-coordinator`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Names the coordinator's data directory for commands run without `--data-dir`.
const DATA_DIR_ENV: &str = "ENTROSHARD_DATA_DIR";

/// Where the Debian package keeps the coordinator's config (`coordinator init --config` fills it).
const PACKAGED_CONFIG: &str = "/etc/entroshard/coordinator.toml";

/// The data directory of a command given no `--data-dir`: `ENTROSHARD_DATA_DIR`, else the
/// `data_dir` of `/etc/entroshard/coordinator.toml` where the packages put one, else
/// `entroshard-coordinator` in the current directory. (Read by hand rather than with clap's
/// `env` feature, which costs the Pi build bytes it does not have to spare.)
pub fn default_data_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        env_data_dir()
            .or_else(|| data_dir_in(Path::new(PACKAGED_CONFIG)))
            .unwrap_or_else(|| PathBuf::from("entroshard-coordinator"))
    })
    .clone()
}

/// The packaged config, `/etc/entroshard/coordinator.toml`, when its `data_dir` is `data_dir`.
pub fn packaged_config_naming(data_dir: &Path) -> Option<PathBuf> {
    let packaged = Path::new(PACKAGED_CONFIG);
    (data_dir_in(packaged)? == data_dir).then(|| packaged.to_path_buf())
}

/// `ENTROSHARD_DATA_DIR`, when set and not empty.
pub fn env_data_dir() -> Option<PathBuf> {
    std::env::var_os(DATA_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The `data_dir` a coordinator config file names, if it exists and names one.
fn data_dir_in(config: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(config).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("data_dir")?.as_str().map(PathBuf::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::data_dir_in;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_config_names_the_data_directory_and_a_template_or_no_file_names_none() {
        let dir = tempfile::tempdir().unwrap();
        let filled = dir.path().join("filled.toml");
        std::fs::write(&filled, "data_dir = \"/var/lib/entroshard/coordinator\"\n").unwrap();
        assert_eq!(
            data_dir_in(&filled),
            Some(PathBuf::from("/var/lib/entroshard/coordinator"))
        );
        let template = dir.path().join("template.toml");
        std::fs::write(
            &template,
            "# data_dir = \"/var/lib/entroshard/coordinator\"\n",
        )
        .unwrap();
        assert_eq!(data_dir_in(&template), None);
        assert_eq!(
            data_dir_in(Path::new("/nonexistent/coordinator.toml")),
            None
        );
    }
}
