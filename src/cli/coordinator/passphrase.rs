//! The passphrase of a backup: from the file `--passphrase-file` names, else from
//! `ENTROSHARD_BACKUP_PASSPHRASE`, else asked on the terminal without echo (twice for a new
//! backup). Never echoed, logged or kept after use (zeroed on drop).

use anyhow::{Context, bail};
use std::path::Path;
use zeroize::Zeroizing;

/// The environment variable a passphrase may come from (scripts, timers).
pub const PASSPHRASE_ENV: &str = "ENTROSHARD_BACKUP_PASSPHRASE";
/// The shortest passphrase a new backup accepts, in characters.
pub const MIN_CHARS: usize = 12;
/// The largest passphrase file read.
const MAX_FILE_BYTES: u64 = 4096;

/// What the passphrase is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypting a new backup: at least [`MIN_CHARS`], asked twice on a terminal.
    Backup,
    /// Opening a backup.
    Restore,
}

/// The passphrase, from the first source that has one.
pub fn read(file: Option<&Path>, purpose: Purpose) -> anyhow::Result<Zeroizing<String>> {
    let passphrase = if let Some(path) = file {
        from_file(path)?
    } else if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        Zeroizing::new(
            value
                .into_string()
                .map_err(|_| anyhow::anyhow!("{PASSPHRASE_ENV} is not UTF-8"))?,
        )
    } else {
        from_terminal(purpose)?
    };
    if passphrase.is_empty() {
        bail!("the backup passphrase is empty");
    }
    if purpose == Purpose::Backup && passphrase.chars().count() < MIN_CHARS {
        bail!("a backup passphrase must be at least {MIN_CHARS} characters");
    }
    Ok(passphrase)
}

/// The file's first line (a trailing newline is not part of the passphrase).
fn from_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading the passphrase file {}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "the passphrase file {} is {len} bytes; a passphrase file holds one line",
            path.display()
        );
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the passphrase file {}", path.display()))?,
    );
    Ok(Zeroizing::new(first_line(&text).to_string()))
}

fn first_line(text: &str) -> &str {
    text.split('\n')
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
}

/// Asks on the terminal, with echo off; refuses when standard input is not a terminal.
fn from_terminal(purpose: Purpose) -> anyhow::Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!(
            "no backup passphrase: pass --passphrase-file FILE, set {PASSPHRASE_ENV}, or run \
             this on a terminal to be asked"
        );
    }
    let first = prompt("backup passphrase: ")?;
    if purpose == Purpose::Backup {
        let again = prompt("the same passphrase again: ")?;
        if *again != *first {
            bail!("the two passphrases differ; nothing was written");
        }
    }
    Ok(first)
}

/// Writes `label` to standard error and reads one line from standard input with echo off
/// (restored afterwards, also on error).
fn prompt(label: &str) -> anyhow::Result<Zeroizing<String>> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning the terminal's echo off")?;
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.context("reading the passphrase")?;
    restored.context("turning the terminal's echo back on")?;
    Ok(Zeroizing::new(first_line(&line).to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_file_gives_its_first_line_without_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "  spaces kept inside  \r\nsecond line\n").unwrap();
        assert_eq!(
            read(Some(&path), Purpose::Backup).unwrap().as_str(),
            "  spaces kept inside  "
        );
        std::fs::write(&path, "short\n").unwrap();
        let err = read(Some(&path), Purpose::Backup).unwrap_err();
        assert!(err.to_string().contains("at least 12 characters"), "{err}");
        assert_eq!(
            read(Some(&path), Purpose::Restore).unwrap().as_str(),
            "short"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(read(Some(&path), Purpose::Restore).is_err());
        std::fs::write(&path, vec![b'a'; 5000]).unwrap();
        assert!(read(Some(&path), Purpose::Restore).is_err());
    }
}
