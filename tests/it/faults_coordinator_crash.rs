//! The coordinator SIGKILLed at many points while it distributes new sessions and rotates old
//! ones, then restarted: no acknowledged session is lost (each still rebuilds the key it had), old
//! holders keep epoch e until the commit (the session stays fetchable through every crash), and
//! once recovery completes no holder keeps a share the coordinator does not list: not of a
//! rolled-back epoch, not of a superseded one, not of a session that was never acknowledged.
//!
//! Points: `ENTROSHARD_CRASH_POINTS` (default 5, one per stage; `scripts/crash-points.sh 100`
//! for a long run). Every crash point between two actions of a creation or a rotation is replayed
//! deterministically in `coordinator::core` (decision 0041); this test keeps what needs a
//! process: SIGKILL of the real daemon, its redb file, restart and re-attestation.
//! Each point waits for one stage in the coordinator's log (store orders of a new session sent,
//! a rotation's pending epoch stored, an epoch committed, a session recorded) or for a random
//! delay, adds a random few milliseconds, and kills. A creation's stages are waited for until
//! they come (bounded only as a hang); a rotation's for 20 s, since a rotation may be put off. The seed is printed; set
//! `ENTROSHARD_CRASH_SEED` to replay an order of points.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cluster::*;
use common::*;
use coordinator::admin::AdminCall;
use protocols::ids::SessionId;
use protocols::keys::SessionKey;
use protocols::wire::SessionPolicy;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Regions of the five peers (a 3-of-... quorum takes one per region, so rotations can move).
const REGIONS: [&str; 5] = ["r0", "r1", "r2", "r0", "r1"];

/// Where a point kills the coordinator.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// After a new session's store orders went out (distribution in flight).
    StoreOrdersSent,
    /// After a rotation recorded its pending epoch (new holders being written).
    PendingEpochStored,
    /// After a rotation committed (old holders being told to delete).
    EpochCommitted,
    /// After a new session was recorded (its reply in flight).
    SessionRecorded,
    /// A random moment after the requests were sent.
    Anytime,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::StoreOrdersSent,
        Stage::PendingEpochStored,
        Stage::EpochCommitted,
        Stage::SessionRecorded,
        Stage::Anytime,
    ];

    /// Whether the stage is one of the new session's (the others are the rotation's).
    fn needs_creation(self) -> bool {
        matches!(self, Stage::StoreOrdersSent | Stage::SessionRecorded)
    }

    /// The log line that marks the stage.
    fn marker(self) -> Option<&'static str> {
        match self {
            Stage::StoreOrdersSent => Some("session dealt; sending store orders"),
            Stage::PendingEpochStored => Some("pending epoch stored"),
            Stage::EpochCommitted => Some("epoch committed"),
            Stage::SessionRecorded => Some("session stored"),
            Stage::Anytime => None,
        }
    }
}

