//! What a device is told about its own sources on each attestation challenge: their standing, audit, credit and refusals, from the source book and the device's refusal counts.

use super::sources::{SourceBook, Standing};
use protocols::attestation::SourceFeedback;
use protocols::attestation::feedback::{DEVICE_WIDE, MAX_REFUSALS};
use protocols::ids::NodeId;
use std::collections::BTreeMap;

/// Refusal labels a peer's counts carry that are not about its contributions.
const NOT_CONTRIBUTIONS: &[&str] = &["heartbeat_labels"];

/// The feedback for `node`: first the refusals not tied to one source (the device's counts less
/// what its sources account for), then one entry per source in name order. Refusals are listed
/// most frequent first, at most [`MAX_REFUSALS`] per entry.
pub fn feedback_of(
    book: &SourceBook,
    node: &NodeId,
    device_refusals: &BTreeMap<&'static str, u64>,
) -> Vec<SourceFeedback> {
    let mut by_source: BTreeMap<&str, u64> = BTreeMap::new();
    let mut sources = Vec::new();
    for (name, entry) in book.of(node) {
        for (reason, n) in &entry.refused {
            let sum = by_source.entry(*reason).or_default();
            *sum = sum.saturating_add(*n);
        }
        let audit_h = match &entry.standing {
            Standing::Audited(a) => Some(a.h),
            Standing::Quarantined { found, .. } => Some(*found),
            Standing::Unaudited | Standing::Failed { .. } => None,
        };
        sources.push(SourceFeedback {
            source: name.to_string(),
            standing: entry.standing.label().to_string(),
            audit_h_millibits: audit_h.map(millibits),
            credited_bits: entry.credited_bits,
            refusals: most_frequent(entry.refused.iter().map(|(r, n)| (*r, *n))),
        });
    }
    let device_wide = most_frequent(
        device_refusals
            .iter()
            .filter(|(reason, _)| !NOT_CONTRIBUTIONS.contains(*reason))
            .map(|(reason, n)| {
                let by_sources = by_source.get(reason).copied().unwrap_or(0);
                (*reason, n.saturating_sub(by_sources))
            }),
    );
    let mut out = Vec::with_capacity(sources.len() + 1);
    if !device_wide.is_empty() {
        out.push(SourceFeedback {
            source: DEVICE_WIDE.to_string(),
            standing: "device".to_string(),
            audit_h_millibits: None,
            credited_bits: 0,
            refusals: device_wide,
        });
    }
    out.extend(sources);
    out
}

/// Thousandths of a bit, rounded; negative or not a number is 0.
fn millibits(h: f64) -> u32 {
    // `as` saturates: above u32::MAX is u32::MAX, NaN is 0.
    (h.max(0.0) * 1000.0).round() as u32
}

/// Non-zero counts, most frequent first (then by name), at most [`MAX_REFUSALS`].
fn most_frequent<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> Vec<(String, u64)> {
    let mut v: Vec<(&str, u64)> = counts.filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .take(MAX_REFUSALS)
        .map(|(r, n)| (r.to_string(), n))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::intake::sources::test_support::{contribute, found};

    #[test]
    fn a_device_learns_each_sources_standing_audit_credit_and_refusals() {
        let dev = NodeId([1; 32]);
        let mut book = SourceBook::new(true, 600_000);
        contribute(&mut book, dev, "jitter", 2.0, 0);
        contribute(&mut book, dev, "prng", 8.0, 0);
        book.audits_due(1);
        book.on_audit(dev, "jitter", found(1.8204, 100_000, 2), 0.5, 2);
        book.credited(&dev, "jitter", 4_096);
        book.on_audit(dev, "prng", found(0.1, 100_000, 2), 0.5, 2);
        for _ in 0..3 {
            contribute(&mut book, dev, "prng", 8.0, 3);
        }
        book.refused(&dev, "jitter", "cloned_entropy");
        let device: BTreeMap<&'static str, u64> = [
            ("unattested", 18),
            ("source_quarantined", 4),
            ("cloned_entropy", 1),
            ("heartbeat_labels", 2),
        ]
        .into_iter()
        .collect();

        let fb = feedback_of(&book, &dev, &device);
        let names: Vec<&str> = fb.iter().map(|f| f.source.as_str()).collect();
        assert_eq!(names, [DEVICE_WIDE, "jitter", "prng"]);
        assert_eq!(
            fb[0].refusals,
            vec![
                ("unattested".to_string(), 18),
                ("source_quarantined".to_string(), 1)
            ],
            "what the sources account for is not repeated; heartbeats are not contributions"
        );
        assert_eq!(fb[1].standing, "audited");
        assert_eq!(fb[1].audit_h_millibits, Some(1_820));
        assert_eq!(fb[1].credited_bits, 4_096);
        assert_eq!(fb[1].refusals, vec![("cloned_entropy".to_string(), 1)]);
        assert_eq!(fb[2].standing, "quarantined");
        assert_eq!(fb[2].audit_h_millibits, Some(100));
        assert_eq!(fb[2].refusals, vec![("source_quarantined".to_string(), 3)]);
    }

    #[test]
    fn a_device_with_nothing_refused_and_no_sources_gets_no_feedback() {
        let book = SourceBook::new(true, 600_000);
        let device: BTreeMap<&'static str, u64> = [("heartbeat_labels", 1)].into_iter().collect();
        assert!(feedback_of(&book, &NodeId([1; 32]), &device).is_empty());
    }

    #[test]
    fn refusals_are_listed_most_frequent_first_and_at_most_sixteen() {
        let names: Vec<String> = (0..20).map(|i| format!("r{i:02}")).collect();
        let list = most_frequent(
            names
                .iter()
                .enumerate()
                .map(|(i, r)| (r.as_str(), i as u64)),
        );
        assert_eq!(list.len(), MAX_REFUSALS);
        assert_eq!(list[0], ("r19".to_string(), 19));
        assert!(list.iter().all(|(_, n)| *n > 0));
        assert_eq!(millibits(f64::NAN), 0);
        assert_eq!(millibits(-1.0), 0);
        assert_eq!(millibits(8.0), 8_000);
    }
}
