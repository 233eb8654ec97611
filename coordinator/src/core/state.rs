//! The coordinator loop's state and its bookkeeping, without I/O: what each finished task's
//! report, each operator request and each revocation changes, and the views the admin socket,
//! the metrics and `/ready` read. The daemon (`service`) owns one [`State`] and only moves
//! inputs into it and its answers out.

use super::attestation::Attestations;
use super::gossip::Books;
use super::holder_audits::{self, HolderAudits, HolderFault};
use super::ledger::{Ledger, Mark};
use super::schedule::Cause;
use super::sessions::{self, Born, Candidates, Fresh, NotReady, Nursery, SessionRules};
use crate::admin::requests::CoordinatorFigures;
use crate::admin::{AdminError, PeerLine, SourceLine, peer_text};
use crate::config::CoordinatorConfig;
use crate::db::{Enrolment, SessionRecord};
use crate::intake::Intake;
use crate::intake::sources::SourceBook;
use crate::peers::PeerTable;
use protocols::ids::{NodeId, SessionId};
use protocols::quorum::{Quorum, QuorumError};
use protocols::wire::{Refusal, SessionPolicy};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Round trips the node measured to each peer (quorum choice prefers the close ones).
pub type RoundTrips = HashMap<libp2p::PeerId, Duration>;

/// The limits the loop's decisions use, from the configuration (in milliseconds).
#[derive(Debug, Clone)]
pub struct Rules {
    /// How sessions and tickets are judged.
    pub sessions: SessionRules,
    /// How long a session keeps a quorum before a periodic rotation.
    pub rotation_period_ms: u64,
    /// How old a contribution may be.
    pub contribution_max_age_ms: u64,
    /// How long an entropy audit may be under way before it counts as lost.
    pub entropy_audit_lost_ms: u64,
    /// Between two attestation slices (each peer's slice comes once per attestation interval).
    pub attestation_tick: Duration,
    /// Between two credit rounds.
    pub credit_round: Duration,
    /// Between two upkeep ticks: at most 2 s, sooner when the rotation period is shorter.
    pub upkeep_tick: Duration,
}

impl Rules {
    /// The rules `config` sets.
    pub fn of(config: &CoordinatorConfig) -> Self {
        let ms = |s: f64| (s * 1000.0) as u64;
        Rules {
            sessions: SessionRules {
                max_session_ttl_s: config.max_session_ttl_s,
                min_credited_bits: config.min_credited_bits,
                min_contributors: config.min_contributors,
                attestation_validity_ms: ms(config.attestation_validity_s),
                heartbeat_max_age_ms: ms(config.heartbeat_max_age_s),
                ticket_ttl_s: config.ticket_ttl_s,
            },
            rotation_period_ms: ms(config.rotation_period_s),
            contribution_max_age_ms: ms(config.contribution_max_age_s),
            entropy_audit_lost_ms: ms(config.attestation_answer_s + 60.0),
            attestation_tick: Duration::from_secs_f64(
                config.attestation_interval_s / super::attestation::SLICES as f64,
            ),
            credit_round: Duration::from_secs_f64(config.credit_round_s),
            upkeep_tick: Duration::from_secs_f64(config.rotation_period_s.min(2.0)),
        }
    }
}

/// What the daemon loaded from its database at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Enrolled peers.
    pub enrolments: Vec<(NodeId, Enrolment)>,
    /// Allowed binary digests.
    pub allowlist: BTreeSet<[u8; 32]>,
    /// Authorised requesters.
    pub requesters: BTreeSet<NodeId>,
    /// Stored sessions.
    pub sessions: Vec<SessionRecord>,
}

/// The loop's state.
pub struct State {
    /// The limits decisions use.
    pub rules: Rules,
    /// Enrolled peers and what is known of each.
    pub peers: PeerTable,
    /// The entropy pool.
    pub intake: Intake,
    /// Allowed binary digests.
    pub allowlist: BTreeSet<[u8; 32]>,
    /// Authorised requesters.
    pub requesters: BTreeSet<NodeId>,
    /// Challenges out and their verdicts.
    pub attestations: Attestations,
    /// Shares held per peer, busy sessions, operator rotation requests.
    pub ledger: Ledger,
    /// Holder audits to run, by session.
    pub audits: HolderAudits,
    /// Every contributing source's audits and credit.
    pub sources: SourceBook,
    /// Attestation slices started so far.
    attestation_ticks: u64,
}

/// Gauges the loop refreshes at each upkeep tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    /// Sessions not expired.
    pub sessions_live: u64,
    /// Enrolled peers.
    pub peers_enrolled: u64,
    /// Quarantined peers.
    pub peers_quarantined: u64,
    /// Credit waiting in the pool.
    pub pool_pending_bits: u64,
}

