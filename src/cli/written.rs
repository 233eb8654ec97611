//! What an `init` has written so far, removed again when a later step fails: a failed command
//! leaves nothing behind and can be run again as typed, corrected.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Files and directories created by one command, in order.
#[derive(Debug, Default)]
pub struct Written {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    templates: Vec<(PathBuf, String)>,
}

impl Written {
    /// `create_dir_all`, remembering each directory that did not exist before.
    pub fn create_dir_all(&mut self, dir: &Path) -> anyhow::Result<()> {
        let mut missing = Vec::new();
        let mut next = Some(dir);
        while let Some(d) = next {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            next = d.parent();
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.dirs.extend(missing);
        Ok(())
    }

    /// Writes a new secret file ([`peer::secret_file::write_new`]) and remembers it.
    pub fn secret(&mut self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        peer::secret_file::write_new(path, bytes)?;
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Remembers a file this command created.
    pub fn file(&mut self, path: &Path) {
        self.files.push(path.to_path_buf());
    }

    /// Remembers a template this command filled, to put its text back.
    pub fn template(&mut self, path: &Path, text: &str) {
        self.templates.push((path.to_path_buf(), text.to_string()));
    }

    /// Removes every remembered file and directory (deepest first) and restores the templates;
    /// best effort, since it runs on the way out of a failure.
    pub fn undo(self) {
        for file in self.files.iter().rev() {
            let _ = std::fs::remove_file(file);
        }
        for (path, text) in &self.templates {
            let _ = std::fs::write(path, text);
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn undo_removes_the_created_directories_and_files_but_nothing_older() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("old");
        std::fs::write(&old, b"keep").unwrap();
        let dir = root.path().join("a/b");
        let mut written = Written::default();
        written.create_dir_all(&dir).unwrap();
        written.secret(&dir.join("identity.key"), b"k").unwrap();
        written.undo();
        assert!(!root.path().join("a").exists());
        assert_eq!(std::fs::read(&old).unwrap(), b"keep");
    }
}
