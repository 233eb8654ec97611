//! What the coordinator tells a peer about each of its sources on every attestation challenge (standing, audit, credit, refusals), and the bounds a peer keeps it within.

use serde::{Deserialize, Serialize};

/// Sources a peer keeps from one challenge; entries beyond are ignored.
pub const MAX_SOURCES: usize = 32;
/// Longest source name kept (bytes), as contributions' accounting allows.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest standing or refusal reason kept (bytes); they are short metric labels.
pub const MAX_LABEL_BYTES: usize = 32;
/// Refusal reasons kept per source; reasons beyond are ignored.
pub const MAX_REFUSALS: usize = 16;
/// The name of the entry that carries refusals not tied to one source (an unattested or
/// quarantined device, a stale or out-of-sequence contribution, a duplicate).
pub const DEVICE_WIDE: &str = "*";

/// One source's standing at the coordinator, as its device learns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SourceFeedback {
    /// Source name as the device's accounting gave it, or [`DEVICE_WIDE`].
    pub source: String,
    /// `unaudited`, `audited`, `audit_failed`, `quarantined` (`device` for [`DEVICE_WIDE`]).
    pub standing: String,
    /// The last successful audit's min-entropy, thousandths of a bit per sample.
    pub audit_h_millibits: Option<u32>,
    /// Bits credited from this source by this coordinator run.
    pub credited_bits: u64,
    /// Contributions not credited since the coordinator started, by reason (a metric label).
    #[cfg_attr(test, proptest(strategy = "crate::test_sizes::small_vec()"))]
    pub refusals: Vec<(String, u64)>,
}

/// What a peer keeps of the feedback it was sent: the first [`MAX_SOURCES`] entries, without
/// those whose name or standing is over its bound or whose name came earlier, each with its
/// first [`MAX_REFUSALS`] refusals whose reason is within [`MAX_LABEL_BYTES`]. The coordinator
/// applies the same bounds before sending.
pub fn bounded(feedback: Vec<SourceFeedback>) -> Vec<SourceFeedback> {
    let mut kept: Vec<SourceFeedback> = Vec::new();
    for mut entry in feedback.into_iter().take(MAX_SOURCES) {
        let fits = !entry.source.is_empty()
            && entry.source.len() <= MAX_NAME_BYTES
            && entry.standing.len() <= MAX_LABEL_BYTES;
        if !fits || kept.iter().any(|k| k.source == entry.source) {
            continue;
        }
        entry.refusals.truncate(MAX_REFUSALS);
        entry
            .refusals
            .retain(|(reason, _)| !reason.is_empty() && reason.len() <= MAX_LABEL_BYTES);
        kept.push(entry);
    }
    kept
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(source: &str, refusals: usize) -> SourceFeedback {
        SourceFeedback {
            source: source.into(),
            standing: "audited".into(),
            audit_h_millibits: Some(1800),
            credited_bits: 4096,
            refusals: (0..refusals).map(|i| (format!("r{i}"), 1)).collect(),
        }
    }

    #[test]
    fn a_peer_keeps_at_most_32_sources_and_16_refusals_each() {
        let many: Vec<_> = (0..40).map(|i| entry(&format!("s{i}"), 20)).collect();
        let kept = bounded(many);
        assert_eq!(kept.len(), MAX_SOURCES);
        assert_eq!(kept[0].source, "s0");
        assert_eq!(kept[31].source, "s31");
        assert!(kept.iter().all(|e| e.refusals.len() == MAX_REFUSALS));
        assert_eq!(kept[0].refusals[15].0, "r15");
    }

    #[test]
    fn overlong_empty_or_repeated_names_and_overlong_labels_are_ignored() {
        let mut long_standing = entry("b", 0);
        long_standing.standing = "x".repeat(MAX_LABEL_BYTES + 1);
        let mut odd_reasons = entry("c", 0);
        odd_reasons.refusals = vec![
            ("y".repeat(MAX_LABEL_BYTES + 1), 3),
            (String::new(), 1),
            ("audit_pending".into(), 2),
        ];
        let kept = bounded(vec![
            entry(&"n".repeat(MAX_NAME_BYTES + 1), 1),
            entry(&"n".repeat(MAX_NAME_BYTES), 1),
            entry("", 1),
            entry("a", 1),
            entry("a", 2),
            long_standing,
            odd_reasons,
        ]);
        let names: Vec<&str> = kept.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(names, [&"n".repeat(MAX_NAME_BYTES)[..], "a", "c"]);
        assert_eq!(kept[1].refusals.len(), 1, "the first `a` is kept");
        assert_eq!(kept[2].refusals, vec![("audit_pending".to_string(), 2)]);
    }

    #[test]
    fn feedback_within_bounds_is_kept_unchanged() {
        let within = vec![entry("jitter", 3), entry(DEVICE_WIDE, 1)];
        assert_eq!(bounded(within.clone()), within);
    }
}