impl State {
    /// The state at start-up: `loaded` from the database, the pool `intake`, the rest as
    /// `config` sets.
    pub fn new(config: &CoordinatorConfig, loaded: Loaded, intake: Intake) -> Self {
        let mut peers = PeerTable::default();
        for (node, e) in loaded.enrolments {
            peers.enrol(node, e.region, e.operator);
            if let Some(p) = peers.get_mut(&node) {
                p.share_key = e.share_key;
            }
        }
        State {
            rules: Rules::of(config),
            peers,
            intake,
            allowlist: loaded.allowlist,
            requesters: loaded.requesters,
            attestations: Attestations::new(
                (config.attestation_answer_s * 1000.0) as u64,
                (config.attestation_validity_s * 1000.0) as u64,
            ),
            ledger: Ledger::from_sessions(&loaded.sessions),
            audits: HolderAudits::new(config.holder_audit_s),
            sources: SourceBook::new(
                config.entropy_audit_samples > 0,
                (config.entropy_audit_s.max(1.0) * 1000.0) as u64,
            ),
            attestation_ticks: 0,
        }
    }

    /// The peers whose attestation slice comes now (one slice per `attestation_tick`, in turn).
    pub fn attestation_slice_due(&mut self) -> Vec<NodeId> {
        let tick = self.attestation_ticks;
        self.attestation_ticks = tick.wrapping_add(1);
        self.attestations.slice_due(&self.peers, tick)
    }

