//! A coordinator and device peers as real processes, seen through the admin socket, the
//! requester library, the peers' metrics and, once stopped, their stores.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::*;
use coordinator::admin::{AdminAnswer, AdminCall, PeerLine, call};
use coordinator::db::{CoordinatorDb, SessionRecord};
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionKey;
use protocols::ticket::TicketGrant;
use protocols::wire::{Refusal, SessionPolicy};
use requester::{Requester, RequesterError};
use tokio::time::Instant;

/// A device peer process with its data directory and metrics address.
pub struct TestPeer {
    /// Data directory.
    pub dir: tempfile::TempDir,
    /// The process.
    pub proc: Proc,
    /// Its id.
    pub node: NodeId,
    /// Its metrics endpoint.
    pub metrics: String,
}

pub async fn admin_async(coord_socket: std::path::PathBuf, what: AdminCall) -> AdminAnswer {
    let socket = coord_socket.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(call(&coord_socket, &what))
    })
    .await
    .unwrap();
    answer.unwrap_or_else(|e| {
        // Say why: the end of the coordinator's log next to its socket.
        let log = socket.with_file_name("coordinator.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "admin call on {} failed: {e}\nlast lines of {}:\n{}",
            socket.display(),
            log.display(),
            tail.join("\n")
        )
    })
}

pub async fn sessions(coord: &CoordinatorProc) -> Vec<SessionRecord> {
    match admin_async(coord.socket(), AdminCall::Sessions).await {
        AdminAnswer::Sessions(s) => s,
        other => panic!("{other:?}"),
    }
}

pub async fn status(coord: &CoordinatorProc) -> Vec<PeerLine> {
    match admin_async(coord.socket(), AdminCall::Status).await {
        AdminAnswer::Status(s) => s,
        other => panic!("{other:?}"),
    }
}

/// Waits until at least `want` peers are attested and heartbeating to the (restarted) coordinator.
pub async fn wait_trusted(coord: &CoordinatorProc, want: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lines = status(coord).await;
        let is_ready = |l: &PeerLine| l.trusted && l.heartbeat_age_s.is_some_and(|a| a < 5);
        let ready = lines.iter().filter(|l| is_ready(l)).count();
        if ready >= want {
            fleet_started();
            return;
        }
        let waiting: Vec<String> = lines
            .iter()
            .filter(|l| !is_ready(l))
            .map(|l| {
                format!(
                    "{} trusted={} quarantine={:?} heartbeat_age_s={:?} refusals={:?}",
                    l.node.short(),
                    l.trusted,
                    l.quarantine,
                    l.heartbeat_age_s,
                    l.refusals
                )
            })
            .collect();
        assert!(
            Instant::now() < deadline,
            "only {ready} peers trusted after a restart; not ready:\n{}\ncoordinator log:\n{}",
            waiting.join("\n"),
            log_tail(&coord.log_path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn log_tail(path: &std::path::Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// `create_session`, retried while the pool is not ready; `Err` when the coordinator went away.
pub async fn create(
    a: &Requester,
    policy: &SessionPolicy,
) -> Result<(SessionId, TicketGrant), RequesterError> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match a.create_session(policy.clone()).await {
            Ok(created) => {
                fleet_started();
                return Ok((created.session, created.grant));
            }
            Err(RequesterError::Refused(Refusal::NotReady(_))) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(150)).await
            }
            Err(e) => return Err(e),
        }
    }
}

/// Initialises, enrols and starts one peer per region (operators all distinct), with metrics.
pub async fn spawn_peers(coord: &CoordinatorProc, regions: &[&str]) -> Vec<TestPeer> {
    let mut peers = Vec::new();
    for (i, region) in regions.iter().enumerate() {
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
    peers
}

/// A requester authorised on the coordinator.
pub async fn authorised_requester(coord: &CoordinatorProc) -> Requester {
    let key = protocols::identity::NodeKey::generate(&mut rand::rng());
    admin_async(
        coord.socket(),
        AdminCall::AddRequester {
            node: key.node_id(),
        },
    )
    .await;
    Requester::connect(&key, coord.addr.clone()).await.unwrap()
}

/// Fetches `session` with a fresh ticket, retrying while holders' addresses are not yet known to
/// the restarted coordinator (a ticket names holders by the addresses in their heartbeats).
pub async fn fetch_fresh(a: &Requester, session: SessionId) -> SessionKey {
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
pub fn shares_held(p: &mut TestPeer) -> Result<u64, String> {
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

/// Waits until the holders' `shares_held` gauges add up to the shares the coordinator lists
/// (recovery completed); returns that number either way, for [`assert_holdings_match`].
pub async fn wait_holdings_settle(coord: &CoordinatorProc, peers: &mut [TestPeer]) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let want: u64 = sessions(coord)
            .await
            .iter()
            .map(|s| s.holders.len() as u64)
            .sum();
        let mut held = 0;
        for p in peers.iter_mut() {
            match shares_held(p) {
                Ok(n) => held += n,
                Err(e) => {
                    assert!(Instant::now() < deadline, "{e}");
                    held = u64::MAX;
                    break;
                }
            }
        }
        if held == want || Instant::now() > deadline {
            return want;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// With the coordinator stopped: kills every peer and checks that each holds exactly the shares
/// the coordinator's database lists (current epoch, right holder and index), `expected` in all,
/// and that no epoch is left pending.
pub fn assert_holdings_match(coord: &CoordinatorProc, peers: &mut [TestPeer], expected: u64) {
    let mut stored_total = 0u64;
    let db = CoordinatorDb::open(&coord.dir.path().join("coordinator.redb")).unwrap();
    let records = db.sessions().unwrap();
    let pending = db.pending_epochs().unwrap();
    let mut leaks = Vec::new();
    for p in peers.iter_mut() {
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
}
