//! The coordinator loop's own tasks' reports (attestation answers, stored sessions, finished
//! audits, expiries and rotations) and admin requests from the local socket, handed to the
//! core's [`State`] to book; the metrics, logs, replies and database writes are done here.

use super::*;

pub(super) fn on_internal(ctx: &Arc<Ctx>, state: &mut State, msg: Internal) {
    let quarantined = match msg {
        Internal::Attested {
            node,
            nonce,
            reply,
            received_at_ms,
        } => {
            attest::judge(ctx, state, node, nonce, reply, received_at_ms);
            Vec::new()
        }
        Internal::EntropyAudited {
            node,
            source,
            outcome,
        } => {
            super::entropy_audit::settle(ctx, state, node, source, outcome);
            Vec::new()
        }
        Internal::SessionStored { session, holders } => {
            ctx.metrics.sessions_created.inc();
            ctx.metrics.sessions_live.inc();
            state.handle_session_stored(session, holders, now_ms());
            tracing::info!(%session, "session stored");
            Vec::new()
        }
        Internal::Audited {
            session,
            faults,
            silent,
            attempt,
        } => state.handle_audited(session, faults, silent, attempt, now_ms()),
        Internal::ExpiryDone { session } => {
            state.handle_expiry_done(&session);
            Vec::new()
        }
        Internal::Settled { sessions, faults } => state.handle_settled(&sessions, faults),
        Internal::Rotated {
            session,
            cause,
            outcome,
            started,
            mark,
            faults,
        } => {
            let moved = outcome.as_ref().ok().map(|(old, new)| (&old[..], &new[..]));
            let labels = state.handle_rotated(session, cause, mark, moved, faults, now_ms());
            match outcome {
                Ok(_) => {
                    ctx.metrics.rotations.inc(cause.label());
                    let took = started.elapsed();
                    ctx.metrics.rotation_seconds.observe(took.as_secs_f64());
                    let took_ms = took.as_millis() as u64;
                    tracing::info!(%session, ?cause, took_ms, "rotation committed");
                }
                Err(_) => ctx.metrics.rotations_failed.inc(cause.label()),
            }
            labels
        }
    };
    for label in quarantined {
        ctx.metrics.quarantines.inc(label);
    }
}

/// Revocations waiting for their session to be free, each with where to answer.
pub(super) type Revocations = Vec<(protocols::ids::SessionId, RevokeReply)>;

pub(super) async fn on_admin(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    revocations: &mut Revocations,
    req: AdminRequest,
) {
    match req {
        AdminRequest::Rotate(session) => {
            state.ledger.request_rotation(session);
            if let Ok(Ok(Some(record))) = ctx.on_db(move |db| db.session(&session)).await {
                rotation::start(ctx, state, internal, record, rotation::Cause::Manual);
            }
        }
        AdminRequest::Enrol {
            node,
            region,
            operator,
        } => state.peers.enrol(node, region, operator),
        AdminRequest::Allow(digest) => {
            state.allowlist.insert(digest);
        }
        AdminRequest::AddRequester(node) => {
            state.requesters.insert(node);
        }
        AdminRequest::Disallow(digest) => {
            state.allowlist.remove(&digest);
        }
        AdminRequest::RemoveRequester(node) => {
            state.requesters.remove(&node);
        }
        AdminRequest::RemovePeer(node) => {
            // Its shares move with the next rotation sweep: an unenrolled holder is lost.
            state.peers.remove(&node);
        }
        AdminRequest::Unquarantine(node, reply) => {
            let lifted = state.unquarantine(node);
            if lifted.is_ok() && state.wanted_on_connect(&node, now_ms()) {
                attest::challenge(ctx, state, internal, node);
            }
            let _ = reply.send(lifted);
        }
        AdminRequest::Revoke(session, reply) => {
            revocations.push((session, reply));
            revoke_ready(ctx, state, revocations).await;
        }
        AdminRequest::RotateMasterKey(reply) => {
            let _ = reply.send(super::master_keys::begin_rotation(ctx).await);
        }
        AdminRequest::Status(reply) => {
            let _ = reply.send(state.peer_lines(now_ms()));
        }
        AdminRequest::Figures(reply) => {
            let _ = reply.send(state.figures(now_ms()));
        }
        AdminRequest::AuditHoldersNow => {
            if let Ok(Ok(sessions)) = ctx.on_db(move |db| db.sessions()).await {
                state.audit_live_now(&sessions, now_ms());
            }
        }
    }
}

/// Revokes each session an operator asked to revoke that no rotation, audit or deletion holds
/// now; the others wait for a later tick.
pub(super) async fn revoke_ready(ctx: &Arc<Ctx>, state: &mut State, waiting: &mut Revocations) {
    for (session, reply) in std::mem::take(waiting) {
        if !state.may_revoke(&session) {
            waiting.push((session, reply));
            continue;
        }
        let revoked = match ctx.on_db(move |db| db.revoke_session(&session)).await {
            Ok(r) => r,
            Err(e) => Err(crate::db::DbError::Database {
                path: ctx.db.path().to_path_buf(),
                op: "revoking a session",
                detail: e.to_string(),
            }),
        };
        if let Ok(Some(record)) = &revoked {
            state.handle_revoked(record);
            tracing::info!(%session, holders = record.holders.len(), "session revoked; its holders owe a deletion");
        }
        let _ = reply.send(revoked);
    }
}
