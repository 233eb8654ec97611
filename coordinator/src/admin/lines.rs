//! The lines of `coordinator status`: one per peer, and under it one per source with its audit standing, claim, credit and refusals.

use crate::intake::sources::{SourceEntry, Standing};
use protocols::ids::NodeId;
use protocols::wire::SourceHealth;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest audit failure reason carried in a line (its text can come from the device).
pub const MAX_REASON_CHARS: usize = 200;

/// One peer in `coordinator status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerLine {
    /// Node id.
    pub node: NodeId,
    /// Region.
    pub region: String,
    /// Operator.
    pub operator: String,
    /// Attested and not quarantined.
    pub trusted: bool,
    /// Quarantine reason.
    pub quarantine: Option<String>,
    /// Fingerprint of the share key it stated (`None`: none yet; it holds no new shares).
    #[serde(default)]
    pub share_key: Option<String>,
    /// Power.
    pub power: String,
    /// Shares held (coordinator's count).
    pub shares_held: u32,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_s: Option<u64>,
    /// Bits credited from it.
    pub credited_bits: u64,
    /// Source health from its heartbeat.
    pub sources: Vec<SourceHealth>,
    /// Contributions not credited, by reason (`unattested`, `audit_pending`, `cloned_entropy`,
    /// `stale`, … as in `entroshard_intake_rejections_total`).
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
    /// Each source that contributed, as the coordinator's entropy audits see it.
    #[serde(default)]
    pub source_lines: Vec<SourceLine>,
}

/// One source of a peer in `coordinator status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceLine {
    /// Source name, as the device's accounting gives it.
    pub source: String,
    /// What its audits found.
    pub standing: SourceStanding,
    /// An audit is under way.
    pub audit_pending: bool,
    /// Blocks kept until an audit answers.
    pub waiting: usize,
    /// Audits that succeeded and that failed.
    pub audits: (u64, u64),
    /// The device's last claim, bits of min-entropy per sample.
    pub claimed_h: f64,
    /// The estimator that set the claim, as the device named it.
    pub device_estimator: String,
    /// Bits credited from this source (after its audit cap, before the duplicate window).
    pub credited_bits: u64,
    /// Blocks of this source not credited, by reason.
    pub refusals: BTreeMap<String, u64>,
}

/// A source's standing, as `coordinator status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SourceStanding {
    /// Never audited yet.
    Unaudited,
    /// Audited: credited at most `h` bits per sample.
    Audited {
        /// Min-entropy per sample found.
        h: f64,
        /// Samples assessed.
        samples: u64,
        /// The estimator that set `h`.
        estimator: String,
        /// Seconds since the audit.
        age_s: u64,
    },
    /// The last audit failed; not credited until one succeeds.
    Failed {
        /// Why (at most [`MAX_REASON_CHARS`] characters).
        reason: String,
    },
    /// Claimed far more than its audit found: never credited again by this coordinator run.
    Quarantined {
        /// The device's claim, bits per sample.
        claimed: f64,
        /// The audit's estimate.
        found: f64,
    },
}