    /// The books gossip writes to.
    pub fn books(&mut self) -> Books<'_> {
        Books {
            peers: &mut self.peers,
            intake: &mut self.intake,
            sources: &mut self.sources,
        }
    }

    /// Where holders are chosen from.
    pub fn candidates<'a>(&'a self, round_trips: &'a RoundTrips) -> Candidates<'a> {
        Candidates {
            peers: &self.peers,
            shares_held: self.ledger.shares_held(),
            flagged: self.intake.flagged(),
            round_trips,
        }
    }

    /// Chooses a quorum of `n` (threshold `k`) as a session's is chosen.
    pub fn choose_quorum<R: rand_core::CryptoRng + ?Sized>(
        &self,
        n: usize,
        k: usize,
        now_ms: u64,
        round_trips: &RoundTrips,
        rng: &mut R,
    ) -> Result<Quorum, QuorumError> {
        let candidates = self.candidates(round_trips);
        sessions::choose_quorum(&candidates, &self.rules.sessions, n, k, now_ms, rng)
    }

    /// Handles `CreateSession` from `requester` at `now_ms` (see [`sessions::Nursery::deal`]):
    /// the key is drawn from the pool and dealt to a quorum chosen now, or the refusal says why.
    pub fn deal<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        requester: NodeId,
        policy: SessionPolicy,
        fresh: Fresh,
        now_ms: u64,
        round_trips: &RoundTrips,
        rng: &mut R,
    ) -> Result<Born, Refusal> {
        let mut nursery = Nursery {
            requesters: &self.requesters,
            intake: &mut self.intake,
            sources: &self.sources,
            peers: &self.peers,
            shares_held: self.ledger.shares_held(),
            round_trips,
        };
        nursery.deal(&self.rules.sessions, requester, policy, fresh, now_ms, rng)
    }

    /// Whether a session could be created now, and the peers a quorum could be chosen from.
    pub fn readiness<R: rand_core::CryptoRng + ?Sized>(
        &self,
        now_ms: u64,
        round_trips: &RoundTrips,
        rng: &mut R,
    ) -> (usize, Result<(), NotReady>) {
        let candidates = self.candidates(round_trips);
        let rules = &self.rules.sessions;
        sessions::readiness(&candidates, rules, &self.intake, &self.sources, now_ms, rng)
    }

    /// The gauges as the state and `sessions` have them at `now_ms`.
    pub fn gauges(&self, sessions: &[SessionRecord], now_ms: u64) -> Gauges {
        let live = sessions.iter().filter(|s| s.expires_at_ms > now_ms).count();
        let (enrolled, quarantined) = self.peers.iter().fold((0u64, 0u64), |(e, q), (_, p)| {
            (e + 1, q + u64::from(p.quarantine.is_some()))
        });
        Gauges {
            sessions_live: live as u64,
            peers_enrolled: enrolled,
            peers_quarantined: quarantined,
            pool_pending_bits: self.intake.pending_bits(),
        }
    }

    /// A new session is durably stored on `holders`: they count as holding a share, and its
    /// first holder audit is scheduled.
    pub fn handle_session_stored(&mut self, session: SessionId, holders: Vec<NodeId>, now: u64) {
        self.ledger.stored(holders);
        self.audits.handle_committed(session, now);
    }

    /// A holder audit of `session` ended: the session is free again, holders at fault are
    /// quarantined (their labels returned, to count), the silent ones asked again later.
    pub fn handle_audited(
        &mut self,
        session: SessionId,
        faults: Vec<(NodeId, HolderFault)>,
        silent: Vec<NodeId>,
        attempt: u32,
        now_ms: u64,
    ) -> Vec<&'static str> {
        self.ledger.release(&session);
        let labels = holder_audits::quarantine_faulty(&mut self.peers, faults);
        self.audits.handle_audited(session, silent, attempt, now_ms);
        labels
    }

    /// An expired session's deletion ended (it is retried at a later sweep if it failed).
    pub fn handle_expiry_done(&mut self, session: &SessionId) {
        self.ledger.release(session);
    }

    /// Owed deletions of `sessions` were delivered: the sessions are free again, holders whose
    /// proof failed are quarantined (their labels returned).
    pub fn handle_settled(
        &mut self,
        sessions: &[SessionId],
        faults: Vec<(NodeId, HolderFault)>,
    ) -> Vec<&'static str> {
        let labels = holder_audits::quarantine_faulty(&mut self.peers, faults);
        for session in sessions {
            self.ledger.release(session);
        }
        labels
    }

    /// A rotation of `session` started at `mark` ended, `moved` its old and new holders if it
    /// committed: the ledger follows, holders at fault are quarantined (labels returned), and a
    /// committed epoch is scheduled for its first audit.
    pub fn handle_rotated(
        &mut self,
        session: SessionId,
        cause: Cause,
        mark: Mark,
        moved: Option<(&[NodeId], &[NodeId])>,
        faults: Vec<(NodeId, HolderFault)>,
        now_ms: u64,
    ) -> Vec<&'static str> {
        let labels = holder_audits::quarantine_faulty(&mut self.peers, faults);
        let committed = moved.is_some();
        self.ledger.rotation_ended(session, cause, mark, moved);
        if committed {
            self.audits.handle_committed(session, now_ms);
        }
        labels
    }

    /// A session was revoked: its holders no longer count as holding it, and an operator's
    /// request to rotate it is dropped.
    pub fn handle_revoked(&mut self, record: &SessionRecord) {
        self.ledger.dropped(record.holders.iter().map(|h| h.node));
        self.ledger.forget_request(&record.session);
    }

    /// Whether `session` may be revoked now: no rotation, audit or deletion holds it (else the
    /// revocation waits for a later tick).
    pub fn may_revoke(&self, session: &SessionId) -> bool {
        !self.ledger.is_busy(session)
    }

    /// Schedules an audit of every live session of `sessions` at the next tick.
    pub fn audit_live_now(&mut self, sessions: &[SessionRecord], now_ms: u64) {
        let live = sessions.iter().filter(|s| s.expires_at_ms > now_ms);
        self.audits.audit_now(live.map(|s| s.session), now_ms);
    }

    /// Lifts `node`'s quarantine (and its clone flag); answers what was lifted. The peer is
    /// trusted again only after a fresh attestation.
    pub fn unquarantine(&mut self, node: NodeId) -> Result<String, AdminError> {
        let flagged = self.intake.flagged().contains(&node);
        let Some(p) = self.peers.get_mut(&node) else {
            return Err(AdminError::NotFound {
                what: "peer",
                id: peer_text(&node),
            });
        };
        let lifted = match (p.quarantine.take(), flagged) {
            (None, false) => return Err(AdminError::NotQuarantined(peer_text(&node))),
            (Some(q), _) => format!("lifted {q:?}"),
            (None, true) => "lifted the clone flag".to_string(),
        };
        p.attested_at_ms = None;
        self.intake.unflag(&node);
        tracing::info!(peer = %peer_text(&node), %lifted, "quarantine lifted by the operator");
        Ok(lifted)
    }

    /// The peer table as admin lines at `now`.
    pub fn peer_lines(&self, now: u64) -> Vec<PeerLine> {
        self.peers
            .iter()
            .map(|(node, p)| PeerLine {
                node: *node,
                region: p.region.clone(),
                operator: p.operator.clone(),
                trusted: p.quarantine.is_none() && p.attested_at_ms.is_some(),
                quarantine: p.quarantine.as_ref().map(|q| format!("{q:?}")),
                share_key: p.share_key.as_ref().map(protocols::share_box::fingerprint),
                power: p
                    .heartbeat
                    .as_ref()
                    .map(|h| format!("{:?}", h.power))
                    .unwrap_or_else(|| "unknown".into()),
                shares_held: self.ledger.shares_held().get(node).copied().unwrap_or(0),
                heartbeat_age_s: p.heartbeat_at_ms.map(|t| now.saturating_sub(t) / 1000),
                credited_bits: p.credited_bits,
                sources: p.sources().to_vec(),
                refusals: p
                    .refusals
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect(),
                source_lines: self
                    .sources
                    .of(node)
                    .map(|(name, entry)| SourceLine::of(name, entry, now))
                    .collect(),
            })
            .collect()
    }

    /// The running totals at `now_ms`.
    pub fn figures(&self, now_ms: u64) -> CoordinatorFigures {
        CoordinatorFigures {
            rotations_by_cause: self.ledger.rotations_by_cause().clone(),
            rotating: self.ledger.busy().len(),
            holder_audits_due: self.audits.due_count(now_ms),
            intake: self.intake.stats().clone(),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
