//! The text of `coordinator status`: a row per peer, then indented lines with its refusals and each source's audit standing, claim, credit and refusals.

use coordinator::admin::{PeerLine, SourceLine, SourceStanding};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The whole table.
pub fn render(lines: &[PeerLine]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<52} {:<10} {:<10} {:<8} {:<22} {:>6} {:>8} {:>9}  sources",
        "peer id", "region", "operator", "trusted", "power", "shares", "hb age", "credited"
    );
    for l in lines {
        let sources: Vec<String> = l
            .sources
            .iter()
            .map(|s| format!("{}:{:?}", printable(&s.source), s.state))
            .collect();
        let _ = writeln!(
            out,
            "{:<52} {:<10} {:<10} {:<8} {:<22} {:>6} {:>8} {:>9}  {}{}",
            coordinator::admin::peer_text(&l.node),
            l.region,
            l.operator,
            l.trusted,
            l.power,
            l.shares_held,
            l.heartbeat_age_s
                .map(|a| format!("{a}s"))
                .unwrap_or_else(|| "-".into()),
            l.credited_bits,
            sources.join(","),
            l.quarantine
                .as_ref()
                .map(|q| format!("  QUARANTINED {q}"))
                .unwrap_or_default()
        );
        if l.share_key.is_none() {
            let _ = writeln!(
                out,
                "    no share key: holds no new shares until its attestation states one (a build from before share keys?)"
            );
        }
        if !l.refusals.is_empty() {
            let _ = writeln!(out, "    refused: {}", counts(&l.refusals));
        }
        for s in &l.source_lines {
            let _ = writeln!(out, "    {}", source_text(s));
        }
    }
    out
}

/// One source's line (without its indent).
pub fn source_text(s: &SourceLine) -> String {
    let mut text = format!("source {}: {}", printable(&s.source), standing_text(s));
    let _ = write!(
        text,
        "; claims H {:.3} ({}); credited {} bits",
        s.claimed_h,
        printable(&s.device_estimator),
        s.credited_bits
    );
    if !s.refusals.is_empty() {
        let _ = write!(text, "; refused {}", counts(&s.refusals));
    }
    text
}

fn standing_text(s: &SourceLine) -> String {
    let mut text = match &s.standing {
        SourceStanding::Unaudited => "unaudited".to_string(),
        SourceStanding::Audited {
            h,
            samples,
            estimator,
            age_s,
        } => format!(
            "audited H {h:.3} over {samples} samples ({}, {age_s} s ago)",
            printable(estimator)
        ),
        SourceStanding::Failed { reason } => format!("audit failed ({})", printable(reason)),
        SourceStanding::Quarantined { claimed, found } => {
            format!("QUARANTINED: claimed H {claimed:.3}, audit found {found:.3}")
        }
    };
    if s.audit_pending {
        text.push_str(", audit under way");
    }
    if s.waiting > 0 {
        let _ = write!(text, ", {} blocks waiting for it", s.waiting);
    }
    text
}

/// `reason n, reason n`, most frequent first.
fn counts(refusals: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = refusals.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(r, n)| format!("{} {n}", printable(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text from a device with control characters (a terminal's escape sequences) replaced.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::ids::NodeId;

    fn line(source: &str, standing: SourceStanding) -> SourceLine {
        SourceLine {
            source: source.into(),
            standing,
            audit_pending: false,
            waiting: 0,
            audits: (0, 0),
            claimed_h: 2.0,
            device_estimator: "Lag".into(),
            credited_bits: 0,
            refusals: BTreeMap::new(),
        }
    }

    fn peer(source_lines: Vec<SourceLine>) -> PeerLine {
        PeerLine {
            node: NodeId([7; 32]),
            region: "eu-west".into(),
            operator: "alpha".into(),
            trusted: true,
            quarantine: None,
            share_key: Some("0123456789ab".into()),
            power: "Mains".into(),
            shares_held: 2,
            heartbeat_age_s: Some(3),
            credited_bits: 4096,
            sources: Vec::new(),
            refusals: [
                ("unattested".to_string(), 18),
                ("audit_pending".to_string(), 12),
            ]
            .into_iter()
            .collect(),
            source_lines,
        }
    }

    #[test]
    fn each_standing_reads_with_its_figures() {
        let mut audited = line(
            "jitter",
            SourceStanding::Audited {
                h: 1.8204,
                samples: 100_000,
                estimator: "MCV".into(),
                age_s: 60,
            },
        );
        audited.credited_bits = 4096;
        audited.refusals = [("audit_pending".to_string(), 12)].into_iter().collect();
        assert_eq!(
            source_text(&audited),
            "source jitter: audited H 1.820 over 100000 samples (MCV, 60 s ago); claims H 2.000 \
             (Lag); credited 4096 bits; refused audit_pending 12"
        );
        let mut new = line("cpu:load", SourceStanding::Unaudited);
        new.audit_pending = true;
        new.waiting = 3;
        assert_eq!(
            source_text(&new),
            "source cpu:load: unaudited, audit under way, 3 blocks waiting for it; claims H 2.000 \
             (Lag); credited 0 bits"
        );
        let failed = line(
            "hwmon:x",
            SourceStanding::Failed {
                reason: "no answer in time\u{1b}[2J".into(),
            },
        );
        assert_eq!(
            source_text(&failed),
            "source hwmon:x: audit failed (no answer in time?[2J); claims H 2.000 (Lag); \
             credited 0 bits"
        );
        let liar = line(
            "prng",
            SourceStanding::Quarantined {
                claimed: 8.0,
                found: 0.1,
            },
        );
        assert!(
            source_text(&liar)
                .starts_with("source prng: QUARANTINED: claimed H 8.000, audit found 0.100;")
        );
    }

    #[test]
    fn the_peer_row_is_kept_and_followed_by_its_refusals_and_source_lines() {
        let text = render(&[peer(vec![
            line("a", SourceStanding::Unaudited),
            line("b", SourceStanding::Unaudited),
        ])]);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 5, "{text}");
        assert!(rows[0].starts_with("peer id "));
        assert!(rows[1].starts_with(&coordinator::admin::peer_text(&NodeId([7; 32]))));
        assert!(rows[1].contains("eu-west") && rows[1].contains("4096"));
        assert_eq!(rows[2], "    refused: unattested 18, audit_pending 12");
        assert!(rows[3].starts_with("    source a: unaudited;"));
        assert!(rows[4].starts_with("    source b: unaudited;"));
    }
}
