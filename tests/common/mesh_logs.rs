//! What the NAT testbed's [`Mesh`] can tell from its processes' logs: each peer's log, the
//! reachability AutoNAT gave it, a failure's log tails, the hole punches the holders logged, and
//! a dump of every log and router for a diagnosis.

use super::mesh::Mesh;
use super::testbed::*;

impl Mesh {
    /// The log of the peer in namespace `ns`.
    pub fn peer_log(&self, ns: &str) -> String {
        std::fs::read_to_string(self.peer(ns).dir.path().join("peer.log")).unwrap_or_default()
    }

    /// The last reachability the log of the peer in `ns` reports and its Kademlia mode then:
    /// (`public` or `private`, `server` or `client`).
    pub fn reachability(&self, ns: &str) -> Option<(String, String)> {
        let log = self.peer_log(ns);
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("reachability changed (AutoNAT)"))?;
        Some((
            log_field(line, "reachability")?.to_string(),
            log_field(line, "kademlia")?.to_lowercase(),
        ))
    }

    /// The last lines of every log, for a failure message.
    pub fn logs(&self) -> String {
        let tail = |text: String, n: usize| -> String {
            let lines: Vec<&str> = text.lines().rev().take(n).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        let mut text = String::new();
        for p in &self.peers {
            text += &format!(
                "--- {}\n{}\n",
                p.spec.ns,
                tail(self.peer_log(p.spec.ns), 12)
            );
        }
        let coord = std::fs::read_to_string(&self.coord_log).unwrap_or_default();
        text + "--- coordinator\n" + &tail(coord, 20)
    }

    /// Under `NAT_MESH_DUMP=<dir>`: every peer's and the coordinator's log, and each router's nftables ruleset (with
    /// its counters) and conntrack table, written there for a diagnosis.
    pub fn dump(&self) {
        for p in &self.peers {
            keep_for_diagnosis(p.spec.ns, &self.peer_log(p.spec.ns));
        }
        let coordinator = std::fs::read_to_string(&self.coord_log).unwrap_or_default();
        keep_for_diagnosis("coordinator", &coordinator);
        dump_routers();
    }

    /// Hole punches with the requester the holders logged: (succeeded, failed). Punches with
    /// other peers (an AutoNAT server dialling back through a relay, say) are not counted.
    pub fn hole_punches(&self) -> (usize, usize) {
        self.hole_punches_by_nat()
            .iter()
            .fold((0, 0), |(a, b), (_, ok, failed)| (a + ok, b + failed))
    }

    /// [`Self::hole_punches`] by the NAT of the holder's home: `endpoint-independent` (homes 1
    /// and 3) and `symmetric-like` (home 2).
    pub fn hole_punches_by_nat(&self) -> [(&'static str, usize, usize); 2] {
        let mut counts = [("endpoint-independent", 0, 0), ("symmetric-like", 0, 0)];
        let with = format!("peer={}", self.req_pid);
        for p in self.peers.iter().filter(|p| p.spec.natted) {
            let c = &mut counts[usize::from(p.spec.ns.starts_with("es-h2-"))];
            for line in self.peer_log(p.spec.ns).lines() {
                if line.contains(&with) {
                    c.1 += usize::from(line.contains("hole punched: direct connection"));
                    c.2 += usize::from(line.contains("hole punch failed"));
                }
            }
        }
        counts
    }
}

/// The value of `field` on a log line (`field=value` or `field="value"`).
fn log_field<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let rest = &line[line.find(&format!("{field}="))? + field.len() + 1..];
    Some(rest.split_whitespace().next()?.trim_matches('"'))
}