impl SourceLine {
    /// The line of source `name` from its entry in the source book, at `now_ms`.
    pub fn of(name: &str, entry: &SourceEntry, now_ms: u64) -> Self {
        let standing = match &entry.standing {
            Standing::Unaudited => SourceStanding::Unaudited,
            Standing::Audited(a) => SourceStanding::Audited {
                h: a.h,
                samples: a.samples as u64,
                estimator: a.estimator.clone(),
                age_s: now_ms.saturating_sub(a.at_ms) / 1000,
            },
            Standing::Failed { reason } => SourceStanding::Failed {
                reason: reason.chars().take(MAX_REASON_CHARS).collect(),
            },
            Standing::Quarantined { claimed, found } => SourceStanding::Quarantined {
                claimed: *claimed,
                found: *found,
            },
        };
        Self {
            source: name.to_string(),
            standing,
            audit_pending: entry.pending_since.is_some(),
            waiting: entry.waiting(),
            audits: entry.audits,
            claimed_h: entry.last_claim,
            device_estimator: entry.device_estimator.clone(),
            credited_bits: entry.credited_bits,
            refusals: entry
                .refused
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::intake::sources::SourceBook;
    use crate::intake::sources::test_support::{contribute, found};

    fn lines(book: &SourceBook, node: &NodeId, now: u64) -> Vec<SourceLine> {
        book.of(node)
            .map(|(name, e)| SourceLine::of(name, e, now))
            .collect()
    }

    #[test]
    fn each_source_of_a_peer_gets_a_line_with_its_standing_claim_credit_and_refusals() {
        let (dev, other) = (NodeId([1; 32]), NodeId([2; 32]));
        let mut book = SourceBook::new(true, 600_000);
        for source in ["audited", "failed", "liar", "new"] {
            contribute(&mut book, dev, source, 2.0, 0);
        }
        contribute(&mut book, other, "elsewhere", 1.0, 0);
        assert_eq!(book.audits_due(1).len(), 5);
        book.on_audit(dev, "audited", found(1.5, 100_000, 1_000), 0.5, 1_000);
        book.credited(&dev, "audited", 3_000);
        book.on_audit(
            dev,
            "failed",
            Err::<crate::intake::sources::AuditResult, _>("x".repeat(500)),
            0.5,
            1_000,
        );
        contribute(&mut book, dev, "failed", 2.0, 2_000);
        contribute(&mut book, dev, "liar", 7.5, 2_000);
        book.on_audit(dev, "liar", found(0.2, 100_000, 3_000), 0.5, 3_000);
        contribute(&mut book, dev, "liar", 7.5, 4_000);

        let lines = lines(&book, &dev, 61_000);
        let names: Vec<&str> = lines.iter().map(|l| l.source.as_str()).collect();
        assert_eq!(
            names,
            ["audited", "failed", "liar", "new"],
            "only this peer's"
        );

        let audited = &lines[0];
        assert_eq!(
            audited.standing,
            SourceStanding::Audited {
                h: 1.5,
                samples: 100_000,
                estimator: "MCV".into(),
                age_s: 60
            }
        );
        assert_eq!(
            (audited.claimed_h, audited.device_estimator.as_str()),
            (2.0, "Lag")
        );
        assert_eq!(audited.credited_bits, 3_000);
        assert_eq!(audited.audits, (1, 0));

        let SourceStanding::Failed { reason } = &lines[1].standing else {
            panic!("{:?}", lines[1].standing);
        };
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert_eq!(lines[1].refusals.get("audit_failed"), Some(&1));
        assert_eq!(lines[1].audits, (0, 1));

        assert_eq!(
            lines[2].standing,
            SourceStanding::Quarantined {
                claimed: 7.5,
                found: 0.2
            }
        );
        assert_eq!(lines[2].refusals.get("source_quarantined"), Some(&1));

        let new = &lines[3];
        assert_eq!(new.standing, SourceStanding::Unaudited);
        assert!(new.audit_pending);
        assert_eq!(new.waiting, 1);
        assert!(new.refusals.is_empty());
    }

    #[test]
    fn a_status_answer_without_source_lines_still_decodes() {
        #[derive(Serialize)]
        struct OldPeerLine {
            node: NodeId,
            region: String,
            operator: String,
            trusted: bool,
            quarantine: Option<String>,
            power: String,
            shares_held: u32,
            heartbeat_age_s: Option<u64>,
            credited_bits: u64,
            sources: Vec<SourceHealth>,
        }
        let old = OldPeerLine {
            node: NodeId([3; 32]),
            region: "r".into(),
            operator: "o".into(),
            trusted: true,
            quarantine: None,
            power: "Mains".into(),
            shares_held: 1,
            heartbeat_age_s: Some(2),
            credited_bits: 5,
            sources: Vec::new(),
        };
        let line: PeerLine =
            protocols::wire::decode_bounded(&protocols::wire::encode(&old), 4096).unwrap();
        assert!(line.source_lines.is_empty() && line.refusals.is_empty());
    }
}
