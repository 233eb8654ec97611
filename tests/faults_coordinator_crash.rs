//! The coordinator SIGKILLed at many points while it distributes new sessions and rotates old
//! ones, then restarted: no acknowledged session is lost (each still rebuilds the key it had), old
//! holders keep epoch e until the commit (the session stays fetchable through every crash), and
//! once recovery completes no holder keeps a share the coordinator does not list: not of a
//! rolled-back epoch, not of a superseded one, not of a session that was never acknowledged.
//!
//! Points: `ENTROSHARD_CRASH_POINTS` (default 20; `scripts/crash-points.sh 100` for a long run).
//! Each point waits for one stage in the coordinator's log (store orders of a new session sent,
//! a rotation's pending epoch stored, an epoch committed, a session recorded) or for a random
//! delay, adds a random few milliseconds, and kills. The seed is printed; set
//! `ENTROSHARD_CRASH_SEED` to replay an order of points.

mod common;

use common::*;
use coordinator::admin::{AdminAnswer, AdminCall, PeerLine, call};
use coordinator::db::{CoordinatorDb, SessionRecord};
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionKey;
use protocols::wire::{Refusal, SessionPolicy};
use rand::{RngExt, SeedableRng};
use requester::{Requester, RequesterError};
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

struct TestPeer {
    dir: tempfile::TempDir,
    proc: Proc,
    node: NodeId,
    metrics: String,
}

async fn admin_async(coord_socket: std::path::PathBuf, what: AdminCall) -> AdminAnswer {
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(call(&coord_socket, &what))
    })
    .await
    .unwrap()
    .unwrap()
}

async fn sessions(coord: &CoordinatorProc) -> Vec<SessionRecord> {
    match admin_async(coord.socket(), AdminCall::Sessions).await {
        AdminAnswer::Sessions(s) => s,
        other => panic!("{other:?}"),
    }
}

async fn status(coord: &CoordinatorProc) -> Vec<PeerLine> {
    match admin_async(coord.socket(), AdminCall::Status).await {
        AdminAnswer::Status(s) => s,
        other => panic!("{other:?}"),
    }
}

/// Waits until at least `want` peers are attested and heartbeating to the (restarted) coordinator.
async fn wait_trusted(coord: &CoordinatorProc, want: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = status(coord)
            .await
            .iter()
            .filter(|l| l.trusted && l.heartbeat_age_s.is_some_and(|a| a < 5))
            .count();
        if ready >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready} peers trusted after a restart; coordinator log:\n{}",
            log_tail(&coord.log_path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn log_tail(path: &std::path::Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// `create_session`, retried while the pool is not ready; `Err` when the coordinator went away.
async fn create(
    a: &Requester,
    policy: &SessionPolicy,
) -> Result<(SessionId, protocols::ticket::TicketGrant), RequesterError> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match a.create_session(policy.clone()).await {
            Ok(created) => return Ok((created.session, created.grant)),
            Err(RequesterError::Refused(Refusal::NotReady(_))) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(150)).await
            }
            Err(e) => return Err(e),
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

/// Fetches `session` with a fresh ticket, retrying while holders' addresses are not yet known to
/// the restarted coordinator (a ticket names holders by the addresses in their heartbeats).
async fn fetch_fresh(a: &Requester, session: SessionId) -> SessionKey {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let attempt = match a.ticket(session).await {
            Ok(grant) => a.fetch(&grant).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(key) => return key,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(%session, error = %e, "fetch not yet possible");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("acknowledged session {session} no longer rebuilds its key: {e}"),
        }
    }
}

