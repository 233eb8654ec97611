//! Shared helpers for end-to-end tests: child processes of the real binary, test nodes, deadlines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod cluster;
mod coordinator_proc;
pub mod crash_loop;
pub mod fetch_report;
mod fleet;
mod http;
pub mod mesh;
mod mesh_logs;
mod peer_proc;
pub mod promtool;
pub mod requesters;
pub mod testbed;

pub use coordinator_proc::*;
pub use fleet::*;
pub use http::*;
pub use peer_proc::*;

use libp2p::{Multiaddr, PeerId};
use peer::node::{self, NodeConfig, NodeEvent, NodeHandle};
use protocols::identity::NodeKey;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// Upper bound for any wait in these tests: a bound on a hang, never the expected duration (the
/// suite must pass beside other CPU-bound work on two cores).
pub const DEADLINE: Duration = Duration::from_secs(300);

/// The `entroshard` binary under test.
pub fn entroshard() -> Command {
    exits_with_this_test(Command::new(env!("CARGO_BIN_EXE_entroshard")))
}

/// Makes the process `command` starts exit once this test process is gone (a test binary killed
/// by a timeout leaves no daemon behind).
pub fn exits_with_this_test(mut command: Command) -> Command {
    command.env(
        "ENTROSHARD_EXIT_WITH_PARENT",
        std::process::id().to_string(),
    );
    command
}

/// A child process killed with SIGKILL when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A test node on loopback TCP + QUIC.
pub async fn test_node(key: &NodeKey) -> (NodeHandle, mpsc::Receiver<NodeEvent>, Multiaddr) {
    let config = NodeConfig::network(vec![
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
    ]);
    let (handle, mut events) = node::start(key, config).await.unwrap();
    let addr = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(NodeEvent::Listening(a)) = events.recv().await
                && a.iter()
                    .any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)))
            {
                return a;
            }
        }
    })
    .await
    .unwrap();
    let full = addr.with(libp2p::multiaddr::Protocol::P2p(handle.peer_id()));
    (handle, events, full)
}

/// PeerId of a key.
pub fn peer_id(key: &NodeKey) -> PeerId {
    peer::identity::peer_id(&key.node_id()).unwrap()
}

/// A loopback port that was free for TCP and UDP a moment ago (for daemons that must be dialled
/// by others, QUIC on the same number): the kernel's next free TCP port, skipped while another
/// process (a fleet running beside this one, decision 0070) holds its UDP twin.
pub fn free_port() -> u16 {
    for _ in 0..1_000 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP in 1,000 tries");
}

/// Runs a CLI command to completion and returns its stdout, failing the test on error.
pub fn run_ok(args: &[&str], dir_args: &[(&str, &Path)]) -> String {
    let mut cmd = entroshard();
    cmd.args(args);
    for (flag, path) in dir_args {
        cmd.arg(flag).arg(path);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `entroshard fetch ticket --format hex` as the requester in `dir`, whatever its outcome.
pub fn fetch_output(dir: &Path, ticket: &Path) -> std::process::Output {
    entroshard()
        .arg("fetch")
        .arg(ticket)
        .args(["--format", "hex", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap()
}

/// `entroshard fetch ticket --format format` as the requester in `dir`; its stdout.
pub fn fetch_key(dir: &Path, ticket: &Path, format: &str) -> Vec<u8> {
    let out = entroshard()
        .arg("fetch")
        .arg(ticket)
        .args(["--format", format, "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The value after `prefix` on the first line that starts with it.
pub fn line_value(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
        .trim()
        .to_string()
}
