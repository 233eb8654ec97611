//! Requesters of the mesh and their fetches: the requester behind the third home's NAT, more
//! requesters in any namespace, one process per fetch or repeated fetches in one process.

use super::mesh::Mesh;
use super::testbed::*;
use super::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

/// A requester of the mesh: its namespace, data directory and PeerId.
pub struct MeshRequester {
    pub ns: &'static str,
    pub dir: PathBuf,
    pub pid: PeerId,
}

impl Mesh {
    /// The requester [`Mesh::start`] initialised, behind the third home's NAT.
    pub fn requester(&self) -> MeshRequester {
        MeshRequester {
            ns: REQUESTER_NS,
            dir: self.req_dir.path().to_path_buf(),
            pid: self.req_pid,
        }
    }

    /// Initialises and authorises another requester, in namespace `ns` (a peer's, say: its
    /// node listens on an ephemeral port) with its data directory under the requester's.
    pub fn add_requester(&self, ns: &'static str) -> MeshRequester {
        let dir = self.req_dir.path().join(ns);
        let out = in_ns(ns)
            .args(["requester", "init", "--coordinator"])
            .arg(self.coord_addr.to_string())
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = line_value(&String::from_utf8_lossy(&out.stdout), "peer id ");
        run_ok(
            &["coordinator", "requesters", "add", &pid],
            &[("--data-dir", self.coord_dir.path())],
        );
        MeshRequester {
            ns,
            dir,
            pid: pid.parse().unwrap(),
        }
    }

    /// A fresh ticket of `session` for `who` (`session ticket`), written to `path`; `None` with
    /// the error when the coordinator gave none.
    pub fn ticket_for(
        &self,
        who: &MeshRequester,
        session: &protocols::ids::SessionId,
        path: &Path,
    ) -> Result<(), String> {
        let out = in_ns(who.ns)
            .args(["session", "ticket", &session.to_string(), "-o"])
            .arg(path)
            .arg("--data-dir")
            .arg(&who.dir)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// One `fetch` process of `who`.
    pub fn fetch_as(&self, who: &MeshRequester, ticket_path: &Path) -> Fetch {
        self.fetch_in(who.ns, &who.dir, ticket_path)
    }
    /// `fetch` in namespace `ns`; its log filter is `NAT_MESH_FETCH_LOG` when set.
    fn fetch_command(ns: &str) -> Command {
        let mut cmd = in_ns(ns);
        if let Some(filter) = std::env::var_os("NAT_MESH_FETCH_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.arg("fetch");
        cmd
    }

    /// One `fetch` process from the requester's namespace.
    pub fn fetch(&self, ticket_path: &Path) -> Fetch {
        self.fetch_in(REQUESTER_NS, self.req_dir.path(), ticket_path)
    }

    /// One `fetch` process in namespace `ns` with the requester whose data directory is `dir`.
    pub fn fetch_in(&self, ns: &str, dir: &Path, ticket_path: &Path) -> Fetch {
        let t0 = Instant::now();
        let out = Self::fetch_command(ns)
            .arg(ticket_path)
            .args(["--format", "hex", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        keep_for_diagnosis("fetch", &err);
        let ok = out.status.success();
        Fetch {
            ok,
            secs,
            paths: paths(&err).first().copied().unwrap_or_default(),
            output: if ok {
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            } else {
                err.trim().to_string()
            },
            stderr: err,
        }
    }

    /// `fetch --repeat n` in one requester process, fetch after fetch.
    pub fn fetch_repeated(&self, ticket_path: &Path, n: usize) -> (Vec<Fetch>, Option<String>) {
        self.fetch_repeated_every(ticket_path, n, Duration::ZERO)
    }

    /// `fetch --repeat n --repeat-every every` in one requester process. Each fetch after the
    /// first is timed from the previous fetch's "shares by path" line to its own (the CLI prints
    /// one per fetch as it ends), less the `every` the CLI waits before it; the first from the
    /// process's start, so it includes starting the node. Returns the
    /// fetches reported and the process's stderr when it failed.
    pub fn fetch_repeated_every(
        &self,
        ticket_path: &Path,
        n: usize,
        every: Duration,
    ) -> (Vec<Fetch>, Option<String>) {
        let t0 = Instant::now();
        let mut child = Self::fetch_command(REQUESTER_NS)
            .arg(ticket_path)
            .args(["--format", "hex", "--repeat", &n.to_string()])
            .args([
                "--repeat-every",
                &format!("{}ms", every.as_millis()),
                "--data-dir",
            ])
            .arg(self.req_dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut fetches = Vec::new();
        let mut text = String::new();
        let mut last = t0;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(p) = path_line(&line) {
                let now = Instant::now();
                let pause = if fetches.is_empty() {
                    Duration::ZERO
                } else {
                    every
                };
                fetches.push(Fetch {
                    ok: true,
                    secs: now.duration_since(last).saturating_sub(pause).as_secs_f64(),
                    paths: p,
                    output: String::new(),
                    stderr: String::new(),
                });
                last = now;
            }
            text += &line;
            text.push('\n');
        }
        let out = child.wait_with_output().unwrap();
        keep_for_diagnosis("fetch-repeated", &text);
        let failed = (!out.status.success()).then_some(text);
        (fetches, failed)
    }
}
