//! A session's birth and its tickets, decided without I/O: whether a `CreateSession` is
//! admitted (authorised requester, sane parameters, a ready pool), the quorum a session or a
//! rotation is placed on, the key dealt from the pool, and whether a `GetTicket` is granted and
//! what the grant holds. Randomness comes in as values, time as `now_ms`.

use crate::core::orders::Signer;
use crate::db::SessionRecord;
use crate::intake::Intake;
use crate::intake::shortfall::{Shortfall, refused_since_start};
use crate::intake::sources::SourceBook;
use crate::peers::PeerTable;
use protocols::holder_box::BoxedDealing;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionSecret;
use protocols::quorum::{Quorum, QuorumError, QuorumPolicy, select_quorum};
use protocols::reshare::{Dealt, Placement};
use protocols::sealing::ShareSlot;
use protocols::ticket::{OpeningKeyEntry, Ticket, TicketGrant, TicketHolder};
use protocols::wire::{self, Refusal, SessionPolicy, SignedEnvelope, WIRE_VERSION};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most requesters a session's policy may name.
pub const MAX_POLICY_REQUESTERS: usize = 64;
/// Longest label a session's policy may carry.
pub const MAX_POLICY_LABEL: usize = 256;

/// The limits sessions are judged by, from the coordinator's configuration.
#[derive(Debug, Clone, Copy)]
pub struct SessionRules {
    /// Longest session a requester may ask for.
    pub max_session_ttl_s: u64,
    /// Credited bits the pool must hold for a key.
    pub min_credited_bits: u64,
    /// Distinct contributors those bits must come from.
    pub min_contributors: usize,
    /// How long an attestation keeps a peer trusted.
    pub attestation_validity_ms: u64,
    /// A holder's last heartbeat may be at most this old.
    pub heartbeat_max_age_ms: u64,
    /// How long a ticket lives (never past its session).
    pub ticket_ttl_s: u64,
}

/// What placement is chosen from: the peers, what they hold, and how near they are.
pub struct Candidates<'a> {
    /// Enrolled peers.
    pub peers: &'a PeerTable,
    /// Shares each peer holds now.
    pub shares_held: &'a BTreeMap<NodeId, u32>,
    /// Peers whose contributions were flagged as clones: never holders.
    pub flagged: &'a BTreeSet<NodeId>,
    /// The node's last ping round trips.
    pub round_trips: &'a HashMap<libp2p::PeerId, std::time::Duration>,
}

/// The peer table and policy a quorum is chosen with at `now_ms`.
fn quorum_inputs(
    candidates: &Candidates<'_>,
    rules: &SessionRules,
    now_ms: u64,
) -> (Vec<protocols::quorum::PeerRecord>, QuorumPolicy) {
    let table = candidates.peers.quorum_table(
        now_ms,
        rules.attestation_validity_ms,
        candidates.shares_held,
        candidates.round_trips,
    );
    // A peer whose share key is not known cannot be dealt a share (nothing to box it to).
    let keyless = candidates
        .peers
        .iter()
        .filter(|(_, p)| p.share_key.is_none())
        .map(|(n, _)| *n);
    let policy = QuorumPolicy {
        heartbeat_max_age_ms: rules.heartbeat_max_age_ms,
        ..QuorumPolicy::default()
    }
    .excluding(candidates.flagged.iter().copied())
    .excluding(keyless);
    (table, policy)
}

/// Chooses `n` holders (threshold `k`) among the trusted peers with a fresh heartbeat, for a
/// new session or a rotation alike: never a flagged peer (clones) nor a quarantined one (a
/// quarantined peer is not trusted, so the table marks it unattested).
pub fn choose_quorum<R: rand_core::CryptoRng + ?Sized>(
    candidates: &Candidates<'_>,
    rules: &SessionRules,
    n: usize,
    k: usize,
    now_ms: u64,
    rng: &mut R,
) -> Result<Quorum, QuorumError> {
    let (table, policy) = quorum_inputs(candidates, rules, now_ms);
    select_quorum(&table, n, k, &policy, now_ms, rng)
}

