//! Holder audits decided on virtual time (decisions 0014, 0058): when the coordinator asks a
//! session's holders to prove their shares (docs/protocol/holder-audits.md; a session dealt
//! before share keys is still fetched and opened), which holders it asks, how it judges each
//! reply, and whom it asks again. The first audit of an epoch comes `holder_audit_s` after its commit; a holder that did
//! not answer is asked again, alone, after twice, four times … that wait (at most ten minutes,
//! six times), so a bad holder cannot escape by being away when its audit falls due; a newer
//! epoch's audit replaces those retries. The driver sends the fetches and feeds back what came.

mod round;
pub use round::{Ask, Round, fetch_request};

use crate::core::errors::ProofMismatch;
use crate::db::SessionRecord;
use crate::peers::{PeerTable, Quarantine};
use protocols::ids::{NodeId, SessionId};
use protocols::sealing::{self, SealedShare, ShareOpeningKey, ShareSlot};
use protocols::share_proof::{self, ProofContext};
use protocols::wire::{self, FetchedShare, ProveShareReply, ProvenShare, Refusal};
use std::collections::BTreeMap;

/// A "not found" this close to the session's expiry is not held against a holder: its clock may
/// run ahead of the coordinator's and its expiry sweep may have deleted the share.
pub const EXPIRY_MARGIN_MS: u64 = 60_000;

/// How many times a holder that did not answer its audit is asked again.
pub const SILENT_RETRIES: u32 = 6;

/// The longest wait before asking a silent holder again.
pub const MAX_RETRY_DELAY_MS: u64 = 600_000;

/// What a holder did wrong, as the coordinator saw it on its own authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderFault {
    /// The share it returned does not open under its slot's key or fails the commitments.
    BadShare(String),
    /// It said it has no share of an epoch it acknowledged storing durably.
    Withheld,
}

/// What came back from one holder, as the driver received it.
#[derive(Debug)]
pub enum Reply {
    /// No decodable answer: unreachable, timed out, or bytes that are not a fetch reply.
    NoAnswer(String),
    /// The holder refused.
    Refused(Refusal),
    /// The holder returned a sealed share (a version-1 answer).
    Sealed(SealedShare),
    /// The holder answered a version-2 fetch (a session dealt before share keys: a sealed
    /// share).
    Fetched(FetchedShare),
    /// The holder answered a `ProveShare` with a proof.
    Proven(ProvenShare),
}

impl Reply {
    /// A holder's raw answer to a `ProveShare` order (`None`: no answer).
    pub fn of_proof(raw: Option<&[u8]>) -> Reply {
        let Some(raw) = raw else {
            return Reply::NoAnswer("no answer".into());
        };
        match wire::decode::<ProveShareReply>(raw, peer::node::Protocol::Store.limits().1) {
            Err(e) => Reply::NoAnswer(format!("undecodable reply: {e}")),
            Ok(r) => match r.result {
                Ok(proven) => Reply::Proven(proven),
                Err(refusal) => Reply::Refused(refusal),
            },
        }
    }
}

/// One holder's answer, judged.
#[derive(Debug)]
pub enum Answer {
    /// A proof that checked, or (a session dealt before share keys) a share that opened and
    /// verified and was dropped at once.
    Verified,
    /// Proof of a bad holder.
    Fault(HolderFault),
    /// Unreachable, busy, or a refusal that says nothing about its store: no blame.
    Silent(String),
}

/// `reply` as judged after a restore (decision 0046): when the database was restored from a
/// backup taken at `restored_backup_ms`, no earlier than `record`'s last commit, the session may
/// have rotated since and its holders rightly deleted the epoch the record names; their "not
/// found" is then silence, not withholding.
pub fn excuse_after_restore(
    record: &SessionRecord,
    reply: Reply,
    restored_backup_ms: Option<u64>,
) -> Reply {
    let may_predate_a_rotation = restored_backup_ms
        .is_some_and(|backup| record.created_at_ms.max(record.rotated_at_ms) <= backup);
    match reply {
        Reply::Refused(Refusal::NotFound) if may_predate_a_rotation => Reply::NoAnswer(
            "share not found; the session comes from a restored backup and may have rotated since"
                .into(),
        ),
        reply => reply,
    }
}

