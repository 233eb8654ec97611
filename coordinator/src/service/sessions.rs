//! Sessions: derive a key when the pool is ready, place and seal its shares, commit after durable
//! acknowledgements, and issue tickets.

use super::placing::{self, Stop};
use super::{Ctx, Internal, ReplyTo, State, now_ms, os_random};
use crate::core::Outcome;
use crate::core::placement::{EpochPlacement, Placing};
use crate::db::SessionRecord;
use crate::intake::shortfall::{Shortfall, refused_since_start};
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionSecret;
use protocols::quorum::{QuorumPolicy, select_quorum};
use protocols::reshare::{Dealt, Placement};
use protocols::sealing::ShareSlot;
use protocols::ticket::{OpeningKeyEntry, Ticket, TicketGrant, TicketHolder};
use protocols::wire::{
    self, Refusal, Reply, SessionCreated, SessionPolicy, SignedEnvelope, WIRE_VERSION,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A line of `session list`.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// Session.
    pub session: SessionId,
    /// Current epoch.
    pub epoch: u32,
    /// Holders.
    pub holders: usize,
}

/// Encodes a refusal and counts it by reason.
pub(super) fn refuse(ctx: &Ctx, r: Refusal) -> Vec<u8> {
    ctx.metrics.requests_refused.inc(r.label());
    wire::encode(&Reply::<()>::refused(r))
}

/// What the pool lacks for a key, what was refused on the way and what is under way.
pub(super) fn shortfall(ctx: &Ctx, state: &State) -> Shortfall {
    let (credited_bits, contributors) = state.intake.pool_credit();
    let (held_bits, _) = state.intake.held();
    Shortfall {
        credited_bits,
        needed_bits: ctx.config.min_credited_bits,
        contributors,
        needed_contributors: ctx.config.min_contributors,
        held_bits,
        audits_pending: state.sources.audits_pending(),
        blocks_waiting: state.sources.blocks_waiting(),
        refused: refused_since_start(
            &state.intake.stats().refused,
            state.peers.iter().map(|(_, p)| &p.refusals),
        ),
    }
}

/// Chooses `n` holders (threshold `k`) among the trusted peers with a fresh heartbeat, for a new
/// session or a rotation alike: never a peer whose contributions were flagged (clones) or that
/// is quarantined (a quarantined peer is not trusted, so the table marks it unattested).
pub(super) fn choose_quorum(
    ctx: &Ctx,
    state: &State,
    n: usize,
    k: usize,
    now: u64,
) -> Result<protocols::quorum::Quorum, protocols::quorum::QuorumError> {
    let (table, policy) = quorum_inputs(ctx, state, now);
    select_quorum(
        &table,
        n,
        k,
        &policy,
        now,
        &mut rand_core::UnwrapErr(rand::rngs::SysRng),
    )
}

/// The peer table and policy a quorum is chosen with at `now`.
fn quorum_inputs(
    ctx: &Ctx,
    state: &State,
    now: u64,
) -> (Vec<protocols::quorum::PeerRecord>, QuorumPolicy) {
    let validity = (ctx.config.attestation_validity_s * 1000.0) as u64;
    let table =
        state
            .peers
            .quorum_table(now, validity, &state.shares_held, &ctx.node.round_trips());
    let policy = QuorumPolicy {
        heartbeat_max_age_ms: (ctx.config.heartbeat_max_age_s * 1000.0) as u64,
        ..QuorumPolicy::default()
    }
    .excluding(state.intake.flagged().iter().copied());
    (table, policy)
}

/// Peers a quorum could be chosen from at `now`, and whether an `n`-holder, threshold-`k`
/// quorum could be chosen among them (what `/ready` asks).
pub(super) fn quorum_outlook(
    ctx: &Ctx,
    state: &State,
    n: usize,
    k: usize,
    now: u64,
) -> (usize, Result<(), protocols::quorum::QuorumError>) {
    let (table, policy) = quorum_inputs(ctx, state, now);
    let eligible = protocols::quorum::eligible(&table, &policy, now).len();
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let chosen = select_quorum(&table, n, k, &policy, now, &mut rng).map(|_| ());
    (eligible, chosen)
}

