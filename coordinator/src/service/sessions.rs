//! Sessions: `CreateSession` and `GetTicket` decided by the core ([`crate::core::sessions`]);
//! here the pool is settled first, the dealt shares are placed by the placement driver, the
//! answer is sent and ticket grants are written to the audit trail.

use super::placing::{self, Stop};
use super::{Ctx, Internal, ReplyTo, State, now_ms, os_random};
use crate::core::Outcome;
use crate::core::placement::EpochPlacement;
use crate::core::sessions::{self as decide, Born, Fresh, SessionRules, TicketStanding};
use crate::db::SessionRecord;
use protocols::ids::{NodeId, SessionId};
use protocols::ticket::TicketGrant;
use protocols::wire::{self, Refusal, Reply, SessionCreated, SessionPolicy, WIRE_VERSION};
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

/// The limits sessions and tickets are judged by.
fn rules(ctx: &Ctx) -> SessionRules {
    crate::core::state::Rules::of(&ctx.config).sessions
}

/// Handles `CreateSession`: the core deals the key, the placement driver places it.
pub(super) async fn create(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    requester: NodeId,
    policy: SessionPolicy,
    responder: ReplyTo,
) {
    let started = std::time::Instant::now();
    // Credit whose duplicate window has closed counts from now on.
    super::gossip::settle_intake(ctx, state);
    let round_trips = ctx.node.round_trips();
    let fresh = Fresh {
        session: os_random(),
        draw: os_random(),
        derive: os_random(),
    };
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let born = state.deal(requester, policy, fresh, now_ms(), &round_trips, &mut rng);
    let Born {
        dealt,
        record,
        holders,
    } = match born {
        Ok(born) => born,
        Err(r) => {
            tracing::info!(requester = %requester.short(), reason = %r, "session create refused");
            let _ = responder.respond(refuse(ctx, r)).await;
            return;
        }
    };
    let session = record.session;
    let addrs = state.peers.addrs_of(holders.iter().copied());
    tracing::debug!(%session, holders = holders.len(), "session dealt; sending store orders");
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        // The signer's master key seals nothing here (the shares are boxed to their holders).
        let master = ctx.masters.sealing_key();
        let mut placement = EpochPlacement::new(
            dealt,
            record,
            &placing::signer(&ctx, &master),
            now_ms(),
            placing::HOLDER_ANSWER_MS,
        );
        let refusal = match placing::drive(&ctx, &mut placement, &addrs).await {
            Stop::Committed(record) => {
                let holders = record.holders.iter().map(|h| h.node).collect();
                let Some(grant) = grant(&ctx, &record, requester, &addrs) else {
                    let _ = responder.respond(refuse(&ctx, Refusal::Internal)).await;
                    return;
                };
                let created = SessionCreated {
                    v: WIRE_VERSION,
                    session,
                    grant,
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

/// A ticket grant for `requester` on the session's current epoch; `None` if no master key in
/// force opens that epoch (see [`Ctx::opening_key`]).
pub(super) fn grant(
    ctx: &Ctx,
    record: &SessionRecord,
    requester: NodeId,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Option<TicketGrant> {
    let ring = ctx.masters.get();
    let Some(master) = ring.for_session(record.sealed_under.as_ref()) else {
        tracing::error!(session = %record.session, key = ?record.sealed_under, "no master key in force opens this session");
        return None;
    };
    Some(decide::grant(
        &placing::signer(ctx, master),
        &rules(ctx),
        record,
        requester,
        addrs,
        os_random(),
        now_ms(),
    ))
}

/// Handles `GetTicket`, checked by the core against the database as it is now.
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
    let reply = match standing {
        Ok(Ok(standing)) => match decide::admit_ticket(standing, requester, now_ms()) {
            Ok(record) => {
                let addrs: Vec<_> = state.peers.addrs_of(record.holders.iter().map(|h| h.node));
                match grant(ctx, &record, requester, &addrs) {
                    Some(grant) => {
                        let who = crate::admin::peer_text(&requester);
                        audit_grant(ctx, &who, "ticket", &record, &grant).await;
                        let seconds = peer::telemetry::seconds_since(started);
                        ctx.metrics.ticket_issue_seconds.observe(seconds);
                        wire::encode(&Reply::ok(grant))
                    }
                    None => refuse(ctx, Refusal::Internal),
                }
            }
            Err(r) => refuse(ctx, r),
        },
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
    let coordinator = ctx.key.node_id();
    let entry =
        crate::core::audit_trail::ticket(&coordinator, who, action, record, grant, now_ms());
    match ctx.on_db(move |db| db.append_audit(entry)).await {
        Ok(Ok(_)) => {}
        _ => tracing::error!(session = %record.session, "audit entry of a ticket not recorded"),
    }
}