/// Judges `reply` from the holder of `slot` of `record` at `now_ms`: a proof over `challenge`
/// that checks against the slot's public share (or, for a session dealt before share keys, a
/// share that opens under `legacy` and verifies against the commitments), proof of a fault, or
/// silence.
pub fn judge(
    record: &SessionRecord,
    slot: &ShareSlot,
    legacy: Option<&ShareOpeningKey>,
    challenge: &[u8; 32],
    reply: Reply,
    now_ms: u64,
) -> Answer {
    let bad = |why: String| Answer::Fault(HolderFault::BadShare(why));
    let near_expiry = record.expires_at_ms <= now_ms.saturating_add(EXPIRY_MARGIN_MS);
    match reply {
        Reply::NoAnswer(why) => Answer::Silent(why),
        Reply::Refused(Refusal::NotFound) if !near_expiry => Answer::Fault(HolderFault::Withheld),
        Reply::Refused(Refusal::BadShare(why)) => bad(format!("the holder says: {why}")),
        Reply::Refused(r) => Answer::Silent(r.to_string()),
        Reply::Proven(proven) => match check_proof(slot, challenge, &proven, |ctx, proof| {
            share_proof::verify(ctx, &record.commitments, proof)
        }) {
            Ok(()) => Answer::Verified,
            Err(why) => bad(why.to_string()),
        },
        Reply::Sealed(sealed) | Reply::Fetched(FetchedShare::Sealed(sealed)) => {
            // A boxed session has no opening key: a sealed answer is not its share.
            let Some(key) = legacy else {
                return bad("a sealed share for a session boxed to its holders".into());
            };
            match sealing::open(key, slot, &sealed) {
                Err(e) => bad(format!("seal: {e}")),
                Ok(share) => match share.verify(&record.commitments) {
                    Ok(_verified) => Answer::Verified,
                    Err(e) => bad(format!("commitments: {e}")),
                },
            }
        }
        Reply::Fetched(FetchedShare::Reboxed { .. }) => {
            bad("a boxed answer for a session sealed under the coordinator's key".into())
        }
    }
}

/// Judges `reply` to the serving probe of the holder of `slot` (a fetch with a ticket naming
/// the coordinator, answered boxed to a key nobody holds: docs/protocol/holder-audits.md): a
/// share served is fine (its box is never opened), "not found" is withholding, anything else
/// silence. A withholder that proves its share to the coordinator but refuses requesters is
/// found so.
pub fn judge_serving(
    record: &SessionRecord,
    slot: &ShareSlot,
    reply: Reply,
    now_ms: u64,
) -> Answer {
    let near_expiry = record.expires_at_ms <= now_ms.saturating_add(EXPIRY_MARGIN_MS);
    match reply {
        Reply::Fetched(FetchedShare::Reboxed { index, .. }) if index == slot.index => {
            Answer::Verified
        }
        Reply::Fetched(FetchedShare::Reboxed { index, .. }) => Answer::Fault(
            HolderFault::BadShare(format!("served share {index}, holds {}", slot.index)),
        ),
        Reply::Fetched(FetchedShare::Sealed(_)) | Reply::Sealed(_) => Answer::Fault(
            HolderFault::BadShare("a sealed share for a session boxed to its holders".into()),
        ),
        Reply::Refused(Refusal::NotFound) if !near_expiry => Answer::Fault(HolderFault::Withheld),
        Reply::Refused(r) => Answer::Silent(r.to_string()),
        Reply::NoAnswer(why) => Answer::Silent(why),
        Reply::Proven(_) => Answer::Silent("a proof where a share was asked for".into()),
    }
}

