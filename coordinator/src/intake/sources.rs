//! Each contributing source's standing at the coordinator: its entropy audits (a window of raw
//! samples, assessed here with the SP 800-90B §6.3 estimators), the cap they put on its credit,
//! the blocks waiting for a first audit, and a source quarantine for an overclaim
//! (docs/protocol/entropy-audit.md). Pure: time and randomness are arguments.

use protocols::entropy::{Accounting, ConditionedBlock};
use protocols::ids::NodeId;
use std::collections::BTreeMap;

/// A claim more than this factor above the audit's estimate (plus [`OVERCLAIM_SLACK`]) is an
/// overclaim: the coordinator's estimate is the more conservative one (fewer samples, a 99%
/// bound), so an honest device stays well inside it.
pub const OVERCLAIM_FACTOR: f64 = 2.0;
/// Bits per sample of slack on top of [`OVERCLAIM_FACTOR`].
pub const OVERCLAIM_SLACK: f64 = 0.5;
/// Fewest audit samples on which an overclaim quarantines a source (on fewer, the audit only
/// caps the credit: a short window's estimate is too wide to accuse anyone).
pub const MIN_SAMPLES_TO_ACCUSE: usize = 4096;
/// Blocks kept per source while its first audit runs; more are refused (`audit_pending`).
pub const MAX_WAITING: usize = 8;
/// Sources tracked at most; a new one beyond is refused (`too_many_sources`).
pub const MAX_SOURCES: usize = 65_536;

/// How a source stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Never audited; an audit is asked for at its first contribution.
    Unaudited,
    /// Audited: credit per sample at most `h`.
    Audited(AuditResult),
    /// The last audit failed (refused, unanswered, malformed): not credited until one succeeds.
    Failed {
        /// Why.
        reason: String,
    },
    /// Claimed far more than the audit found: never credited again by this coordinator run.
    Quarantined {
        /// The device's claim, bits per sample.
        claimed: f64,
        /// The audit's estimate.
        found: f64,
    },
}

impl Standing {
    /// A short label: `unaudited`, `audited`, `audit_failed`, `quarantined` (what a device is told
    /// on its attestation challenge).
    pub fn label(&self) -> &'static str {
        match self {
            Standing::Unaudited => "unaudited",
            Standing::Audited(_) => "audited",
            Standing::Failed { .. } => "audit_failed",
            Standing::Quarantined { .. } => "quarantined",
        }
    }
}

/// What one audit found.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditResult {
    /// Min-entropy per sample found (bits).
    pub h: f64,
    /// Samples assessed.
    pub samples: usize,
    /// The estimator that set it.
    pub estimator: String,
    /// When (coordinator clock, ms).
    pub at_ms: u64,
}

/// One source's entry.
#[derive(Debug)]
pub struct SourceEntry {
    /// Its standing.
    pub standing: Standing,
    /// An audit is under way since (ms).
    pub pending_since: Option<u64>,
    /// When the next audit is due (ms).
    pub next_audit_ms: u64,
    /// The device's last claim, bits per sample.
    pub last_claim: f64,
    /// Its estimator, as the device named it.
    pub device_estimator: String,
    /// Bits credited from this source (after its audit cap, before the duplicate window).
    pub credited_bits: u64,
    /// Blocks refused, by reason.
    pub refused: BTreeMap<&'static str, u64>,
    /// Audits done and failed.
    pub audits: (u64, u64),
    waiting: Vec<Waiting>,
}

