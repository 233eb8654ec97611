//! The device's stored entropy models (SP 800-90B §3.1): one file per source in the data
//! directory, reused until the binary or the source changes, or `entropy reassess` removes them.

use protocols::entropy::SourceModel;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where a peer keeps its models.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

/// Largest model file read (a model is a few hundred bytes).
const MAX_MODEL_BYTES: u64 = 16 * 1024;

impl ModelStore {
    /// Models under `data_dir/entropy-models/`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("entropy-models"),
        }
    }

    fn path(&self, source: &str) -> PathBuf {
        let digest = Sha256::digest(source.as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.cbor"))
    }

    /// The stored model of `source` if it was made by `binary_sha256` for the same source
    /// `identity`; `None` otherwise (never assessed, changed, or unreadable: assess again).
    pub fn load(&self, source: &str, identity: &str, binary_sha256: &str) -> Option<SourceModel> {
        let path = self.path(source);
        let file = std::fs::File::open(&path).ok()?;
        if file.metadata().ok()?.len() > MAX_MODEL_BYTES {
            return None;
        }
        let model: SourceModel = ciborium::from_reader(std::io::BufReader::new(file)).ok()?;
        (model.source == source
            && model.identity == identity
            && model.binary_sha256 == binary_sha256)
            .then_some(model)
    }

    /// Stores a model (written to a temporary file, then renamed into place).
    pub fn save(&self, model: &SourceModel) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(&model.source);
        let tmp = path.with_extension("tmp");
        let mut bytes = Vec::new();
        ciborium::into_writer(model, &mut bytes).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }

    /// Every stored model.
    pub fn all(&self) -> Vec<SourceModel> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut models: Vec<SourceModel> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "cbor"))
            .filter_map(|e| std::fs::File::open(e.path()).ok())
            .filter_map(|f| ciborium::from_reader(std::io::BufReader::new(f)).ok())
            .collect();
        models.sort_by(|a, b| a.source.cmp(&b.source));
        models
    }

    /// Removes every stored model, so each source is assessed again at the next start.
    pub fn clear(&self) -> std::io::Result<usize> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in entries.filter_map(|e| e.ok()) {
            if e.path().extension().is_some_and(|x| x == "cbor") {
                std::fs::remove_file(e.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn model(binary: &str) -> SourceModel {
        SourceModel {
            source: "jitter".into(),
            identity: "jitter bits=4".into(),
            binary_sha256: binary.into(),
            bits_per_sample: 4,
            h_per_sample: 1.5,
            estimator: "Lag Prediction (§6.3.8)".into(),
            samples: 1_000_000,
            samples_per_s: 1.0e6,
            assessed_at_ms: 5,
        }
    }

    #[test]
    fn a_model_is_reused_only_by_the_same_binary_for_the_same_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::in_data_dir(dir.path());
        assert!(store.load("jitter", "jitter bits=4", "aa").is_none());
        store.save(&model("aa")).unwrap();
        assert_eq!(
            store.load("jitter", "jitter bits=4", "aa"),
            Some(model("aa"))
        );
        assert!(
            store.load("jitter", "jitter bits=4", "bb").is_none(),
            "new binary"
        );
        assert!(
            store.load("jitter", "jitter bits=8", "aa").is_none(),
            "source changed"
        );
        assert_eq!(store.all().len(), 1);
        assert_eq!(store.clear().unwrap(), 1);
        assert!(store.load("jitter", "jitter bits=4", "aa").is_none());
    }
}
