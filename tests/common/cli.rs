//! The requester side through the CLI only: `requester init`, `session create` retried until the
//! pool is ready, and a child's stderr watched line by line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

/// `requester init` in `dir` against `coord`; returns the requester's peer id.
pub fn requester(coord: &CoordinatorProc, dir: &Path) -> String {
    let out = run_ok(
        &[
            "requester",
            "init",
            "--coordinator",
            &coord.addr.to_string(),
        ],
        &[("--data-dir", dir)],
    );
    line_value(&out, "peer id ")
}

/// `session create --n N --k K --ttl 10m -o TICKET` until the pool is ready (it refuses with
/// "not ready" before); returns the session id.
pub fn create_session(dir: &Path, ticket: &Path, n: u8, k: u8, extra: &[&str]) -> String {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let out = entroshard()
            .args([
                "session",
                "create",
                "--n",
                &n.to_string(),
                "--k",
                &k.to_string(),
            ])
            .args(["--ttl", "10m", "-o"])
            .arg(ticket)
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .output()
            .unwrap();
        if out.status.success() {
            fleet_started();
            return line_value(&String::from_utf8_lossy(&out.stdout), "session ");
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not ready") && std::time::Instant::now() < deadline,
            "session create failed: {err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Reads the listener's stderr until it says it is listening; returns the rest of its stderr.
pub fn wait_listening(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("listening on") {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "listener exited: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    // Keep draining in the background so the listener never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    })
}

/// A child's stderr, collected line by line in the background.
pub struct StderrLines {
    lines: Arc<Mutex<Vec<String>>>,
}

impl StderrLines {
    /// Takes `child`'s stderr (piped) and collects its lines until it closes.
    pub fn watch(child: &mut std::process::Child) -> Self {
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self { lines }
    }

    /// Every line so far.
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a line contains every one of `parts`, and returns it; fails the test with
    /// everything seen after [`DEADLINE`].
    pub fn wait_for(&self, parts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {parts:?}; stderr so far:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A finished command's standard error, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A finished command's standard output, as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails unless `out` failed (status 1, no panic) with every one of `parts` on stderr.
pub fn assert_refused(out: &std::process::Output, parts: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for part in parts {
        assert!(err.contains(part), "no {part:?} in: {err}");
    }
}

/// `session ticket SESSION -o OUT` for the requester in `dir` (a named requester's own ticket).
pub fn session_ticket(dir: &Path, session: &str, out: &Path) {
    run_ok(
        &["session", "ticket", session, "-o", out.to_str().unwrap()],
        &[("--data-dir", dir)],
    );
}

/// A coordinator initialised (never started) in `<tmp>/c`.
pub fn stopped_coordinator() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    super::run_ok(
        &["coordinator", "init", "--listen", "/ip4/127.0.0.1/tcp/7400"],
        &[("--data-dir", &c)],
    );
    (tmp, c)
}
