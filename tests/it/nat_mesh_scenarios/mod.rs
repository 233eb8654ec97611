//! Failure scenarios in the NAT testbed (tests/common/testbed.rs): the coordinator killed while
//! requesters behind NAT fetch with live tickets, a relay killed while holders reserve on it, a
//! device cut off from the coordinator credited through the gossip mesh, each on its own testbed.
//! The region scenario (a whole region cut off for a minute) is in `alongside::nat_region_cut`, so
//! that it starts first (decision 0073).
//! AutoNAT's verdicts are checked in tests/it/nat_mesh.rs.
//!
//! Needs root and `ip netns`; without them each test says why and passes, except under `CI=1`,
//! where it fails. Run under the fleet lock:
//! `flock /tmp/entroshard-fleet.lock cargo test --test it nat_mesh_scenarios:: -- --nocapture --test-threads 1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::mesh::*;
use common::testbed::*;
use libp2p::PeerId;
use protocols::ticket::TicketHolder;

/// Fetches each a new requester process, then a repeated fetch in one process.
const FETCHES: usize = 8;
const REPEATED: usize = 10;

/// Whether every NATed peer's log says it holds a reservation on `relay`.
fn all_natted_reserved_on(mesh: &Mesh, relay: &PeerId) -> bool {
    let line = format!("relay reservation accepted relay={relay}");
    mesh.peers
        .iter()
        .filter(|p| p.spec.natted)
        .all(|p| mesh.peer_log(p.spec.ns).contains(&line))
}

/// Whether `holder` has a relayed address through `relay`.
fn through(holder: &TicketHolder, relay: &PeerId) -> bool {
    let via = format!("/p2p/{relay}/p2p-circuit");
    holder.addrs.iter().any(|a| a.contains(&via))
}

/// `FETCHES` cold fetches and one repeated fetch of `REPEATED`: the fetches that succeeded, of
/// how many, and their latencies by path (printed under `what`).
fn fetches(mesh: &Mesh, ticket_path: &std::path::Path, what: &str) -> (usize, usize) {
    let (mut ok, mut keys) = (0, std::collections::BTreeSet::new());
    let mut cold = Latencies::default();
    for i in 0..FETCHES {
        let f = mesh.fetch(ticket_path);
        eprintln!("{what}: fetch {}: {}", i + 1, f.summary());
        cold.add(&f);
        if f.ok && f.secs > 5.0 && std::env::var_os("NAT_MESH_FETCH_LOG").is_some() {
            eprintln!("{what}: slow fetch {}'s log:\n{}", i + 1, f.stderr);
        }
        if f.ok {
            ok += 1;
            keys.insert(f.output);
        }
    }
    let (repeated, failed) = mesh.fetch_repeated(ticket_path, REPEATED);
    if let Some(err) = &failed {
        eprintln!("{what}: repeated fetch FAILED: {err}");
    }
    let mut warm = Latencies::default();
    for (i, f) in repeated.iter().enumerate() {
        if i > 0 {
            warm.add(f);
        }
    }
    ok += repeated.len();
    let (punched, punch_failed) = mesh.hole_punches();
    eprintln!(
        "{what}: {ok} of {} fetches succeeded ({} keys); {}; {}; hole punches with the requester logged by holders so far: {punched} succeeded, {punch_failed} failed",
        FETCHES + REPEATED,
        keys.len(),
        cold.report("a new process per fetch"),
        warm.report("one process, fetches 2..")
    );
    for (nat, punched, failed) in mesh.hole_punches_by_nat() {
        eprintln!(
            "{what}: hole punches with holders behind {nat} NAT: {punched} succeeded, {failed} failed"
        );
    }
    assert!(keys.len() <= 1, "fetches rebuilt different keys: {keys:?}");
    (ok, FETCHES + REPEATED)
}

/// A session placed on NATed holders each reachable through one of `relays`, and one fetch of it
/// that must succeed (`when` names the moment in the failure message); returns its ticket's path.
fn session_through(mesh: &Mesh, relays: &[PeerId], when: &str) -> std::path::PathBuf {
    let ticket_path = mesh.req_dir.path().join("ticket.cbor");
    mesh.session(&ticket_path, |t| {
        mesh.natted_holders(t)
            && t.holders
                .iter()
                .all(|h| relays.iter().any(|r| through(h, r)))
    });
    let first = mesh.fetch(&ticket_path);
    assert!(first.ok, "fetch {when} failed: {}", first.output);
    ticket_path
}

#[test]
fn with_the_coordinator_killed_requesters_behind_nat_keep_fetching_with_live_tickets() {
    if !testbed_runs_here() {
        return;
    }
    let mut mesh = Mesh::start(&[]);
    let relays = [mesh.peer("es-relay").pid, mesh.peer("es-relay2").pid];
    let relay2 = relays[1];
    // A session on NATed holders, each reachable through a relay peer, not only through the
    // coordinator.
    let ticket_path = session_through(&mesh, &relays, "with the coordinator up");

    mesh.kill_coordinator();
    eprintln!("coordinator killed (SIGKILL)");
    let (ok, of) = fetches(&mesh, &ticket_path, "coordinator down");
    // The reservations the coordinator held move to the other relay peer.
    let secs = mesh.wait_for("NATed peers reserving on the second relay", |m| {
        all_natted_reserved_on(m, &relay2)
    });
    eprintln!(
        "coordinator down: every NATed peer held a reservation on the second relay {secs:.1} s after the fetches"
    );
    assert_eq!(
        ok,
        of,
        "fetches failed with the coordinator down\n{}",
        mesh.logs()
    );
}