impl SourceEntry {
    /// Blocks kept until an audit answers.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// A block waiting for its source's first audit.
#[derive(Debug)]
pub struct Waiting {
    /// The sender's source index (its pool cursor).
    pub source_index: u32,
    /// The block.
    pub block: ConditionedBlock,
    /// Its accounting.
    pub accounting: Accounting,
}

/// What to do with a contribution of a source.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Credit it, each sample worth at most this many bits.
    Credit(f64),
    /// Kept until the source's audit answers (`true`: none is under way yet; the next
    /// [`SourceBook::audits_due`] starts it).
    Waiting(bool),
    /// Not credited (a metric label); the block is only witnessed.
    Refuse(&'static str),
}

/// What an audit answer settles.
#[derive(Debug)]
pub struct Settled {
    /// The blocks that waited, to credit with `cap` (or to witness when `cap` is `None`).
    pub waiting: Vec<Waiting>,
    /// The cap now in force.
    pub cap: Option<f64>,
    /// Whether this audit quarantined the source.
    pub quarantined: bool,
}

/// Every source's standing.
pub struct SourceBook {
    entries: BTreeMap<(NodeId, String), SourceEntry>,
    /// Audits on; `false` credits from accounting alone (the simulator, decision 0039).
    auditing: bool,
    /// Mean interval between audits of one source (ms).
    mean_interval_ms: u64,
    /// An audit older than this no longer counts (ms).
    validity_ms: u64,
    /// Wait before asking again after a failed audit (ms).
    retry_ms: u64,
}

impl SourceBook {
    /// A book auditing each source at its first contribution and then every
    /// `mean_interval_ms` on average (exponentially spread); `auditing == false` credits every
    /// source from its accounting alone.
    pub fn new(auditing: bool, mean_interval_ms: u64) -> Self {
        let mean = mean_interval_ms.max(1000);
        Self {
            entries: BTreeMap::new(),
            auditing,
            mean_interval_ms: mean,
            validity_ms: mean.saturating_mul(3),
            retry_ms: 30_000.min(mean),
        }
    }

    /// Whether audits run.
    pub fn auditing(&self) -> bool {
        self.auditing
    }

    /// The entry of a source, if it ever contributed.
    pub fn get(&self, node: &NodeId, source: &str) -> Option<&SourceEntry> {
        self.entries.get(&(*node, source.to_string()))
    }

    /// Audits under way now (asked for and not answered yet).
    pub fn audits_pending(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.pending_since.is_some())
            .count()
    }

    /// Blocks kept until their source's audit answers, over every source.
    pub fn blocks_waiting(&self) -> usize {
        self.entries.values().map(|e| e.waiting.len()).sum()
    }

    /// Every source of `node`.
    pub fn of(&self, node: &NodeId) -> impl Iterator<Item = (&str, &SourceEntry)> {
        self.entries
            .range((*node, String::new())..)
            .take_while(move |((n, _), _)| n == node)
            .map(|((_, s), e)| (s.as_str(), e))
    }

    /// Decides about a contribution of `source` claiming `accounting` at `now_ms`.
    pub fn on_contribution(
        &mut self,
        node: NodeId,
        source: &str,
        block: Waiting,
        device_estimator: &str,
        now_ms: u64,
    ) -> Decision {
        let accounting = block.accounting;
        if !self.entries.contains_key(&(node, source.to_string()))
            && self.entries.len() >= MAX_SOURCES
        {
            return Decision::Refuse("too_many_sources");
        }
        let auditing = self.auditing;
        let validity = self.validity_ms;
        let entry = self
            .entries
            .entry((node, source.to_string()))
            .or_insert_with(|| SourceEntry {
                standing: Standing::Unaudited,
                pending_since: None,
                next_audit_ms: now_ms,
                last_claim: 0.0,
                device_estimator: String::new(),
                credited_bits: 0,
                refused: BTreeMap::new(),
                audits: (0, 0),
                waiting: Vec::new(),
            });
        entry.last_claim = accounting.h_per_sample;
        if entry.device_estimator != device_estimator {
            entry.device_estimator = device_estimator.to_string();
        }
        if !auditing {
            return Decision::Credit(f64::INFINITY);
        }
        let decision = match &entry.standing {
            Standing::Quarantined { .. } => Decision::Refuse("source_quarantined"),
            Standing::Audited(a) if now_ms.saturating_sub(a.at_ms) <= validity => {
                Decision::Credit(a.h)
            }
            Standing::Failed { .. } if entry.pending_since.is_none() => {
                Decision::Refuse("audit_failed")
            }
            _ => {
                if entry.waiting.len() >= MAX_WAITING {
                    Decision::Refuse("audit_pending")
                } else {
                    entry.waiting.push(block);
                    // Started by the next `audits_due` (the service's tick).
                    entry.next_audit_ms = entry.next_audit_ms.min(now_ms);
                    Decision::Waiting(entry.pending_since.is_none())
                }
            }
        };
        if let Decision::Refuse(reason) = decision {
            *entry.refused.entry(reason).or_default() += 1;
        }
        decision
    }

