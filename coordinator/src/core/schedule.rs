//! What the coordinator's periodic upkeep must start now, decided from the session records, the
//! standing of each holder and the time: expiries, rotations and their causes, and which
//! operator requests to forget. The daemon asks every tick and carries the plan out.

use crate::db::{OwedDeletion, SessionRecord};
use crate::peers::PeerTable;
use protocols::ids::{NodeId, SessionId};
use std::collections::BTreeSet;

/// Why a rotation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// The rotation period elapsed.
    Period,
    /// Live holders fell to k + 1 or fewer.
    Repair,
    /// A holder was quarantined (or is no longer enrolled).
    Quarantine,
    /// An operator asked for it.
    Manual,
}

impl Cause {
    /// The metric label (`period`, `repair`, `quarantine`, `manual`).
    pub const fn label(self) -> &'static str {
        match self {
            Cause::Period => "period",
            Cause::Repair => "repair",
            Cause::Quarantine => "quarantine",
            Cause::Manual => "manual",
        }
    }
}

/// How a holder stands for upkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Trusted (attested, not quarantined) with a heartbeat young enough.
    Live,
    /// Trusted, but silent or its attestation lapsed: it may come back.
    Silent,
    /// Quarantined, or not in the peer table at all: its shares must move.
    Lost,
}

/// How `node` stands in `peers` at `now_ms`: lost when quarantined or unknown, live when
/// trusted (attested within `validity_ms`) with a heartbeat at most `heartbeat_max_age_ms` old,
/// silent otherwise.
pub fn standing(
    peers: &PeerTable,
    node: &NodeId,
    now_ms: u64,
    validity_ms: u64,
    heartbeat_max_age_ms: u64,
) -> Standing {
    match peers.get(node) {
        None => Standing::Lost,
        Some(p) if p.quarantine.is_some() => Standing::Lost,
        Some(p)
            if p.trusted(now_ms, validity_ms)
                && p.heartbeat_at_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) <= heartbeat_max_age_ms) =>
        {
            Standing::Live
        }
        Some(_) => Standing::Silent,
    }
}

/// The plan of one upkeep tick.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Expired sessions to delete (none that is busy rotating or being deleted).
    pub expire: Vec<SessionId>,
    /// Sessions to rotate, with the cause, in session order.
    pub rotate: Vec<(SessionId, Cause)>,
    /// Operator rotation requests whose session is gone or expired: forget them.
    pub forget_requests: Vec<SessionId>,
}

/// Decides the tick at `now_ms`: `busy` sessions (rotating or being deleted) are left alone;
/// `requested` are operator requests not yet satisfied; `standing` judges each holder. A
/// session dealt before holder share keys (sealed under a master key) is never rotated: rotation
/// is redistribution among holders that can open their shares (decision 0057); it stays on its
/// holders until it expires.
pub fn plan(
    sessions: &[SessionRecord],
    busy: &BTreeSet<SessionId>,
    requested: &BTreeSet<SessionId>,
    standing: impl Fn(&NodeId) -> Standing,
    now_ms: u64,
    rotation_period_ms: u64,
) -> Plan {
    let mut plan = Plan::default();
    for s in sessions {
        if busy.contains(&s.session) {
            continue;
        }
        if s.expires_at_ms <= now_ms {
            plan.expire.push(s.session);
            continue;
        }
        if !s.boxed {
            continue;
        }
        let cause = due(s, &standing, now_ms, rotation_period_ms)
            .or_else(|| requested.contains(&s.session).then_some(Cause::Manual));
        if let Some(cause) = cause {
            plan.rotate.push((s.session, cause));
        }
    }
    plan.forget_requests = requested
        .iter()
        .filter(|r| {
            !sessions
                .iter()
                .any(|s| &s.session == *r && s.expires_at_ms > now_ms)
        })
        .copied()
        .collect();
    plan
}

/// Holds back this tick the rotations of sessions for which a live holder still owes the
/// deletion of a rolled-back epoch e+1: a rotation that chose it again could not start (its new
/// share must not race that deletion) and, being started, would keep the session busy, so the
/// settling step that delivers the deletion would pass it over on every tick and the rotation
/// never come (seen in CI: "still owes the deletion … rotation waits" for five minutes). Held
/// back, the session is settled this tick and rotated on the next. A holder that is not live
/// (silent, lost) is not chosen again, so its owed deletion holds nothing back.
pub fn settle_before_rotating(
    plan: &mut Plan,
    sessions: &[SessionRecord],
    owed: &[OwedDeletion],
    standing: impl Fn(&NodeId) -> Standing,
) {
    plan.rotate.retain(|(session, _)| {
        let Some(record) = sessions.iter().find(|s| &s.session == session) else {
            return true;
        };
        let next = record.epoch.saturating_add(1);
        !owed.iter().any(|d| {
            &d.session == session && d.epoch == next && standing(&d.node) == Standing::Live
        })
    });
}

/// Why `s` needs a rotation now, if it does: a lost holder first, then too few live holders
/// (k + 1 or fewer, when it has more than k + 1), then the period.
fn due(
    s: &SessionRecord,
    standing: &impl Fn(&NodeId) -> Standing,
    now_ms: u64,
    rotation_period_ms: u64,
) -> Option<Cause> {
    let k = s.commitments.threshold();
    let standings: Vec<Standing> = s.holders.iter().map(|h| standing(&h.node)).collect();
    let live = standings.iter().filter(|&&st| st == Standing::Live).count();
    let last = s.created_at_ms.max(s.rotated_at_ms);
    if standings.contains(&Standing::Lost) {
        Some(Cause::Quarantine)
    } else if live <= k + 1 && s.holders.len() > k + 1 {
        Some(Cause::Repair)
    } else if now_ms.saturating_sub(last) >= rotation_period_ms {
        Some(Cause::Period)
    } else {
        None
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