/// One holder's verdict from its proof and its serving probe: a fault in either, else verified
/// only if both are, else silence (asked again).
pub fn both(proof: Answer, serving: Answer) -> Answer {
    match (proof, serving) {
        (Answer::Fault(f), _) | (_, Answer::Fault(f)) => Answer::Fault(f),
        (Answer::Verified, Answer::Verified) => Answer::Verified,
        (Answer::Silent(why), _) | (_, Answer::Silent(why)) => Answer::Silent(why),
    }
}

/// Checks that `proven` answers the `ProveShare` over `challenge` for `slot` and that its proof
/// passes `verify`; the reason otherwise.
pub fn check_proof(
    slot: &ShareSlot,
    challenge: &[u8; 32],
    proven: &ProvenShare,
    verify: impl FnOnce(&ProofContext, &share_proof::ShareProof) -> Result<(), share_proof::ProofError>,
) -> Result<(), ProofMismatch> {
    if (proven.session, proven.epoch, proven.index) != (slot.session, slot.epoch, slot.index) {
        return Err(ProofMismatch::OtherShare {
            proved_index: proven.index,
            proved_epoch: proven.epoch,
            index: slot.index,
            epoch: slot.epoch,
        });
    }
    let ctx = ProofContext {
        session: slot.session,
        epoch: slot.epoch,
        index: slot.index,
        challenge: *challenge,
    };
    Ok(verify(&ctx, &proven.proof)?)
}

/// The holders among `answers` that did not answer.
pub fn silent_of(answers: &[(NodeId, Answer)]) -> Vec<NodeId> {
    answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Silent(_)))
        .map(|(node, _)| *node)
        .collect()
}

/// The faults among `answers`.
pub fn faults_of(answers: &[(NodeId, Answer)]) -> Vec<(NodeId, HolderFault)> {
    answers
        .iter()
        .filter_map(|(node, a)| match a {
            Answer::Fault(f) => Some((*node, f.clone())),
            _ => None,
        })
        .collect()
}

/// Quarantines each holder with a fault unless it already carries a quarantine that never
/// lifts; returns the metric label of each new quarantine (`bad_share`, `withheld_share`).
pub fn quarantine_faulty(
    peers: &mut PeerTable,
    faults: Vec<(NodeId, HolderFault)>,
) -> Vec<&'static str> {
    let mut labels = Vec::new();
    for (node, fault) in faults {
        let Some(p) = peers.get_mut(&node) else {
            continue;
        };
        if p.quarantine.as_ref().is_some_and(Quarantine::is_sticky) {
            continue;
        }
        let (quarantine, label) = match fault {
            HolderFault::BadShare(why) => (Quarantine::BadShare(why), "bad_share"),
            HolderFault::Withheld => (Quarantine::WithheldShare, "withheld_share"),
        };
        tracing::warn!(node = %node.short(), reason = label, "bad holder quarantined");
        p.quarantine = Some(quarantine);
        labels.push(label);
    }
    labels
}

/// An audit that is due at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingAudit {
    at_ms: u64,
    /// The holders to ask: all of the epoch's (`None`), or the ones silent last time.
    only: Option<Vec<NodeId>>,
    /// How many audits of this epoch ran before (0 for the first).
    attempt: u32,
}

/// An audit to run now: fetch from every holder `record` lists (already narrowed to the ones
/// to ask) and report with [`HolderAudits::handle_audited`] and this `attempt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOrder {
    /// The session at its current epoch, holders narrowed to those asked.
    pub record: SessionRecord,
    /// Which audit of this epoch it is (0: the first).
    pub attempt: u32,
}

/// The audits of every live session's current epoch.
#[derive(Debug, Default)]
pub struct HolderAudits {
    /// Wait before an epoch's first audit (ms); `None`: audits are off.
    first_wait_ms: Option<u64>,
    pending: BTreeMap<SessionId, PendingAudit>,
}