/// Waits until the log grows a line containing `marker` after byte `from`.
async fn wait_for_marker(
    log: &std::path::Path,
    from: usize,
    marker: &str,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let text = std::fs::read(log).unwrap_or_default();
        if text.len() > from && String::from_utf8_lossy(&text[from..]).contains(marker) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_mid_distribution_and_rotation_loses_no_session_and_leaks_no_share() {
    let points: usize = std::env::var("ENTROSHARD_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("ENTROSHARD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!(
        "crash points: {points}, seed: {seed} (ENTROSHARD_CRASH_SEED={seed} replays the order)"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut coord = spawn_coordinator(512, 2);
    let mut peers = spawn_peers(&coord, &REGIONS).await;
    let a = Arc::new(authorised_requester(&coord).await);
    let policy = SessionPolicy {
        n: 3,
        k: 2,
        ttl_s: 3600,
        requesters: vec![],
        label: "crash".into(),
    };

    // Every acknowledged session and the key it rebuilt when acknowledged.
    let mut acked: BTreeMap<SessionId, SessionKey> = BTreeMap::new();
    let mut hit = BTreeMap::<String, usize>::new();
    for point in 0..points {
        wait_trusted(&coord, 4).await;
        if acked.is_empty() {
            let (session, grant) = create(&a, &policy)
                .await
                .expect("a session before any crash");
            acked.insert(session, a.fetch(&grant).await.unwrap());
        }
        let victims: Vec<SessionId> = acked.keys().copied().collect();
        let victim = victims[rng.random_range(..victims.len())];
        // Every stage in turn, from a random first one; the moment within it is random.
        let stage = Stage::ALL[(point + (seed % 5) as usize) % Stage::ALL.len()];
        let from = std::fs::metadata(coord.log_path()).unwrap().len() as usize;

        // A new session and a rotation of an acknowledged one, both in flight.
        let creating = {
            let (a, policy) = (a.clone(), policy.clone());
            tokio::spawn(async move { create(&a, &policy).await })
        };
        admin_async(coord.socket(), AdminCall::Rotate { session: victim }).await;
        let reached = match stage.marker() {
            // A creation comes once the pool has refilled after the last restart (its peers
            // re-attested, their sources audited again): on a busy machine that can take
            // minutes, so its stages wait as long as any other bound on a hang, and must come.
            Some(marker) if stage.needs_creation() => {
                let reached = wait_for_marker(&coord.log_path(), from, marker, DEADLINE).await;
                assert!(
                    reached,
                    "point {point}: no {marker:?} within {DEADLINE:?}: {}",
                    log_tail(&coord.log_path())
                );
                reached
            }
            // A rotation may be put off (a holder still owes a rolled-back epoch's deletion):
            // its stages are tried for a while and the point then kills where it is.
            Some(marker) => {
                wait_for_marker(&coord.log_path(), from, marker, Duration::from_secs(20)).await
            }
            None => {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
                true
            }
        };
        tokio::time::sleep(Duration::from_micros(rng.random_range(0..8000))).await;
        coord.proc.kill9();
        let label = format!("{stage:?}{}", if reached { "" } else { " (not reached)" });
        *hit.entry(label.clone()).or_default() += 1;

        // A creation acknowledged before the kill must rebuild its key from the holders alone.
        if let Ok(Ok(Ok((session, grant)))) = tokio::time::timeout(DEADLINE, creating).await {
            let key = a.fetch(&grant).await.unwrap_or_else(|e| {
                panic!(
                    "point {point} ({label}): acknowledged session {session} does not rebuild: {e}"
                )
            });
            acked.insert(session, key);
        }
        coord.proc = run_coordinator(coord.dir.path());

        // Every acknowledged session is still recorded; the rotated one still rebuilds its key.
        let recorded = sessions(&coord).await;
        for session in acked.keys() {
            assert!(
                recorded.iter().any(|r| &r.session == session),
                "point {point} ({label}): acknowledged session {session} lost"
            );
        }
        wait_trusted(&coord, 4).await;
        assert_eq!(
            fetch_fresh(&a, victim).await,
            acked[&victim],
            "point {point} ({label}): the rotated session rebuilds another key"
        );
        eprintln!(
            "point {point}: {label}; {} sessions acknowledged",
            acked.len()
        );
    }
    eprintln!("stages hit: {hit:?}");

    // Recovery completes: every share the holders keep is one the coordinator lists.
    let expected = wait_holdings_settle(&coord, &mut peers).await;
    for (session, key) in &acked {
        assert_eq!(
            &fetch_fresh(&a, *session).await,
            key,
            "session {session} after recovery"
        );
    }

    // Stop everything and compare each holder's store with the coordinator's database.
    coord.proc.kill9();
    assert_holdings_match(&coord, &mut peers, expected);
    // Not vacuous: every run kills the coordinator in the middle of a creation (both creation
    // stages are among any five points, and each is waited for until it comes).
    assert!(
        hit.keys()
            .any(|s| s == "StoreOrdersSent" || s == "SessionRecorded")
            || points < 4,
        "no point killed a creation in flight: {hit:?}"
    );
}