/// Peers a quorum could be chosen from at `now_ms`, and whether an `n`-holder, threshold-`k`
/// quorum could be chosen among them (what `/ready` asks).
pub fn quorum_outlook<R: rand_core::CryptoRng + ?Sized>(
    candidates: &Candidates<'_>,
    rules: &SessionRules,
    n: usize,
    k: usize,
    now_ms: u64,
    rng: &mut R,
) -> (usize, Result<(), QuorumError>) {
    let (table, policy) = quorum_inputs(candidates, rules, now_ms);
    let eligible = protocols::quorum::eligible(&table, &policy, now_ms).len();
    let chosen = select_quorum(&table, n, k, &policy, now_ms, rng).map(|_| ());
    (eligible, chosen)
}

/// The smallest session a requester may ask for: k = [`protocols::sharing::MIN_THRESHOLD`] of
/// n = k + 1 holders (n = k leaves no room in any region under the quorum caps).
pub const SMALLEST: (usize, usize) = (
    protocols::sharing::MIN_THRESHOLD as usize + 1,
    protocols::sharing::MIN_THRESHOLD as usize,
);

/// Why no session could be created now: what the pool lacks, why no quorum could be chosen, or
/// both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// What the pool lacks for a key (none: it holds enough).
    pub pool: Option<Shortfall>,
    /// Why the smallest session could not be placed (none: it could).
    pub quorum: Option<NoQuorum>,
}

/// Why no quorum could be chosen for an `n`-holder, threshold-`k` session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoQuorum {
    /// Holders asked for.
    pub n: usize,
    /// Threshold asked for.
    pub k: usize,
    /// Peers a quorum could be chosen from.
    pub eligible: usize,
    /// What the quorum selection refused.
    pub error: QuorumError,
    /// Trusted peers left out of every quorum for want of a verified share key.
    pub keyless: usize,
}

impl std::fmt::Display for NoQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no {}-of-{} quorum among {} eligible peers: {}{}",
            self.k,
            self.n,
            self.eligible,
            self.error,
            keyless_note(self.keyless)
        )
    }
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pool, &self.quorum) {
            (Some(p), Some(q)) => write!(f, "{p}; {q}"),
            (Some(p), None) => write!(f, "{p}"),
            (None, Some(q)) => write!(f, "{q}"),
            (None, None) => write!(f, "not ready"),
        }
    }
}

impl std::error::Error for NotReady {}

/// Whether a session could be created now (`GET /ready`): the pool holds enough credited
/// entropy from enough peers, and the [`SMALLEST`] session could be placed. Returns the peers a
/// quorum could be chosen from, and the verdict with every reason it is not ready.
pub fn readiness<R: rand_core::CryptoRng + ?Sized>(
    candidates: &Candidates<'_>,
    rules: &SessionRules,
    intake: &Intake,
    sources: &SourceBook,
    now_ms: u64,
    rng: &mut R,
) -> (usize, Result<(), NotReady>) {
    let pool = (!intake.ready(rules.min_credited_bits, rules.min_contributors))
        .then(|| shortfall(rules, intake, sources, candidates.peers));
    let (n, k) = SMALLEST;
    let (eligible, quorum) = quorum_outlook(candidates, rules, n, k, now_ms, rng);
    let keyless = candidates
        .peers
        .trusted_without_share_key(now_ms, rules.attestation_validity_ms)
        .len();
    let quorum = quorum.err().map(|error| NoQuorum {
        n,
        k,
        eligible,
        error,
        keyless,
    });
    let verdict = if pool.is_none() && quorum.is_none() {
        Ok(())
    } else {
        Err(NotReady { pool, quorum })
    };
    (eligible, verdict)
}

/// Why trusted peers were left out of every quorum, for a refusal's or a log's text.
pub fn keyless_note(keyless: usize) -> String {
    if keyless == 0 {
        return String::new();
    }
    format!(
        " ({keyless} trusted peer(s) left out: no verified share key; they run a build from \
         before holder share keys or have not attested since)"
    )
}

/// What the pool lacks for a key, what was refused on the way and what is under way.
pub fn shortfall(
    rules: &SessionRules,
    intake: &Intake,
    sources: &SourceBook,
    peers: &PeerTable,
) -> Shortfall {
    let (credited_bits, contributors) = intake.pool_credit();
    let (held_bits, _) = intake.held();
    Shortfall {
        credited_bits,
        needed_bits: rules.min_credited_bits,
        contributors,
        needed_contributors: rules.min_contributors,
        held_bits,
        audits_pending: sources.audits_pending(),
        blocks_waiting: sources.blocks_waiting(),
        refused: refused_since_start(
            &intake.stats().refused,
            peers.iter().map(|(_, p)| &p.refusals),
        ),
    }
}

