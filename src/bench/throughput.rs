//! End-to-end session creation rate, rotation time, and filling the coordinator with live sessions.

use super::fetch_latency::{create_session_when_ready, policy};
use super::stats::{Deadline, median_ms};
use crate::fleet::admin_call;
use anyhow::Context;
use coordinator::admin::AdminCall;
use protocols::ids::SessionId;
use protocols::ticket::Ticket;
use protocols::wire::Refusal;
use requester::{Requester, RequesterError};
use std::path::Path;
use std::time::{Duration, Instant};

/// Pause after a `NotReady` refusal before asking again.
pub(crate) const NOT_READY_RETRY: Duration = Duration::from_millis(10);
/// How often the ticket is polled for the new epoch during a rotation.
const ROTATION_POLL: Duration = Duration::from_millis(10);

/// `create_session` in a loop.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct SessionRate {
    /// How long the loop ran, s.
    pub seconds: f64,
    /// Sessions created.
    pub created: u64,
    /// Sessions created per second.
    pub sessions_per_s: f64,
    /// `NotReady` refusals (pool short of credited bits or contributors, or no quorum yet).
    pub not_ready_refusals: u64,
    /// Pause after each refusal before asking again, ms.
    pub retry_after_ms: u64,
    /// Created sessions whose entropy receipt credits fewer bits than the coordinator's
    /// `--min-credited-bits`.
    pub receipts_below_min_credited_bits: u64,
}

/// Creates (5,3) sessions back to back for `window`; a `NotReady` refusal is counted and retried
/// after [`NOT_READY_RETRY`]; any other failure ends the bench.
pub(crate) async fn session_rate(
    requester: &Requester,
    window: Duration,
    min_credited_bits: u64,
    deadline: &Deadline,
) -> anyhow::Result<SessionRate> {
    let (mut created, mut not_ready, mut short_receipts) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < window {
        deadline.check("creating sessions for the rate")?;
        match requester.create_session(policy(5, 3, "bench-rate")).await {
            Ok(session) => {
                created += 1;
                if session.receipt.credited_bits < min_credited_bits {
                    short_receipts += 1;
                }
            }
            Err(RequesterError::Refused(Refusal::NotReady(_))) => {
                not_ready += 1;
                tokio::time::sleep(NOT_READY_RETRY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(SessionRate {
        seconds,
        created,
        sessions_per_s: created as f64 / seconds,
        not_ready_refusals: not_ready,
        retry_after_ms: NOT_READY_RETRY.as_millis() as u64,
        receipts_below_min_credited_bits: short_receipts,
    })
}

/// Pause between a rotation showing its new epoch and the next `Rotate`: the coordinator still
/// tells the old holders to delete the previous epoch after the commit, and a `Rotate` that arrives
/// before it has finished is forgotten when it does.
const ROTATION_SETTLE: Duration = Duration::from_millis(500);
/// A `Rotate` whose epoch has not appeared after this long is sent again (and timed afresh).
const ROTATE_REISSUE_AFTER: Duration = Duration::from_secs(10);

/// Rotation of one session, repeated.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct RotationTime {
    /// Shares of the rotated session.
    pub n: u8,
    /// Rotations measured.
    pub rotations: usize,
    /// Median time from the admin `Rotate` call to a ticket with the new epoch, ms.
    pub median_ms: f64,
    /// Fastest, ms.
    pub min_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Ticket polling period, ms.
    pub poll_ms: u64,
    /// Pause after each rotation before the next `Rotate`, ms.
    pub settle_ms: u64,
    /// `Rotate` calls sent again because no new epoch appeared within 10 s (timed from the resend).
    pub rotate_calls_resent: u64,
}

async fn current_epoch(requester: &Requester, session: SessionId) -> anyhow::Result<u32> {
    let grant = requester.ticket(session).await?;
    let ticket: Ticket = grant.ticket.open_from_any_signer()?.1;
    Ok(ticket.epoch)
}

/// Rotates `session` (of `n` shares) `rotations` times, each timed from the admin call until
/// `Requester::ticket` shows the next epoch (polled every 10 ms).
pub(crate) async fn rotation_time(
    requester: &Requester,
    admin_socket: &Path,
    session: SessionId,
    n: u8,
    rotations: usize,
    deadline: &Deadline,
) -> anyhow::Result<RotationTime> {
    let mut samples = Vec::with_capacity(rotations);
    let mut resent = 0u64;
    for _ in 0..rotations {
        tokio::time::sleep(ROTATION_SETTLE).await;
        let before = current_epoch(requester, session).await?;
        let mut started = Instant::now();
        admin_call(admin_socket, AdminCall::Rotate { session }).await?;
        loop {
            deadline.check(&format!("waiting for rotation to epoch {}", before + 1))?;
            if current_epoch(requester, session).await? > before {
                break;
            }
            if started.elapsed() >= ROTATE_REISSUE_AFTER {
                resent += 1;
                started = Instant::now();
                admin_call(admin_socket, AdminCall::Rotate { session }).await?;
            }
            tokio::time::sleep(ROTATION_POLL).await;
        }
        samples.push(started.elapsed());
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    Ok(RotationTime {
        n,
        rotations,
        median_ms: median_ms(&samples).context("no rotations")?,
        min_ms: samples.iter().map(ms).fold(f64::INFINITY, f64::min),
        max_ms: samples.iter().map(ms).fold(0.0, f64::max),
        poll_ms: ROTATION_POLL.as_millis() as u64,
        settle_ms: ROTATION_SETTLE.as_millis() as u64,
        rotate_calls_resent: resent,
    })
}

/// Creates (5,3) sessions until `target` exist (`existing` were created before); returns how
/// long it took.
pub(crate) async fn fill_sessions(
    requester: &Requester,
    existing: u64,
    target: u64,
    deadline: &Deadline,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut live = existing;
    while live < target {
        create_session_when_ready(requester, policy(5, 3, "bench-live"), deadline).await?;
        live += 1;
        if live.is_multiple_of(100) {
            eprintln!("[bench]   {live} of {target} live sessions");
        }
    }
    Ok(started.elapsed())
}