    /// Sources whose audit is due at `now_ms` (none under way); each is marked as under way.
    pub fn audits_due(&mut self, now_ms: u64) -> Vec<(NodeId, String)> {
        if !self.auditing {
            return Vec::new();
        }
        let mut due = Vec::new();
        for ((node, source), e) in &mut self.entries {
            let done = matches!(e.standing, Standing::Quarantined { .. });
            if !done && e.pending_since.is_none() && e.next_audit_ms <= now_ms {
                e.pending_since = Some(now_ms);
                due.push((*node, source.clone()));
            }
        }
        due
    }

    /// Records an audit's outcome (`uniform` in [0, 1) spreads the next one). Blocks that waited
    /// are handed back with the cap to credit them at, or none. A failure is kept as the text an
    /// operator reads in `status`.
    pub fn on_audit(
        &mut self,
        node: NodeId,
        source: &str,
        outcome: Result<AuditResult, impl std::fmt::Display>,
        uniform: f64,
        now_ms: u64,
    ) -> Settled {
        let mean = self.mean_interval_ms as f64;
        let retry = self.retry_ms;
        let Some(e) = self.entries.get_mut(&(node, source.to_string())) else {
            return Settled {
                waiting: Vec::new(),
                cap: None,
                quarantined: false,
            };
        };
        e.pending_since = None;
        let waiting = std::mem::take(&mut e.waiting);
        match outcome {
            Ok(result) => {
                e.audits.0 += 1;
                let overclaim = e.last_claim > result.h * OVERCLAIM_FACTOR + OVERCLAIM_SLACK;
                if overclaim && result.samples >= MIN_SAMPLES_TO_ACCUSE {
                    e.standing = Standing::Quarantined {
                        claimed: e.last_claim,
                        found: result.h,
                    };
                    return Settled {
                        waiting,
                        cap: None,
                        quarantined: true,
                    };
                }
                let cap = result.h;
                // Exponential spread: -ln(1 - u) × mean, bounded to 5 means.
                let next = (-(1.0 - uniform.clamp(0.0, 0.999_999)).ln() * mean).min(5.0 * mean);
                e.next_audit_ms = now_ms.saturating_add(next as u64);
                e.standing = Standing::Audited(result);
                Settled {
                    waiting,
                    cap: Some(cap),
                    quarantined: false,
                }
            }
            Err(reason) => {
                e.audits.1 += 1;
                e.next_audit_ms = now_ms.saturating_add(retry);
                e.standing = Standing::Failed {
                    reason: reason.to_string(),
                };
                Settled {
                    waiting,
                    cap: None,
                    quarantined: false,
                }
            }
        }
    }

    /// Counts credit given to a source.
    pub fn credited(&mut self, node: &NodeId, source: &str, bits: u64) {
        if let Some(e) = self.entries.get_mut(&(*node, source.to_string())) {
            e.credited_bits = e.credited_bits.saturating_add(bits);
        }
    }

    /// Counts a refusal of a source's block for `reason`.
    pub fn refused(&mut self, node: &NodeId, source: &str, reason: &'static str) {
        if let Some(e) = self.entries.get_mut(&(*node, source.to_string())) {
            *e.refused.entry(reason).or_default() += 1;
        }
    }

    /// Audits under way for longer than `timeout_ms` fail (their task is gone or stuck).
    pub fn expire_pending(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<(NodeId, String)> {
        self.entries
            .iter()
            .filter(|(_, e)| {
                e.pending_since
                    .is_some_and(|since| now_ms.saturating_sub(since) > timeout_ms)
            })
            .map(|((n, s), _)| (*n, s.clone()))
            .collect()
    }
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;

/// What the source book's tests and its readers' tests build entries from.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    use super::*;

    /// A block of four outputs from 640 samples claimed at `h` bits each.
    pub fn waiting(source_index: u32, h: f64) -> Waiting {
        Waiting {
            source_index,
            block: ConditionedBlock::from_received(vec![7; 128], 640).unwrap(),
            accounting: Accounting {
                outputs: 4,
                raw_samples: 640,
                h_per_sample: h,
            },
        }
    }

    /// `source` of `node` contributes one such block at `at` ms.
    pub fn contribute(book: &mut SourceBook, node: NodeId, source: &str, h: f64, at: u64) {
        book.on_contribution(node, source, waiting(0, h), "Lag", at);
    }

    /// An audit that found `h` bits per sample over `samples` at `at_ms`.
    pub fn found(h: f64, samples: usize, at_ms: u64) -> Result<AuditResult, &'static str> {
        Ok(AuditResult {
            h,
            samples,
            estimator: "MCV".into(),
            at_ms,
        })
    }
}
