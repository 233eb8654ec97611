//! What the NAT tests read from a fetch in the testbed (`testbed.rs`): the ticket in a ticket
//! file, the shares by path a fetch reports, and latencies by path.

use super::*;
use protocols::ticket::{Ticket, TicketGrant};

/// The ticket inside a ticket file (the CLI's `TicketFile`, read field by field).
pub fn read_ticket(path: &Path) -> Ticket {
    #[derive(serde::Deserialize)]
    struct TicketFile {
        #[allow(dead_code)]
        v: u16,
        #[allow(dead_code)]
        coordinator: String,
        grant: TicketGrant,
    }
    let file: TicketFile =
        protocols::wire::decode_bounded(&std::fs::read(path).unwrap(), 1 << 20).unwrap();
    file.grant.ticket.open_from_any_signer().unwrap().1
}

/// `(direct, hole-punched, relayed)` from each of a fetch's "shares by path: …" lines.
pub fn paths(stderr: &str) -> Vec<(u32, u32, u32)> {
    stderr.lines().filter_map(path_line).collect()
}

pub fn path_line(line: &str) -> Option<(u32, u32, u32)> {
    let line = line.strip_prefix("shares by path: ")?;
    let count = |name: &str| -> u32 {
        line.split(", ")
            .find_map(|part| part.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Some((count("direct "), count("hole-punched "), count("relayed ")))
}

/// The path a fetch is counted under: relayed if any share came through a relay, else
/// hole-punched if any came over a punched connection, else direct.
pub fn path_name((direct, punched, relayed): (u32, u32, u32)) -> &'static str {
    if relayed > 0 {
        "relayed"
    } else if punched > 0 {
        "hole-punched"
    } else if direct > 0 {
        "direct"
    } else {
        "none"
    }
}

/// One fetch: whether it succeeded, its seconds, its shares by path, the key or the error.
pub struct Fetch {
    pub ok: bool,
    pub secs: f64,
    pub paths: (u32, u32, u32),
    pub output: String,
    /// The process's stderr.
    pub stderr: String,
}

impl Fetch {
    /// One line for the test's output: the outcome, its time, its shares by path, the error.
    pub fn summary(&self) -> String {
        format!(
            "{} in {:.2} s, shares by path (direct, hole-punched, relayed) {:?}{}",
            if self.ok { "ok" } else { "FAILED" },
            self.secs,
            self.paths,
            if self.ok {
                String::new()
            } else {
                format!(": {}", self.output)
            }
        )
    }
}

/// Fetch latencies by path, printed as p50 / p99 (nearest rank) with their counts.
#[derive(Default)]
pub struct Latencies(std::collections::BTreeMap<&'static str, Vec<f64>>);

impl Latencies {
    pub fn add(&mut self, f: &Fetch) {
        if f.ok {
            self.0.entry(path_name(f.paths)).or_default().push(f.secs);
        }
    }

    pub fn report(&self, what: &str) -> String {
        let mut text = format!("fetch latency by path ({what}):");
        for (path, secs) in &self.0 {
            let mut s = secs.clone();
            s.sort_by(f64::total_cmp);
            let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
            text += &format!(
                " {path} n={} p50 {:.0} ms p99 {:.0} ms;",
                s.len(),
                rank(0.5) * 1e3,
                rank(0.99) * 1e3
            );
        }
        text
    }
}
