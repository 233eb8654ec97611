//! Holder audits: the coordinator fetches a session's shares itself — from every holder, at each
//! rotation and once shortly after each new epoch is committed — and checks each against its
//! seal and the Feldman commitments. A holder whose share fails, or that answers "not found" for
//! a share it acknowledged storing, is quarantined on that evidence (decision 0014). A holder
//! that did not answer (down, partitioned, busy) is asked again later, alone, with a doubling
//! delay, so a bad holder cannot escape its audit by being away when it falls due.

use super::sessions::grant;
use super::{Ctx, Internal, State, now_ms};
use crate::db::SessionRecord;
use crate::peers::Quarantine;
use peer::node::Protocol;
use protocols::ids::{NodeId, SessionId};
use protocols::sealing::{self, ShareSlot};
use protocols::sharing::VerifiedShare;
use protocols::wire::{self, Refusal, ShareFetch, ShareFetchReply, WIRE_VERSION};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A "not found" this close to the session's expiry is not held against a holder: its clock may
/// run ahead of the coordinator's and its expiry sweep may have deleted the share.
const EXPIRY_MARGIN_MS: u64 = 60_000;

/// How many times a holder that did not answer its audit is asked again.
const SILENT_RETRIES: u32 = 6;

/// The longest wait before asking a silent holder again.
const MAX_RETRY_DELAY_MS: u64 = 600_000;

/// An audit that is due at `at_ms` (coordinator clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingAudit {
    pub at_ms: u64,
    /// The holders to ask: all of the epoch's (`None`), or the ones that were silent last time.
    pub only: Option<Vec<NodeId>>,
    /// How many audits of this epoch ran before (0 for the first).
    pub attempt: u32,
}

/// What a holder did wrong, as the coordinator saw it on its own authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HolderFault {
    /// The share it returned does not open under its slot's key or fails the commitments.
    BadShare(String),
    /// It said it has no share of an epoch it acknowledged storing durably.
    Withheld,
}

/// One holder's answer to the coordinator's fetch.
pub(super) enum Answer {
    /// A share that opened and verified.
    Verified(VerifiedShare),
    /// Proof of a bad holder.
    Fault(HolderFault),
    /// Unreachable, busy, or a refusal that says nothing about its store: no blame.
    Silent(String),
}

/// Fetches the current epoch's share from every holder of `record` (a ticket naming the
/// coordinator) and judges each answer.
pub(super) async fn ask_holders(
    ctx: &Ctx,
    record: &SessionRecord,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Vec<(NodeId, Answer)> {
    let grant = grant(ctx, record, ctx.key.node_id(), addrs);
    let request = wire::encode(&ShareFetch {
        v: WIRE_VERSION,
        ticket: grant.ticket,
    });
    let near_expiry = record.expires_at_ms <= now_ms().saturating_add(EXPIRY_MARGIN_MS);
    let asks = record.holders.iter().map(|h| {
        let request = request.clone();
        let addrs = addrs
            .iter()
            .find(|(n, _)| n == &h.node)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        async move {
            let Some(peer) = peer::identity::peer_id(&h.node) else {
                return (h.node, Answer::Silent("bad holder id".into()));
            };
            let raw = match ctx
                .node
                .request(Protocol::Fetch, peer, addrs, request)
                .await
            {
                Ok(raw) => raw,
                Err(e) => return (h.node, Answer::Silent(e.to_string())),
            };
            let reply: ShareFetchReply = match wire::decode(&raw, Protocol::Fetch.limits().1) {
                Ok(r) => r,
                Err(e) => return (h.node, Answer::Silent(format!("undecodable reply: {e}"))),
            };
            let sealed = match reply.result {
                Ok(s) => s,
                Err(Refusal::NotFound) if !near_expiry => {
                    return (h.node, Answer::Fault(HolderFault::Withheld));
                }
                Err(r) => return (h.node, Answer::Silent(r.to_string())),
            };
            let slot = ShareSlot {
                session: record.session,
                epoch: record.epoch,
                holder: h.node,
                index: h.index,
            };
            let answer = match sealing::open(&ctx.master.share_key(&slot), &slot, &sealed) {
                Err(e) => Answer::Fault(HolderFault::BadShare(format!("seal: {e}"))),
                Ok(share) => match share.verify(&record.commitments) {
                    Ok(verified) => Answer::Verified(verified),
                    Err(e) => Answer::Fault(HolderFault::BadShare(format!("commitments: {e}"))),
                },
            };
            (h.node, answer)
        }
    });
    let answers = futures::future::join_all(asks).await;
    for (node, answer) in &answers {
        match answer {
            Answer::Verified(_) => {}
            Answer::Fault(fault) => {
                tracing::warn!(holder = %node.short(), session = %record.session, epoch = record.epoch, ?fault, "holder failed the coordinator's check")
            }
            Answer::Silent(e) => {
                tracing::info!(holder = %node.short(), session = %record.session, error = %e, "holder did not answer the coordinator's fetch")
            }
        }
    }
    answers
}

/// The holders among `answers` that did not answer.
pub(super) fn silent_of(answers: &[(NodeId, Answer)]) -> Vec<NodeId> {
    answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Silent(_)))
        .map(|(node, _)| *node)
        .collect()
}