/// Each NATed peer holds two reservations among three relays (the coordinator and the two relay
/// peers), on whichever answered first, so which relay peer they share is not fixed: the one killed
/// is the one most holders of a session on NATed holders are reachable through.
#[test]
fn with_a_relay_killed_holders_reserve_on_the_next_and_fetches_go_on() {
    if !testbed_runs_here() {
        return;
    }
    let mut mesh = Mesh::start(&[]);
    let relays = [mesh.peer("es-relay").pid, mesh.peer("es-relay2").pid];
    let ticket_path = mesh.req_dir.path().join("ticket.cbor");
    let (ticket, _) = mesh.session(&ticket_path, |t| {
        mesh.natted_holders(t)
            && t.holders
                .iter()
                .any(|h| relays.iter().any(|r| through(h, r)))
    });
    let on = |r: &PeerId| ticket.holders.iter().filter(|h| through(h, r)).count();
    let (dead_ns, dead) = if on(&relays[0]) >= on(&relays[1]) {
        ("es-relay", relays[0])
    } else {
        ("es-relay2", relays[1])
    };
    let first = mesh.fetch(&ticket_path);
    assert!(
        first.ok,
        "fetch before the relay died failed: {}",
        first.output
    );
    // The NATed peers that held a reservation on it, and how far their logs went at the kill.
    let reserved = format!("relay reservation accepted relay={dead}");
    let holding: Vec<(&'static str, usize)> = mesh
        .peers
        .iter()
        .filter(|p| p.spec.natted)
        .map(|p| (p.spec.ns, mesh.peer_log(p.spec.ns)))
        .filter(|(_, log)| log.contains(&reserved))
        .map(|(ns, log)| (ns, log.len()))
        .collect();

    mesh.kill_peer(dead_ns);
    let killed = std::time::Instant::now();
    eprintln!(
        "relay peer {dead_ns} killed (SIGKILL): {} of the session's holders and {} NATed peers reserved on it",
        on(&dead),
        holding.len()
    );
    // Holders keep two reservations: the dead relay's place goes to another.
    mesh.wait_for("NATed peers reserving on another relay", |m| {
        holding.iter().all(|(ns, from)| {
            let log = m.peer_log(ns);
            log.as_bytes().get(*from..).is_some_and(|after| {
                String::from_utf8_lossy(after).contains("relay reservation accepted")
            })
        })
    });
    eprintln!(
        "relay down: every NATed peer that reserved on it held another reservation {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    // The ticket in hand still works (through the holders' other relay) ...
    let (ok, of) = fetches(&mesh, &ticket_path, "relay down, old ticket");
    assert_eq!(
        ok,
        of,
        "fetches with the old ticket failed\n{}",
        mesh.logs()
    );
    // ... and new tickets carry addresses through live relays only, through which fetches
    // succeed.
    let fresh = mesh.req_dir.path().join("fresh.cbor");
    mesh.session(&fresh, |t| {
        mesh.natted_holders(t)
            && t.holders
                .iter()
                .all(|h| h.addrs.iter().any(|a| a.contains("p2p-circuit")) && !through(h, &dead))
    });
    let (ok, of) = fetches(&mesh, &fresh, "relay down, new ticket");
    assert_eq!(ok, of, "fetches with a new ticket failed\n{}", mesh.logs());
}

#[test]
fn a_device_cut_off_from_the_coordinator_is_credited_through_the_gossip_mesh() {
    if !testbed_runs_here() {
        return;
    }
    // Home 1's router drops everything from its first peer to the coordinator, from the start.
    let (router, device, coordinator) = ("es-h1-rt", "10.1.0.11", "100.64.1.2");
    let mesh = Mesh::start_with(&[], || cut(router, device, coordinator));
    let pid = mesh.peer("es-h1-p1").pid;
    // Its neighbour, not cut, for comparison.
    let neighbour = mesh.peer("es-h1-p2").pid;
    let credited = |m: &Mesh, peer: &libp2p::PeerId| -> Option<(u64, String)> {
        let row = m.status_row(peer)?;
        let bits: u64 = row.get(7)?.parse().ok()?;
        let age = row.get(6)?.clone();
        (bits > 0 && age != "-").then_some((bits, age))
    };
    let neighbour_secs = mesh.wait_for("the neighbour's contributions credited", |m| {
        credited(m, &neighbour).is_some()
    });
    let secs = mesh.wait_for("the cut-off device's contributions credited", |m| {
        credited(m, &pid).is_some()
    });
    let (bits, age) = credited(&mesh, &pid).unwrap();
    let dropped = dropped_by_cut(router);
    eprintln!(
        "cut off from the coordinator: {pid} credited {bits} bits (last heartbeat {age} ago) {:.1} s after the peers started (its neighbour, not cut: {neighbour_secs:.1} s); the cut dropped {dropped} packets",
        neighbour_secs + secs
    );
    assert!(
        dropped > 0,
        "the device never tried the coordinator directly: the cut proves nothing"
    );
    // It never held a reservation on the coordinator: it had no connection to it.
    let reserved_on_coordinator = format!("relay reservation accepted relay={}", mesh.coord_pid);
    assert!(
        !mesh.peer_log("es-h1-p1").contains(&reserved_on_coordinator),
        "the cut-off device reached the coordinator\n{}",
        mesh.logs()
    );
}
