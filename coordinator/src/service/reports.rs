//! What the coordinator loop does with its own tasks' reports (attestation answers, stored
//! sessions, finished expiries and rotations) and with admin requests from the local socket.

use super::*;

pub(super) fn on_internal(ctx: &Arc<Ctx>, state: &mut State, msg: Internal) {
    match msg {
        Internal::Attested {
            node,
            nonce,
            reply,
            received_at_ms,
        } => attest::judge(ctx, state, node, nonce, reply, received_at_ms),
        Internal::EntropyAudited {
            node,
            source,
            outcome,
        } => super::entropy_audit::settle(ctx, state, node, source, outcome),
        Internal::SessionStored { session, holders } => {
            ctx.metrics.sessions_created.inc();
            ctx.metrics.sessions_live.inc();
            state.ledger.stored(holders);
            state.audits.handle_committed(session, now_ms());
            tracing::info!(%session, "session stored");
        }
        Internal::Audited {
            session,
            faults,
            silent,
            attempt,
        } => {
            state.ledger.release(&session);
            audit::apply_faults(ctx, state, faults);
            state
                .audits
                .handle_audited(session, silent, attempt, now_ms());
        }
        Internal::ExpiryDone { session } => state.ledger.release(&session),
        Internal::Settled { sessions, faults } => {
            audit::apply_faults(ctx, state, faults);
            for session in sessions {
                state.ledger.release(&session);
            }
        }
        Internal::Rotated {
            session,
            cause,
            outcome,
            started,
            mark,
            faults,
        } => {
            audit::apply_faults(ctx, state, faults);
            let moved = outcome.as_ref().ok().map(|(old, new)| (&old[..], &new[..]));
            state.ledger.rotation_ended(session, cause, mark, moved);
            match outcome {
                Ok(_) => {
                    ctx.metrics.rotations.inc(cause.label());
                    state.audits.handle_committed(session, now_ms());
                    let took = started.elapsed();
                    ctx.metrics.rotation_seconds.observe(took.as_secs_f64());
                    let took_ms = took.as_millis() as u64;
                    tracing::info!(%session, ?cause, took_ms, "rotation committed");
                }
                Err(_) => ctx.metrics.rotations_failed.inc(cause.label()),
            }
        }
    }
}

pub(super) async fn on_admin(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    req: AdminRequest,
) {
    match req {
        AdminRequest::Rotate(session) => {
            state.ledger.request_rotation(session);
            let db = ctx.db.clone();
            if let Ok(Ok(Some(record))) =
                tokio::task::spawn_blocking(move || db.session(&session)).await
                && !state.ledger.is_busy(&session)
            {
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
            let lifted = unquarantine(state, node);
            if lifted.is_ok() {
                attest::challenge_if_untrusted(ctx, state, internal, node);
            }
            let _ = reply.send(lifted);
        }
        AdminRequest::Revoke(session, reply) => {
            state.revocations.push((session, reply));
            revoke_ready(ctx, state).await;
        }
        AdminRequest::RotateMasterKey(reply) => {
            let _ = reply.send(super::master_keys::begin_rotation(ctx).await);
        }
        AdminRequest::Status(reply) => {
            let _ = reply.send(peer_lines(state));
        }
        AdminRequest::Figures(reply) => {
            let _ = reply.send(figures::of(state));
        }
        AdminRequest::AuditHoldersNow => {
            let db = ctx.db.clone();
            if let Ok(Ok(sessions)) = tokio::task::spawn_blocking(move || db.sessions()).await {
                let now = now_ms();
                let live = sessions
                    .iter()
                    .filter(|s| s.expires_at_ms > now)
                    .map(|s| s.session);
                state.audits.audit_now(live, now);
            }
        }
    }
}

/// Lifts `node`'s quarantine (and its clone flag); answers what was lifted.
fn unquarantine(state: &mut State, node: NodeId) -> Result<String, crate::admin::AdminError> {
    use crate::admin::{AdminError, peer_text};
    let flagged = state.intake.flagged().contains(&node);
    let Some(p) = state.peers.get_mut(&node) else {
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
    // Trusted again only after a fresh attestation.
    p.attested_at_ms = None;
    state.intake.unflag(&node);
    tracing::info!(peer = %peer_text(&node), %lifted, "quarantine lifted by the operator");
    Ok(lifted)
}

/// Revokes each session an operator asked to revoke that no rotation, audit or deletion holds
/// now; the others wait for a later tick.
pub(super) async fn revoke_ready(ctx: &Arc<Ctx>, state: &mut State) {
    let waiting = std::mem::take(&mut state.revocations);
    for (session, reply) in waiting {
        if state.ledger.is_busy(&session) {
            state.revocations.push((session, reply));
            continue;
        }
        let db = ctx.db.clone();
        let revoked = match tokio::task::spawn_blocking(move || db.revoke_session(&session)).await {
            Ok(r) => r,
            Err(e) => Err(crate::db::DbError::Database {
                path: ctx.db.path().to_path_buf(),
                op: "revoking a session",
                detail: e.to_string(),
            }),
        };
        if let Ok(Some(record)) = &revoked {
            state.ledger.dropped(record.holders.iter().map(|h| h.node));
            state.ledger.forget_request(&session);
            tracing::info!(%session, holders = record.holders.len(), "session revoked; its holders owe a deletion");
        }
        let _ = reply.send(revoked);
    }
}

/// The peer table as admin lines.
fn peer_lines(state: &State) -> Vec<crate::admin::PeerLine> {
    let now = now_ms();
    state
        .peers
        .iter()
        .map(|(node, p)| crate::admin::PeerLine {
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
            shares_held: state.ledger.shares_held().get(node).copied().unwrap_or(0),
            heartbeat_age_s: p.heartbeat_at_ms.map(|t| now.saturating_sub(t) / 1000),
            credited_bits: p.credited_bits,
            sources: p.sources().to_vec(),
            refusals: p
                .refusals
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            source_lines: state
                .sources
                .of(node)
                .map(|(name, entry)| crate::admin::SourceLine::of(name, entry, now))
                .collect(),
        })
        .collect()
}