impl HolderAudits {
    /// Audits `holder_audit_s` seconds after each commit (none when it is 0 or less).
    pub fn new(holder_audit_s: f64) -> Self {
        Self {
            first_wait_ms: (holder_audit_s > 0.0).then_some((holder_audit_s * 1000.0) as u64),
            pending: BTreeMap::new(),
        }
    }

    /// The wait before audit number `attempt` (0: the first), doubling per retry.
    fn wait_ms(first: u64, attempt: u32) -> u64 {
        first
            .saturating_mul(1u64 << attempt.min(20))
            .min(MAX_RETRY_DELAY_MS.max(first))
    }

    /// A new epoch of `session` was committed at `now_ms`: its first audit replaces any retry
    /// of the last epoch's.
    pub fn handle_committed(&mut self, session: SessionId, now_ms: u64) {
        if let Some(first) = self.first_wait_ms {
            self.pending.insert(
                session,
                PendingAudit {
                    at_ms: now_ms.saturating_add(first),
                    only: None,
                    attempt: 0,
                },
            );
        }
    }

    /// Audit `attempt` of `session` finished at `now_ms` with `silent` holders: they are asked
    /// again later, alone, unless a newer epoch's audit is pending or the retries are used up.
    pub fn handle_audited(
        &mut self,
        session: SessionId,
        silent: Vec<NodeId>,
        attempt: u32,
        now_ms: u64,
    ) {
        let Some(first) = self.first_wait_ms else {
            return;
        };
        if silent.is_empty() || attempt >= SILENT_RETRIES {
            return;
        }
        let next = attempt + 1;
        self.pending.entry(session).or_insert(PendingAudit {
            at_ms: now_ms.saturating_add(Self::wait_ms(first, next)),
            only: Some(silent),
            attempt: next,
        });
    }

    /// The audits due at `now_ms` among `sessions` (the live ones as recorded), skipping the
    /// sessions `busy` names (a rotation or expiry under way: they stay due). Sessions no longer
    /// recorded, or expired, are forgotten.
    pub fn due(
        &mut self,
        now_ms: u64,
        sessions: &[SessionRecord],
        busy: impl Fn(&SessionId) -> bool,
    ) -> Vec<AuditOrder> {
        let live = |s: &SessionId| {
            sessions
                .iter()
                .find(|r| &r.session == s && r.expires_at_ms > now_ms)
        };
        self.pending.retain(|s, _| live(s).is_some());
        let due: Vec<SessionId> = self
            .pending
            .iter()
            .filter(|(s, a)| a.at_ms <= now_ms && !busy(s))
            .map(|(s, _)| *s)
            .collect();
        let mut orders = Vec::with_capacity(due.len());
        for session in due {
            let (Some(audit), Some(record)) = (self.pending.remove(&session), live(&session))
            else {
                continue;
            };
            let mut record = record.clone();
            if let Some(only) = &audit.only {
                record.holders.retain(|h| only.contains(&h.node));
            }
            orders.push(AuditOrder {
                record,
                attempt: audit.attempt,
            });
        }
        orders
    }

    /// Audits every one of `sessions` at `now_ms`, all holders, replacing pending retries (an
    /// operator's or the simulator's sweep). Nothing when audits are off.
    pub fn audit_now(&mut self, sessions: impl Iterator<Item = SessionId>, now_ms: u64) {
        if self.first_wait_ms.is_none() {
            return;
        }
        for session in sessions {
            self.pending.insert(
                session,
                PendingAudit {
                    at_ms: now_ms,
                    only: None,
                    attempt: 0,
                },
            );
        }
    }

    /// How many audits are due at `now_ms` and not started.
    pub fn due_count(&self, now_ms: u64) -> usize {
        self.pending.values().filter(|a| a.at_ms <= now_ms).count()
    }

    /// When the next audit falls due, if any is pending.
    pub fn next_at_ms(&self) -> Option<u64> {
        self.pending.values().map(|a| a.at_ms).min()
    }
}

#[cfg(test)]
#[path = "holder_audits_tests.rs"]
mod tests;