/// The faults among `answers`.
pub(super) fn faults_of(answers: &[(NodeId, Answer)]) -> Vec<(NodeId, HolderFault)> {
    answers
        .iter()
        .filter_map(|(node, a)| match a {
            Answer::Fault(f) => Some((*node, f.clone())),
            _ => None,
        })
        .collect()
}

/// Quarantines each holder with a fault (counted once per peer and reason).
pub(super) fn apply_faults(ctx: &Ctx, state: &mut State, faults: Vec<(NodeId, HolderFault)>) {
    for (node, fault) in faults {
        let Some(p) = state.peers.get_mut(&node) else {
            continue;
        };
        let (quarantine, label) = match fault {
            HolderFault::BadShare(why) => (Quarantine::BadShare(why), "bad_share"),
            HolderFault::Withheld => (Quarantine::WithheldShare, "withheld_share"),
        };
        if p.quarantine.as_ref().is_some_and(Quarantine::is_sticky) {
            continue;
        }
        tracing::warn!(node = %node.short(), reason = label, "bad holder quarantined");
        ctx.metrics.quarantines.inc(label);
        p.quarantine = Some(quarantine);
    }
}

/// The wait before audit number `attempt` (0: the first, after a commit), doubling per retry.
fn delay_ms(audit_s: f64, attempt: u32) -> u64 {
    let first = (audit_s * 1000.0) as u64;
    first
        .saturating_mul(1u64 << attempt.min(20))
        .min(MAX_RETRY_DELAY_MS.max(first))
}

/// Schedules the audit of `session`'s newly committed epoch (replacing any retry of the last).
pub(super) fn schedule(ctx: &Ctx, state: &mut State, session: SessionId) {
    if ctx.config.holder_audit_s > 0.0 {
        let at_ms = now_ms().saturating_add(delay_ms(ctx.config.holder_audit_s, 0));
        state.audits.insert(
            session,
            PendingAudit {
                at_ms,
                only: None,
                attempt: 0,
            },
        );
    }
}

/// After an audit: asks the holders that were `silent` again later, alone, unless the session
/// was given a newer audit meanwhile or the retries are used up.
pub(super) fn retry_silent(
    ctx: &Ctx,
    state: &mut State,
    session: SessionId,
    silent: Vec<NodeId>,
    attempt: u32,
) {
    if silent.is_empty() || attempt >= SILENT_RETRIES || ctx.config.holder_audit_s <= 0.0 {
        return;
    }
    let next = attempt + 1;
    let at_ms = now_ms().saturating_add(delay_ms(ctx.config.holder_audit_s, next));
    state.audits.entry(session).or_insert(PendingAudit {
        at_ms,
        only: Some(silent),
        attempt: next,
    });
}

/// Starts the audits that are due, each holding its session's lock (no rotation or expiry runs
/// meanwhile, so the epoch audited stays the current one).
pub(super) fn start_due(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    sessions: &[SessionRecord],
) {
    let now = now_ms();
    let due: Vec<SessionId> = state
        .audits
        .iter()
        .filter(|(s, a)| a.at_ms <= now && !state.rotating.contains(*s))
        .map(|(s, _)| *s)
        .collect();
    for session in due {
        let Some(audit) = state.audits.remove(&session) else {
            continue;
        };
        let Some(mut record) = sessions
            .iter()
            .find(|s| s.session == session && s.expires_at_ms > now)
            .cloned()
        else {
            continue;
        };
        if let Some(only) = &audit.only {
            record.holders.retain(|h| only.contains(&h.node));
        }
        state.rotating.insert(session);
        let addrs = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
        let (ctx, internal) = (ctx.clone(), internal.clone());
        tokio::spawn(async move {
            let answers = ask_holders(&ctx, &record, &addrs).await;
            let (faults, silent) = (faults_of(&answers), silent_of(&answers));
            drop(answers);
            let _ = internal
                .send(Internal::Audited {
                    session,
                    faults,
                    silent,
                    attempt: audit.attempt,
                })
                .await;
        });
    }
    // Sessions gone (expired, deleted) are not audited.
    state
        .audits
        .retain(|s, _| sessions.iter().any(|r| &r.session == s));
}

#[cfg(test)]
mod tests {
    use super::delay_ms;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_ten_minutes() {
        assert_eq!(delay_ms(3.0, 0), 3_000);
        assert_eq!(delay_ms(3.0, 1), 6_000);
        assert_eq!(delay_ms(3.0, 3), 24_000);
        assert_eq!(delay_ms(60.0, 4), 600_000);
        assert_eq!(delay_ms(60.0, 6), 600_000);
        assert_eq!(
            delay_ms(900.0, 2),
            900_000,
            "never shorter than the first audit"
        );
    }
}
