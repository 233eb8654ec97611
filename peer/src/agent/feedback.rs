//! The coordinator's word on this device's sources, carried by its attestation challenges: kept within bounds, logged when it changes, served as metrics.

use super::metrics::PeerMetrics;
use protocols::attestation::SourceFeedback;
use protocols::attestation::feedback::bounded;

/// Something the coordinator now says differently about a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// The source's standing changed (or the source is new to the feedback).
    Standing {
        /// Source name.
        source: &'a str,
        /// The standing before, if the source was in the last feedback.
        from: Option<&'a str>,
        /// The standing now.
        to: &'a str,
        /// The audit's min-entropy, thousandths of a bit per sample.
        audit_h_millibits: Option<u32>,
    },
    /// The count of the source's contributions refused for a reason changed.
    Refused {
        /// Source name.
        source: &'a str,
        /// Why (a metric label).
        reason: &'a str,
        /// The count before (0 if not listed).
        from: u64,
        /// The count now.
        to: u64,
    },
}

/// What differs in `new` from `old`: standings that changed or are new, and refusal counts
/// that changed. Sources or reasons no longer listed are not changes (a restarted coordinator
/// starts counting afresh).
pub fn changes<'a>(old: &'a [SourceFeedback], new: &'a [SourceFeedback]) -> Vec<Change<'a>> {
    let mut out = Vec::new();
    for entry in new {
        let before = old.iter().find(|o| o.source == entry.source);
        if before.is_none_or(|b| b.standing != entry.standing) {
            out.push(Change::Standing {
                source: &entry.source,
                from: before.map(|b| b.standing.as_str()),
                to: &entry.standing,
                audit_h_millibits: entry.audit_h_millibits,
            });
        }
        for (reason, to) in &entry.refusals {
            let from = before
                .and_then(|b| b.refusals.iter().find(|(r, _)| r == reason))
                .map_or(0, |(_, n)| *n);
            if from != *to {
                out.push(Change::Refused {
                    source: &entry.source,
                    reason,
                    from,
                    to: *to,
                });
            }
        }
    }
    out
}

/// Keeps the feedback of one challenge (within [`bounded`]'s limits) for the metrics and logs
/// at INFO what changed since the last one.
pub fn record(metrics: &PeerMetrics, feedback: Vec<SourceFeedback>) {
    let kept = bounded(feedback);
    let previous = metrics.replace_source_feedback(kept.clone());
    for change in changes(&previous, &kept) {
        match change {
            Change::Standing {
                source,
                from,
                to,
                audit_h_millibits,
            } => tracing::info!(
                source,
                from = from.unwrap_or("-"),
                standing = to,
                audit_h = audit_h_millibits.map(|m| f64::from(m) / 1000.0),
                "coordinator: source standing"
            ),
            Change::Refused {
                source,
                reason,
                from,
                to,
            } => tracing::info!(
                source,
                reason,
                refused = to,
                since_last = to.saturating_sub(from),
                "coordinator: contributions of this source not credited"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fb(source: &str, standing: &str, refusals: &[(&str, u64)]) -> SourceFeedback {
        SourceFeedback {
            source: source.into(),
            standing: standing.into(),
            audit_h_millibits: None,
            credited_bits: 0,
            refusals: refusals.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn new_sources_changed_standings_and_changed_refusal_counts_are_changes() {
        let old = vec![
            fb("jitter", "unaudited", &[("audit_pending", 3)]),
            fb("prng", "audited", &[]),
        ];
        let new = vec![
            fb(
                "jitter",
                "audited",
                &[("audit_pending", 3), ("cloned_entropy", 1)],
            ),
            fb("prng", "quarantined", &[("source_quarantined", 2)]),
            fb("cpu:load", "unaudited", &[]),
        ];
        assert_eq!(
            changes(&old, &new),
            vec![
                Change::Standing {
                    source: "jitter",
                    from: Some("unaudited"),
                    to: "audited",
                    audit_h_millibits: None
                },
                Change::Refused {
                    source: "jitter",
                    reason: "cloned_entropy",
                    from: 0,
                    to: 1
                },
                Change::Standing {
                    source: "prng",
                    from: Some("audited"),
                    to: "quarantined",
                    audit_h_millibits: None
                },
                Change::Refused {
                    source: "prng",
                    reason: "source_quarantined",
                    from: 0,
                    to: 2
                },
                Change::Standing {
                    source: "cpu:load",
                    from: None,
                    to: "unaudited",
                    audit_h_millibits: None
                },
            ]
        );
    }

    #[test]
    fn the_same_feedback_again_or_a_source_dropped_is_no_change() {
        let old = vec![
            fb("jitter", "audited", &[("audit_pending", 3)]),
            fb("gone", "audited", &[]),
        ];
        assert!(changes(&old, &old[..1]).is_empty());
    }

    #[test]
    fn recorded_feedback_is_bounded_and_replaces_the_last() {
        let metrics = PeerMetrics::default();
        let many: Vec<_> = (0..40)
            .map(|i| fb(&format!("s{i}"), "audited", &[]))
            .collect();
        record(&metrics, many);
        assert_eq!(metrics.source_feedback().len(), 32);
        record(&metrics, vec![fb("only", "unaudited", &[])]);
        assert_eq!(
            metrics.source_feedback(),
            vec![fb("only", "unaudited", &[])]
        );
    }
}