/// Handles `CreateSession` from an authorised requester.
pub(super) async fn create(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    requester: NodeId,
    policy: SessionPolicy,
    responder: ReplyTo,
) {
    let started = std::time::Instant::now();
    let (n, k) = (usize::from(policy.n), usize::from(policy.k));
    // Credit whose duplicate window has closed counts from now on.
    super::gossip::settle_intake(ctx, state);
    let refusal = if !state.requesters.contains(&requester) {
        Some(Refusal::Unauthorized)
    } else if let Err(e) = protocols::sharing::check_parameters(n, k) {
        Some(Refusal::Malformed(e.to_string()))
    } else if policy.ttl_s == 0 || policy.ttl_s > ctx.config.max_session_ttl_s {
        Some(Refusal::Malformed(format!(
            "ttl must be 1..={} s",
            ctx.config.max_session_ttl_s
        )))
    } else if policy.requesters.len() > 64 || policy.label.len() > 256 {
        Some(Refusal::Malformed(
            "too many requesters or label too long".into(),
        ))
    } else if !state
        .intake
        .ready(ctx.config.min_credited_bits, ctx.config.min_contributors)
    {
        Some(Refusal::NotReady(shortfall(ctx, state).to_string()))
    } else {
        None
    };
    if let Some(r) = refusal {
        tracing::info!(requester = %requester.short(), reason = %r, "session create refused");
        let _ = responder.respond(refuse(ctx, r)).await;
        return;
    }
    let now = now_ms();
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let quorum = match choose_quorum(ctx, state, n, k, now) {
        Ok(q) => q,
        Err(e) => {
            let _ = responder
                .respond(refuse(ctx, Refusal::NotReady(e.to_string())))
                .await;
            return;
        }
    };
    let session = SessionId(os_random());
    let (generated, receipt) = match state.intake.draw(&os_random()) {
        Ok(g) => g,
        Err(e) => {
            let _ = responder
                .respond(refuse(ctx, Refusal::NotReady(e.to_string())))
                .await;
            return;
        }
    };
    let Some(secret) = SessionSecret::derive(&generated, &os_random(), &session) else {
        let _ = responder.respond(refuse(ctx, Refusal::Internal)).await;
        return;
    };
    let placements: Vec<Placement> = quorum
        .holders
        .iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node: *node, index })
        .collect();
    let min_acks = k.max(n.saturating_sub(1));
    let ttl_ms = policy.ttl_s.saturating_mul(1000);
    let dealt = match Dealt::fresh(session, 0, &secret, placements, k, min_acks, &mut rng) {
        Ok(d) => d,
        Err(e) => {
            let _ = responder
                .respond(refuse(ctx, Refusal::Malformed(e.to_string())))
                .await;
            return;
        }
    };
    drop(secret);
    let addrs = state.peers.addrs_of(quorum.holders.iter().copied());
    let record = SessionRecord {
        session,
        creator: requester,
        policy_digest: Sha256::digest(wire::encode(&policy)).into(),
        policy,
        epoch: 0,
        holders: Vec::new(),
        commitments: dealt.commitments().clone(),
        receipt,
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl_ms),
        rotations: 0,
        rotated_at_ms: 0,
    };
    tracing::debug!(%session, n, k, "session dealt; sending store orders");
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let mut placement = EpochPlacement::new(
            Placing::Creation,
            dealt,
            record,
            &placing::signer(&ctx),
            &mut rng,
            now_ms(),
            placing::HOLDER_ANSWER_MS,
        );
        let refusal = match placing::drive(&ctx, &mut placement, &addrs).await {
            Stop::Committed(record) => {
                let holders = record.holders.iter().map(|h| h.node).collect();
                let created = SessionCreated {
                    v: WIRE_VERSION,
                    session,
                    grant: grant(&ctx, &record, requester, &addrs),
                    receipt: record.receipt.clone(),
                };
                audit_grant(
                    &ctx,
                    &crate::admin::peer_text(&requester),
                    "session create",
                    &record,
                    &created.grant,
                )
                .await;
                let _ = internal
                    .send(Internal::SessionStored { session, holders })
                    .await;
                let _ = responder.respond(wire::encode(&Reply::ok(created))).await;
                let seconds = peer::telemetry::seconds_since(started);
                ctx.metrics.session_create_seconds.observe(seconds);
                // Holders dealt a share that never acknowledged it are told to delete it.
                placing::drive(&ctx, &mut placement, &addrs).await;
                return;
            }
            Stop::Done(Some(Outcome::RolledBack(reason))) => Refusal::NotReady(reason.to_string()),
            Stop::Done(other) => {
                tracing::error!(%session, outcome = ?other, "session not recorded");
                Refusal::Internal
            }
        };
        tracing::warn!(%session, reason = %refusal, "session creation failed");
        let _ = responder.respond(refuse(&ctx, refusal)).await;
    });
}