/// Fresh values from the OS generator a new session takes.
pub struct Fresh {
    /// The session's id.
    pub session: [u8; 16],
    /// Mixed into the pool's draw.
    pub draw: [u8; 32],
    /// Mixed into the key's derivation.
    pub derive: [u8; 32],
}

/// A session dealt and ready to place: the shares boxed to their holders, the record to commit
/// once they are held. Nothing in it opens a share.
pub struct Born {
    /// The boxes and commitments, one per holder.
    pub dealt: BoxedDealing,
    /// The session as it will be committed (holders filled in on commit).
    pub record: SessionRecord,
    /// The holders chosen.
    pub holders: Vec<NodeId>,
}

/// The books a session is born from.
pub struct Nursery<'a> {
    /// Requesters allowed to create sessions.
    pub requesters: &'a BTreeSet<NodeId>,
    /// The pool; drawn from for the key.
    pub intake: &'a mut Intake,
    /// Sources' audits (for a shortfall's message).
    pub sources: &'a SourceBook,
    /// Where holders are chosen from.
    pub peers: &'a PeerTable,
    /// Shares each peer holds now.
    pub shares_held: &'a BTreeMap<NodeId, u32>,
    /// The node's last ping round trips.
    pub round_trips: &'a HashMap<libp2p::PeerId, std::time::Duration>,
}

impl Nursery<'_> {
    /// Handles `CreateSession` from `requester`: checks it, chooses the quorum, draws the key
    /// from the pool and deals it. The secret itself is dropped (and wiped) here; only its
    /// shares leave. A refusal says why, for the requester.
    pub fn deal<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rules: &SessionRules,
        requester: NodeId,
        policy: SessionPolicy,
        fresh: Fresh,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Born, Refusal> {
        let (n, k) = (usize::from(policy.n), usize::from(policy.k));
        if !self.requesters.contains(&requester) {
            return Err(Refusal::Unauthorized);
        }
        protocols::sharing::check_parameters(n, k)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        if policy.ttl_s == 0 || policy.ttl_s > rules.max_session_ttl_s {
            return Err(Refusal::Malformed(format!(
                "ttl must be 1..={} s",
                rules.max_session_ttl_s
            )));
        }
        if policy.requesters.len() > MAX_POLICY_REQUESTERS || policy.label.len() > MAX_POLICY_LABEL
        {
            return Err(Refusal::Malformed(
                "too many requesters or label too long".into(),
            ));
        }
        if !self
            .intake
            .ready(rules.min_credited_bits, rules.min_contributors)
        {
            let lacking = shortfall(rules, self.intake, self.sources, self.peers);
            return Err(Refusal::NotReady(lacking.to_string()));
        }
        let candidates = Candidates {
            peers: self.peers,
            shares_held: self.shares_held,
            flagged: self.intake.flagged(),
            round_trips: self.round_trips,
        };
        let quorum = choose_quorum(&candidates, rules, n, k, now_ms, rng).map_err(|e| {
            let keyless = self
                .peers
                .trusted_without_share_key(now_ms, rules.attestation_validity_ms)
                .len();
            Refusal::NotReady(format!("{e}{}", keyless_note(keyless)))
        })?;
        let session = SessionId(fresh.session);
        let (generated, receipt) = self
            .intake
            .draw(&fresh.draw)
            .map_err(|e| Refusal::NotReady(e.to_string()))?;
        let secret =
            SessionSecret::derive(&generated, &fresh.derive, &session).ok_or(Refusal::Internal)?;
        let placements: Vec<Placement> = quorum
            .holders
            .iter()
            .zip(1u8..)
            .map(|(node, index)| Placement { node: *node, index })
            .collect();
        let min_acks = k.max(n.saturating_sub(1));
        let dealt = Dealt::fresh(session, 0, &secret, placements, k, min_acks, rng)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        drop(secret);
        // Boxed to each holder's share key, then the shares are wiped: before any order exists.
        let dealt = dealt
            .seal_to_holders(|n| self.peers.share_key(n), rng)
            .map_err(|e| {
                tracing::error!(%session, error = %e, "a chosen holder has no share key");
                Refusal::Internal
            })?;
        let ttl_ms = policy.ttl_s.saturating_mul(1000);
        let record = SessionRecord {
            session,
            creator: requester,
            policy_digest: Sha256::digest(wire::encode(&policy)).into(),
            policy,
            epoch: 0,
            holders: Vec::new(),
            commitments: dealt.commitments().clone(),
            receipt,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            rotations: 0,
            rotated_at_ms: 0,
            // Boxed to its holders: under no master key.
            sealed_under: None,
            boxed: true,
        };
        Ok(Born {
            dealt,
            record,
            holders: quorum.holders,
        })
    }
}

