//! `promtool` (Debian's `prometheus` package) for the monitoring tests. Where it is missing, a
//! developer's run says so and skips only the promtool half (the Rust-side checks still run);
//! under CI (`CI` set, as .ci/run is run) or `ENTROSHARD_REQUIRE_PROMTOOL=1` a missing promtool
//! fails the test, so a broken install cannot switch the check off unnoticed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Whether this run must have promtool: CI, or a developer who asked for it.
fn required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    ci || std::env::var("ENTROSHARD_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1")
}

/// `promtool`, or `None` (the reason printed) where it is not installed and not required.
/// Panics where it is required and missing.
pub fn promtool() -> Option<Command> {
    let installed = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Some(Command::new("promtool"));
    }
    assert!(
        !required(),
        "promtool is not installed, and this run requires it (CI or \
         ENTROSHARD_REQUIRE_PROMTOOL=1): apt-get install prometheus"
    );
    eprintln!(
        "SKIPPED: promtool is not installed here (apt-get install prometheus); the promtool \
         checks did not run, the Rust-side checks did"
    );
    None
}

/// `promtool check metrics` on an exposition: clean, or the test fails with what it said.
/// Returns false where promtool is missing (and not required).
pub fn check_metrics(what: &str, text: &str) -> bool {
    let Some(mut cmd) = promtool() else {
        return false;
    };
    let mut child = cmd
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics on the {what}'s exposition: {}\n{said}\n--- exposition:\n{text}",
        out.status
    );
    true
}

/// `promtool ARGS… FILE` run in `FILE`'s directory: success, or the test fails with its output.
/// Returns false where promtool is missing (and not required).
pub fn run_on(args: &[&str], file: &Path) -> bool {
    let Some(mut cmd) = promtool() else {
        return false;
    };
    let out = cmd
        .args(args)
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} {}: {}\n{}{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}