/// A ticket grant for `requester` on the session's current epoch.
pub(super) fn grant(
    ctx: &Ctx,
    record: &SessionRecord,
    requester: NodeId,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> TicketGrant {
    let addrs_of = |n: &NodeId| {
        addrs
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, a)| a.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    };
    let now = now_ms();
    let ticket = Ticket {
        v: WIRE_VERSION,
        coordinator: ctx.key.node_id(),
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
        issued_at_ms: now,
        expires_at_ms: ticket_expiry(record.expires_at_ms, now, ctx.config.ticket_ttl_s),
        nonce: os_random(),
    };
    let opening_keys = record
        .holders
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
                key: ctx.master.share_key(&slot),
            }
        })
        .collect();
    TicketGrant {
        v: WIRE_VERSION,
        ticket: SignedEnvelope::seal(&ctx.key, &ticket),
        opening_keys,
    }
}

/// When a ticket issued at `now_ms` expires: after `ticket_ttl_s`, never after its session.
pub(crate) fn ticket_expiry(session_expires_at_ms: u64, now_ms: u64, ticket_ttl_s: u64) -> u64 {
    session_expires_at_ms.min(now_ms.saturating_add(ticket_ttl_s.saturating_mul(1000)))
}

/// What a ticket request is checked against, read from the database on every request.
struct TicketStanding {
    record: Option<SessionRecord>,
    removed: bool,
}

/// Handles `GetTicket`: the session's creator and the requesters its policy names may fetch,
/// unless an operator removed them; checked against the database on every request.
pub(super) async fn ticket(
    ctx: &Arc<Ctx>,
    state: &State,
    requester: NodeId,
    session: SessionId,
    responder: ReplyTo,
) {
    let started = std::time::Instant::now();
    let db = ctx.db.clone();
    let standing = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::db::DbError>(TicketStanding {
            record: db.session(&session)?,
            removed: db.requester_revoked(&requester)?,
        })
    })
    .await;
    let who = crate::admin::peer_text(&requester);
    let reply = match standing {
        Ok(Ok(TicketStanding {
            record: Some(record),
            ..
        })) if record.expires_at_ms <= now_ms() => refuse(ctx, Refusal::NotFound),
        Ok(Ok(TicketStanding { removed: true, .. })) => {
            tracing::info!(requester = %who, %session, "ticket refused: requester removed by the operator");
            refuse(ctx, Refusal::Unauthorized)
        }
        Ok(Ok(TicketStanding {
            record: Some(record),
            ..
        })) if record.creator == requester || record.policy.requesters.contains(&requester) => {
            let addrs: Vec<_> = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
            let grant = grant(ctx, &record, requester, &addrs);
            audit_grant(ctx, &who, "ticket", &record, &grant).await;
            let seconds = peer::telemetry::seconds_since(started);
            ctx.metrics.ticket_issue_seconds.observe(seconds);
            wire::encode(&Reply::ok(grant))
        }
        Ok(Ok(TicketStanding {
            record: Some(_), ..
        })) => {
            tracing::info!(requester = %who, %session, "ticket refused: requester not named by the session");
            refuse(ctx, Refusal::Unauthorized)
        }
        Ok(Ok(TicketStanding { record: None, .. })) => {
            tracing::info!(requester = %who, %session, "ticket refused: no such session (revoked, expired or never made)");
            refuse(ctx, Refusal::NotFound)
        }
        _ => refuse(ctx, Refusal::Internal),
    };
    let _ = responder.respond(reply).await;
}

/// Records a ticket issued to `who` in the audit trail.
async fn audit_grant(
    ctx: &Arc<Ctx>,
    who: &str,
    action: &'static str,
    record: &SessionRecord,
    grant: &TicketGrant,
) {
    let expires = grant
        .ticket
        .open::<Ticket>(&ctx.key.node_id())
        .map(|t| crate::admin::rfc3339::format_ms(t.expires_at_ms))
        .unwrap_or_default();
    let entry = crate::db::AuditEntry::new(
        now_ms(),
        format!("requester {who}"),
        action,
        record.session.to_string(),
        format!("epoch {}, ticket expires {expires}", record.epoch),
    );
    let db = ctx.db.clone();
    match tokio::task::spawn_blocking(move || db.append_audit(entry)).await {
        Ok(Ok(_)) => {}
        _ => tracing::error!(session = %record.session, "audit entry of a ticket not recorded"),
    }
}

#[cfg(test)]
mod tests {
    use super::ticket_expiry;

    #[test]
    fn a_ticket_lives_its_ttl_but_never_past_its_session() {
        assert_eq!(ticket_expiry(10_000_000, 1_000, 3600), 3_601_000);
        assert_eq!(ticket_expiry(2_000, 1_000, 3600), 2_000);
        assert_eq!(ticket_expiry(u64::MAX, u64::MAX - 5, 3600), u64::MAX);
    }
}