/// Where a ticket request stands, as read from the database on every request.
#[derive(Debug)]
pub struct TicketStanding {
    /// The session, if it still exists.
    pub record: Option<SessionRecord>,
    /// Whether an operator removed the requester.
    pub removed: bool,
}

/// Handles `GetTicket` from `requester`: the session's creator and the requesters its policy
/// names may fetch, unless an operator removed them or the session expired. Returns the
/// session to grant on.
pub fn admit_ticket(
    standing: TicketStanding,
    requester: NodeId,
    now_ms: u64,
) -> Result<SessionRecord, Refusal> {
    if standing
        .record
        .as_ref()
        .is_some_and(|r| r.expires_at_ms <= now_ms)
    {
        return Err(Refusal::NotFound);
    }
    if standing.removed {
        tracing::info!(requester = %requester.short(), "ticket refused: requester removed by the operator");
        return Err(Refusal::Unauthorized);
    }
    let Some(session) = standing.record else {
        tracing::info!(requester = %requester.short(), "ticket refused: no such session (revoked, expired or never made)");
        return Err(Refusal::NotFound);
    };
    if session.creator != requester && !session.policy.requesters.contains(&requester) {
        tracing::info!(requester = %requester.short(), session = %session.session, "ticket refused: requester not named by the session");
        return Err(Refusal::Unauthorized);
    }
    Ok(session)
}

/// When a ticket issued at `now_ms` expires: after `ticket_ttl_s`, never after its session.
pub fn ticket_expiry(session_expires_at_ms: u64, now_ms: u64, ticket_ttl_s: u64) -> u64 {
    session_expires_at_ms.min(now_ms.saturating_add(ticket_ttl_s.saturating_mul(1000)))
}

/// A ticket grant for `requester` on the session's current epoch: the signed ticket naming the
/// holders (with the addresses known for them), and for a session dealt before holder share
/// keys the keys that open its sealed shares (none for a boxed session).
pub fn grant(
    signer: &Signer<'_>,
    rules: &SessionRules,
    record: &SessionRecord,
    requester: NodeId,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
    nonce: [u8; 16],
    now_ms: u64,
) -> TicketGrant {
    let addrs_of = |n: &NodeId| {
        addrs
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, a)| a.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    };
    let ticket = Ticket {
        v: WIRE_VERSION,
        coordinator: signer.key.node_id(),
        session: record.session,
        epoch: record.epoch,
        requester,
        holders: record
            .holders
            .iter()
            .map(|h| TicketHolder {
                node: h.node,
                index: h.index,
                addrs: addrs_of(&h.node),
            })
            .collect(),
        commitments: record.commitments.clone(),
        policy_digest: record.policy_digest,
        issued_at_ms: now_ms,
        expires_at_ms: ticket_expiry(record.expires_at_ms, now_ms, rules.ticket_ttl_s),
        nonce,
    };
    // A boxed session's shares are re-boxed to each fetch's key by their holders: the grant
    // opens nothing. Sessions dealt before (sealed under the master key) until re-dealt.
    let legacy = if record.boxed {
        &[][..]
    } else {
        &record.holders[..]
    };
    let opening_keys = legacy
        .iter()
        .map(|h| {
            let slot = ShareSlot {
                session: record.session,
                epoch: record.epoch,
                holder: h.node,
                index: h.index,
            };
            OpeningKeyEntry {
                index: h.index,
                key: signer.master.share_key(&slot),
            }
        })
        .collect();
    TicketGrant {
        v: WIRE_VERSION,
        ticket: SignedEnvelope::seal(signer.key, &ticket),
        opening_keys,
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
