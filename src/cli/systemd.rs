//! Daemons under systemd: readiness, status and watchdog over the notify protocol (sd-notify),
//! and `init` filling the packaged, comment-only config templates in `/etc/entroshard/`.
//!
//! Every notification is a no-op when the process was not started by a service manager
//! (`NOTIFY_SOCKET` unset), so the same binary runs from a shell, the tests and systemd.

use anyhow::{Context, bail};
use sd_notify::NotifyState;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// Tells the service manager that start-up is complete.
pub fn notify_ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager that the daemon is shutting down.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// The watchdog interval the service manager asked for (`WatchdogSec=`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Pings the watchdog at half its interval for as long as `alive()` answers `true`; stops
/// pinging (so that systemd restarts the service) once it answers `false` or hangs past the
/// interval. Returns at once when no watchdog is configured.
pub async fn run_watchdog<F, Fut>(mut alive: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let mut tick = tokio::time::interval(interval / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(interval, alive()).await {
            Ok(true) => send(&[NotifyState::Watchdog]),
            Ok(false) | Err(_) => {
                tracing::error!("liveness check failed; no more watchdog pings");
                return;
            }
        }
    }
}

/// Whether `text` is a config template: comments and blank lines only, no setting.
pub fn is_template(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

/// What `init` will do with the config path.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigTarget {
    /// No file there: create it.
    New,
    /// A comment-only template (the package's default): fill it, keeping its comments below.
    Template(String),
}

/// Checks, before anything is written, that `init` may write its config to `path`: it must
/// not exist or hold only comments. An existing config is never overwritten.
pub fn config_target(path: &Path) -> anyhow::Result<ConfigTarget> {
    match std::fs::read_to_string(path) {
        Ok(text) if is_template(&text) => Ok(ConfigTarget::Template(text)),
        Ok(_) => bail!(
            "{} already holds a configuration; it is never overwritten",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigTarget::New),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Fills a template in place (keeping the file's owner and mode): the generated settings
/// first, then the template's comments as documentation.
pub fn fill_template(path: &Path, settings: &str, template: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let text = format!(
        "# Written by `entroshard … init`; the packaged documentation of each setting follows.\n\
         {settings}\n{template}"
    );
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `init`'s config to `path` as [`config_target`] decided: a new file through `save_new`,
/// or the generated `settings` into the packaged template; either way recorded in `written` so a
/// later failure undoes it.
pub fn write_config(
    written: &mut super::Written,
    path: &Path,
    target: &ConfigTarget,
    settings: &str,
    save_new: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match target {
        ConfigTarget::New => {
            save_new(path)?;
            written.file(path);
        }
        ConfigTarget::Template(template) => {
            written.template(path, template);
            fill_template(path, settings, template)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn comment_only_text_is_a_template_and_a_setting_makes_it_a_config() {
        assert!(is_template("# a\n\n  # b = 1\n"));
        assert!(is_template(""));
        assert!(!is_template("# a\nregion = \"x\"\n"));
    }

    #[test]
    fn an_existing_config_is_refused_and_a_template_is_filled_with_its_comments_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.toml");
        assert_eq!(config_target(&path).unwrap(), ConfigTarget::New);
        std::fs::write(&path, "# doc\n# region = \"here\"\n").unwrap();
        let ConfigTarget::Template(template) = config_target(&path).unwrap() else {
            panic!("a comment-only file is a template");
        };
        fill_template(&path, "region = \"r1\"\n", &template).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("region = \"r1\"\n") && text.ends_with("# region = \"here\"\n"));
        assert!(config_target(&path).is_err());
    }
}
