//! Why the pool cannot give a key yet, said so that a requester or an operator can act on it: what is missing, and what was refused on the way.

use std::collections::BTreeMap;
use std::fmt;

/// Refusal reasons named in the message at most (the most frequent).
pub const TOP_REASONS: usize = 5;

/// Refusal labels a peer's counts carry that are not about its contributions.
const NOT_CONTRIBUTIONS: &[&str] = &["heartbeat_labels"];

/// What the pool lacks for a key, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shortfall {
    /// Credited bits the pools hold.
    pub credited_bits: u64,
    /// Credited bits a key needs.
    pub needed_bits: u64,
    /// Distinct peers those bits came from.
    pub contributors: usize,
    /// Distinct peers a key needs.
    pub needed_contributors: usize,
    /// Credit still held for its duplicate window (counts once the window closes clean).
    pub held_bits: u64,
    /// Entropy audits asked for and not answered yet.
    pub audits_pending: usize,
    /// Blocks kept until their source's audit answers.
    pub blocks_waiting: usize,
    /// Contributions not credited since the coordinator started, by reason.
    pub refused: BTreeMap<String, u64>,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool holds {} of {} credited bits from {} of {} peers",
            self.credited_bits, self.needed_bits, self.contributors, self.needed_contributors
        )?;
        if self.held_bits > 0 {
            write!(
                f,
                " ({} more held for the duplicate window)",
                self.held_bits
            )?;
        }
        let total = self
            .refused
            .values()
            .fold(0u64, |a, b| a.saturating_add(*b));
        if total == 0 {
            write!(f, ": no contributions refused since start")?;
        } else {
            let mut top: Vec<(&String, &u64)> =
                self.refused.iter().filter(|(_, n)| **n > 0).collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let others = top.len().saturating_sub(TOP_REASONS);
            let named: Vec<String> = top
                .iter()
                .take(TOP_REASONS)
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            write!(
                f,
                ": {total} {} refused since start ({}",
                plural(total, "contribution", "contributions"),
                named.join(", ")
            )?;
            if others > 0 {
                write!(
                    f,
                    ", {others} other {}",
                    plural(others as u64, "reason", "reasons")
                )?;
            }
            write!(f, ")")?;
        }
        if self.audits_pending > 0 {
            write!(
                f,
                "; {} entropy {} under way",
                self.audits_pending,
                plural(self.audits_pending as u64, "audit", "audits")
            )?;
            if self.blocks_waiting > 0 {
                write!(
                    f,
                    " ({} {} waiting for them)",
                    self.blocks_waiting,
                    plural(self.blocks_waiting as u64, "block", "blocks")
                )?;
            }
        }
        Ok(())
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Contributions refused since start, by reason: the per-peer counts summed (without labels that
/// are not about contributions), and for each reason at least what the intake counted itself
/// (it also counts blocks of peers no longer in the table). The two overlap, so they are not
/// added.
pub fn refused_since_start<'a>(
    intake: &BTreeMap<String, u64>,
    peers: impl IntoIterator<Item = &'a BTreeMap<&'static str, u64>>,
) -> BTreeMap<String, u64> {
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    for refusals in peers {
        for (reason, n) in refusals {
            if NOT_CONTRIBUTIONS.contains(reason) {
                continue;
            }
            let e = sum.entry((*reason).to_string()).or_default();
            *e = e.saturating_add(*n);
        }
    }
    for (reason, n) in intake {
        let e = sum.entry(reason.clone()).or_default();
        *e = (*e).max(*n);
    }
    sum
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    }

    #[test]
    fn an_empty_pool_says_what_is_missing_what_was_refused_and_what_is_under_way() {
        let s = Shortfall {
            credited_bits: 0,
            needed_bits: 2048,
            contributors: 0,
            needed_contributors: 3,
            held_bits: 0,
            audits_pending: 3,
            blocks_waiting: 0,
            refused: refused(&[("audit_pending", 12), ("unattested", 18)]),
        };
        assert_eq!(
            s.to_string(),
            "pool holds 0 of 2048 credited bits from 0 of 3 peers: 30 contributions refused \
             since start (unattested 18, audit_pending 12); 3 entropy audits under way"
        );
    }

    #[test]
    fn held_credit_waiting_blocks_and_the_singular_are_said_when_there_are_any() {
        let s = Shortfall {
            credited_bits: 1024,
            needed_bits: 2048,
            contributors: 2,
            needed_contributors: 3,
            held_bits: 512,
            audits_pending: 1,
            blocks_waiting: 1,
            refused: refused(&[("stale", 1)]),
        };
        assert_eq!(
            s.to_string(),
            "pool holds 1024 of 2048 credited bits from 2 of 3 peers (512 more held for the \
             duplicate window): 1 contribution refused since start (stale 1); 1 entropy audit \
             under way (1 block waiting for them)"
        );
    }

    #[test]
    fn nothing_refused_and_no_audit_is_said_plainly() {
        let s = Shortfall {
            needed_bits: 256,
            needed_contributors: 1,
            refused: refused(&[("unattested", 0)]),
            ..Shortfall::default()
        };
        assert_eq!(
            s.to_string(),
            "pool holds 0 of 256 credited bits from 0 of 1 peers: no contributions refused since start"
        );
    }

    #[test]
    fn only_the_five_most_frequent_reasons_are_named_and_the_rest_counted() {
        let s = Shortfall {
            refused: refused(&[
                ("a", 1),
                ("b", 2),
                ("c", 3),
                ("d", 4),
                ("e", 5),
                ("f", 6),
                ("g", 6),
            ]),
            ..Shortfall::default()
        };
        let text = s.to_string();
        assert!(
            text.ends_with(
                "27 contributions refused since start (f 6, g 6, e 5, d 4, c 3, 2 other reasons)"
            ),
            "{text}"
        );
    }

    #[test]
    fn refusals_since_start_sum_the_peers_and_take_the_intakes_count_where_larger() {
        let a: BTreeMap<&'static str, u64> = [
            ("unattested", 10),
            ("audit_pending", 4),
            ("heartbeat_labels", 7),
        ]
        .into_iter()
        .collect();
        let b: BTreeMap<&'static str, u64> = [("unattested", 8), ("audit_pending", 2)]
            .into_iter()
            .collect();
        let intake = refused(&[("audit_pending", 9), ("too_many_sources", 1)]);
        assert_eq!(
            refused_since_start(&intake, [&a, &b]),
            refused(&[
                ("audit_pending", 9),
                ("too_many_sources", 1),
                ("unattested", 18)
            ])
        );
    }
}
