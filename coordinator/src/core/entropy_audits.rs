//! Entropy audits decided (docs/protocol/entropy-audit.md): which sources to ask for a window of
//! raw samples and which audits count as lost, whether a device's answer is a window that may
//! be assessed, its assessment with the ten SP 800-90B §6.3 estimators, and its settling (the
//! source's cap, its waiting blocks, a quarantine). The driver only sends the request, runs the
//! assessment on a blocking thread and reports back.

use super::errors::AuditError;
use super::gossip::Count;
use super::state::State;
use crate::intake::sources::AuditResult;
use protocols::entropy::assess::{MIN_SAMPLES, assess};
use protocols::ids::NodeId;
use protocols::wire::{self, AuditRequest, AuditWindow, Reply, WIRE_VERSION};

/// The encoded request for a window of `samples` samples of `source`.
pub fn request(source: &str, samples: u32) -> Vec<u8> {
    wire::encode(&AuditRequest {
        v: WIRE_VERSION,
        source: source.to_string(),
        samples,
    })
}

/// The window in a device's `reply` to a request for `samples` samples of `source`, if it may
/// be assessed: of that source, 1 to 8 bits a sample, no more samples than asked and at least
/// the estimators' minimum.
pub fn check_reply(
    reply: &[u8],
    max_len: usize,
    source: &str,
    samples: u32,
) -> Result<AuditWindow, AuditError> {
    let reply: Reply<AuditWindow> = wire::decode(reply, max_len)?;
    let window = reply.result.map_err(AuditError::Refused)?;
    if window.source != source || !(1..=8).contains(&window.bits_per_sample) {
        return Err(AuditError::WrongWindow);
    }
    if window.samples.len() > samples as usize {
        return Err(AuditError::TooManySamples {
            got: window.samples.len(),
            asked: samples,
        });
    }
    if window.samples.len() < MIN_SAMPLES {
        return Err(AuditError::TooFewSamples {
            got: window.samples.len(),
            min: MIN_SAMPLES,
        });
    }
    Ok(window)
}

/// Assesses a checked `window` (seconds of CPU on a small board: run it off the loop); the
/// result is stamped with `finished_at()`, read when the estimators are done.
pub fn assess_window(
    window: &AuditWindow,
    finished_at: impl FnOnce() -> u64,
) -> Result<AuditResult, AuditError> {
    let assessment = assess(&window.samples, window.bits_per_sample)?;
    let lowest = assessment.estimates.iter().min_by(|a, b| {
        a.min_entropy_per_sample
            .total_cmp(&b.min_entropy_per_sample)
    });
    Ok(AuditResult {
        h: assessment.min_entropy_per_sample,
        samples: window.samples.len(),
        estimator: lowest.map_or("none".into(), |e| e.name.to_string()),
        at_ms: finished_at(),
    })
}

impl State {
    /// Settles an audit's `outcome` at `now_ms`: the source's cap, its waiting blocks, a
    /// quarantine; `rng` places the source's next audit. Returns what to count.
    pub fn settle_entropy_audit<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        node: NodeId,
        source: &str,
        outcome: Result<AuditResult, AuditError>,
        now_ms: u64,
        rng: &mut R,
    ) -> Vec<Count> {
        let uniform = f64::from(rng.next_u32()) / f64::from(u32::MAX);
        let mut counts = Vec::new();
        self.books()
            .settle_audit(node, source, outcome, uniform, now_ms, &mut counts);
        counts
    }

    /// At `now_ms`: fails the audits under way for too long (settled as not run) and returns
    /// the audits due, to start, with what to count.
    pub fn entropy_audit_tick<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now_ms: u64,
        rng: &mut R,
    ) -> (Vec<(NodeId, String)>, Vec<Count>) {
        let mut counts = Vec::new();
        let lost = self
            .sources
            .expire_pending(now_ms, self.rules.entropy_audit_lost_ms);
        for (node, source) in lost {
            let lost = Err(AuditError::NotRun("audit task lost".into()));
            counts.extend(self.settle_entropy_audit(node, &source, lost, now_ms, rng));
        }
        (self.sources.audits_due(now_ms), counts)
    }
}

#[cfg(test)]
#[path = "entropy_audits_tests.rs"]
mod tests;