/// The holder's `entroshard_shares_held` gauge, or why it could not be read.
fn shares_held(p: &mut TestPeer) -> Result<u64, String> {
    if let Some(status) = p.proc.0.try_wait().unwrap() {
        return Err(format!(
            "peer {} exited ({status}): {}",
            p.node.short(),
            log_tail(&p.dir.path().join("peer.log"))
        ));
    }
    let body = try_http_get(&p.metrics, "/metrics")
        .map_err(|e| format!("metrics of {} on {}: {e}", p.node.short(), p.metrics))?;
    body.lines()
        .find_map(|l| l.strip_prefix("entroshard_shares_held "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no shares_held gauge in {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_mid_distribution_and_rotation_loses_no_session_and_leaks_no_share() {
    let points: usize = std::env::var("ENTROSHARD_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("ENTROSHARD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!(
        "crash points: {points}, seed: {seed} (ENTROSHARD_CRASH_SEED={seed} replays the order)"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut coord = spawn_coordinator(512, 2);
    let mut peers = Vec::new();
    for (i, region) in REGIONS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = format!("127.0.0.1:{}", free_port());
        let operator = format!("op{i}");
        init_peer_with(
            dir.path(),
            &coord.addr,
            region,
            &operator,
            500 + i as u64 * 10,
            &["--metrics", &metrics],
        );
        let node = peer::identity::read_key(&dir.path().join("identity.key"))
            .unwrap()
            .node_id();
        admin_async(
            coord.socket(),
            AdminCall::Enrol {
                node,
                region: region.to_string(),
                operator,
            },
        )
        .await;
        let proc = spawn_peer(dir.path());
        peers.push(TestPeer {
            dir,
            proc,
            node,
            metrics,
        });
    }
    let requester_key = NodeKey::generate(&mut rand::rng());
    admin_async(
        coord.socket(),
        AdminCall::AddRequester {
            node: requester_key.node_id(),
        },
    )
    .await;
    let a = Arc::new(
        Requester::connect(&requester_key, coord.addr.clone())
            .await
            .unwrap(),
    );
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
    let expected: u64 = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let want: u64 = sessions(&coord)
                .await
                .iter()
                .map(|s| s.holders.len() as u64)
                .sum();
            let mut held = 0;
            for p in &mut peers {
                match shares_held(p) {
                    Ok(n) => held += n,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "{e}");
                        eprintln!("metrics not read: {e}");
                        held = u64::MAX;
                        break;
                    }
                }
            }
            if held == want {
                break want;
            }
            if Instant::now() > deadline {
                break want;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    for (session, key) in &acked {
        assert_eq!(
            &fetch_fresh(&a, *session).await,
            key,
            "session {session} after recovery"
        );
    }

    // Stop everything and compare each holder's store with the coordinator's database.
    coord.proc.kill9();
    let mut stored_total = 0u64;
    let db = CoordinatorDb::open(&coord.dir.path().join("coordinator.redb")).unwrap();
    let records = db.sessions().unwrap();
    let pending = db.pending_epochs().unwrap();
    let mut leaks = Vec::new();
    for p in &mut peers {
        p.proc.kill9();
        let store = peer::store::ShareStore::open(&p.dir.path().join("shares.redb"), 4096).unwrap();
        for info in store.list().unwrap() {
            stored_total += 1;
            let listed = records.iter().any(|r| {
                r.session == info.session
                    && r.epoch == info.epoch
                    && r.holders
                        .iter()
                        .any(|h| h.node == p.node && h.index == info.index)
            });
            if !listed {
                leaks.push(format!(
                    "holder {} keeps session {} epoch {} index {} (coordinator: {:?})",
                    p.node.short(),
                    info.session,
                    info.epoch,
                    info.index,
                    records.iter().find(|r| r.session == info.session).map(|r| (
                        r.epoch,
                        r.holders.iter().map(|h| h.node.short()).collect::<Vec<_>>()
                    ))
                ));
            }
        }
    }
    assert!(
        pending.is_empty(),
        "rotations left pending after recovery: {pending:?}"
    );
    assert!(
        leaks.is_empty(),
        "{} shares held that the coordinator does not list (of {stored_total}; {expected} expected):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    assert_eq!(stored_total, expected, "every listed share is held");
    assert!(acked.len() >= 2, "some sessions were acknowledged");
}
