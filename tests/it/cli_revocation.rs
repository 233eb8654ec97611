//! Operating a fleet through the CLI, as an operator types it, on a real coordinator with three
//! peers: a removed requester is refused its next ticket, an authorised one gets an expired
//! ticket renewed, a revoked session's holders delete its shares and `fetch` says why it
//! fails, and the audit trail lists every action in order, running and stopped. Holds the fleet
//! slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::*;
use common::*;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

fn entroshard_in(args: &[&str], dir_flag: &str, dir: &Path) -> Output {
    entroshard()
        .args(args)
        .arg(dir_flag)
        .arg(dir)
        .output()
        .unwrap()
}

/// When the ticket in `ticket` expires, from `session show`.
fn ticket_expiry_ms(ticket: &Path) -> u64 {
    let shown = run_ok(&["session", "show", ticket.to_str().unwrap()], &[]);
    let value = line_value(&shown, "expires ");
    let first = value.split_whitespace().next().unwrap();
    first
        .parse()
        .ok()
        // RFC 3339 as printed has whole seconds: the expiry lies within the second after.
        .or_else(|| coordinator::admin::rfc3339::parse_ms(first).map(|ms| ms + 999))
        .unwrap_or_else(|| panic!("no expiry in {shown}"))
}

/// Waits until the ticket in `ticket` has expired (a bound on a hang: its lifetime is 15 s).
fn wait_expired(ticket: &Path) {
    let expires = ticket_expiry_ms(ticket);
    let deadline = Instant::now() + DEADLINE;
    while coordinator::service::now_ms() <= expires {
        assert!(Instant::now() < deadline, "ticket never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn removed_requesters_and_revoked_sessions_are_refused_and_the_audit_trail_lists_it_all() {
    let mut coord = spawn_coordinator_with(512, 3, &["--ticket-ttl", "15"]);
    let c = coord.dir.path().to_path_buf();
    let mut peers = Vec::new();
    let mut peer_ids = Vec::new();
    for (i, (region, operator)) in [("eu", "a"), ("us", "b"), ("ap", "c")].iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        init_peer(dir.path(), &coord.addr, region, operator, 400 + i as u64);
        let node = enrol_peer(&coord, dir.path(), region, operator);
        peer_ids.push(peer::identity::peer_id(&node).unwrap().to_string());
        peers.push((spawn_peer(dir.path()), dir));
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = requester(&coord, a_dir.path());
    let b = requester(&coord, b_dir.path());
    for r in [&a, &b] {
        run_ok(
            &["coordinator", "requesters", "add", r],
            &[("--data-dir", &c)],
        );
    }

    // A makes a session naming B; both fetch the same key.
    let a_ticket = a_dir.path().join("ticket.cbor");
    let session = create_session(a_dir.path(), &a_ticket, 3, 2, &["--requester", &b]);
    let b_ticket = b_dir.path().join("ticket.cbor");
    session_ticket(b_dir.path(), &session, &b_ticket);
    let key = fetch_key(a_dir.path(), &a_ticket, "hex");
    assert_eq!(fetch_key(b_dir.path(), &b_ticket, "hex"), key);

    // The inventory, with PeerIds and RFC 3339 times.
    let listed = run_ok(
        &["coordinator", "requesters", "list"],
        &[("--data-dir", &c)],
    );
    assert!(listed.contains(&a) && listed.contains(&b), "{listed}");
    let listed = run_ok(&["coordinator", "peers", "list"], &[("--data-dir", &c)]);
    for p in &peer_ids {
        assert!(listed.contains(p.as_str()), "{p} not in {listed}");
    }
    let listed = run_ok(&["coordinator", "sessions", "list"], &[("--data-dir", &c)]);
    assert!(listed.contains(&session) && listed.contains(&a), "{listed}");
    let shown = run_ok(
        &["coordinator", "sessions", "show", &session],
        &[("--data-dir", &c)],
    );
    assert!(shown.contains("threshold  2 of 3"), "{shown}");
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("holder #")).count(),
        3,
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l.starts_with("expires    20")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .filter(|l| l.starts_with("holder #"))
            .all(|l| l.contains(" 12D3KooW")),
        "{shown}"
    );

    // B is removed: its next ticket request is refused by name; once its ticket expires its
    // fetch fails the same way.
    let out = entroshard_in(
        &["coordinator", "requesters", "remove", &b],
        "--data-dir",
        &c,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = entroshard_in(
        &[
            "session",
            "ticket",
            &session,
            "-o",
            b_ticket.to_str().unwrap(),
        ],
        "--data-dir",
        b_dir.path(),
    );
    let refused = format!("the coordinator refuses requester {b} a ticket for session {session}");
    assert_refused(&out, &[&refused, "removed"]);
    wait_expired(&b_ticket);
    let out = fetch_output(b_dir.path(), &b_ticket);
    assert_refused(&out, &[&refused]);
    assert!(stderr(&out).contains("expired at 20"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    // A is still authorised: its expired ticket is renewed and the key is the same.
    wait_expired(&a_ticket);
    let old_expiry = ticket_expiry_ms(&a_ticket);
    let out = fetch_output(a_dir.path(), &a_ticket);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("asking the coordinator for a new one"),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.stdout, key);
    assert!(
        ticket_expiry_ms(&a_ticket) > old_expiry,
        "the renewed ticket was not written back"
    );

    // The session is revoked; a second revoke finds nothing.
    let out = entroshard_in(
        &["coordinator", "sessions", "revoke", &session],
        "--data-dir",
        &c,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("revoked; 3 holders"),
        "{}",
        stdout(&out)
    );
    let out = entroshard_in(
        &["coordinator", "sessions", "revoke", &session],
        "--data-dir",
        &c,
    );
    assert_refused(&out, &[&format!("session {session} not found")]);
    // A's ticket is still within its lifetime: the fetch fails once the holders have deleted
    // their shares (delivered by the next upkeep sweep), then the coordinator knows no session.
    let deadline = Instant::now() + DEADLINE;
    let out = loop {
        let out = fetch_output(a_dir.path(), &a_ticket);
        if !out.status.success() {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "the revoked session's key is still served"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_refused(
        &out,
        &[&format!(
            "the coordinator has no session {session}: it was revoked or has expired"
        )],
    );

    // The audit trail, in order, over the socket and from the stopped coordinator's database.
    let expected = [
        ("peers enrol", peer_ids[0].as_str()),
        ("peers enrol", peer_ids[2].as_str()),
        ("requesters add", a.as_str()),
        ("requesters add", b.as_str()),
        ("session create", session.as_str()),
        ("ticket", session.as_str()),
        ("requesters remove", b.as_str()),
        ("ticket", session.as_str()),
        ("sessions revoke", session.as_str()),
    ];
    let running = run_ok(&["coordinator", "audit"], &[("--data-dir", &c)]);
    assert_in_order(&running, &expected);
    assert!(running.contains(&format!("requester {a}")), "{running}");
    assert!(
        running.contains("operator (admin socket, uid "),
        "{running}"
    );
    let none = run_ok(
        &["coordinator", "audit", "--since", "2999-01-01T00:00:00Z"],
        &[("--data-dir", &c)],
    );
    assert!(none.is_empty(), "{none}");
    coord.proc.kill9();
    let _ = std::fs::remove_file(coord.socket());
    let stopped = run_ok(
        &["coordinator", "audit", "--since", "1h"],
        &[("--data-dir", &c)],
    );
    assert_eq!(stopped, running);
    let listed = run_ok(
        &["coordinator", "requesters", "list"],
        &[("--data-dir", &c)],
    );
    let b_line = listed.lines().find(|l| l.starts_with(b.as_str())).unwrap();
    assert_eq!(
        b_line.split_whitespace().collect::<Vec<_>>()[1..3],
        ["no", "yes"],
        "{listed}"
    );
    // Quarantines live in the running coordinator only.
    let out = entroshard_in(
        &["coordinator", "peers", "unquarantine", &peer_ids[0]],
        "--data-dir",
        &c,
    );
    assert_refused(&out, &["quarantines live in the running coordinator"]);
}

/// Fails unless each (action, subject) of `expected` is on a line of `trail`, in that order.
fn assert_in_order(trail: &str, expected: &[(&str, &str)]) {
    let mut lines = trail.lines();
    for (action, subject) in expected {
        let needle = format!("  {action}  {subject}");
        assert!(
            lines.any(|l| l.contains(&needle)),
            "no {needle:?} after the earlier entries in:\n{trail}"
        );
    }
}

/// A valid PeerId the stopped-coordinator tests add as a requester.
const KNOWN_REQUESTER: &str = "12D3KooWLbwY9UYf7ZXkU9NxYW7reLkwtWfk3PUY4q88fXQZBB5X";

#[test]
fn unknown_ids_are_not_found_exit_1_and_leave_a_stopped_coordinator_as_it_was() {
    let (_tmp, c) = stopped_coordinator();
    let known = KNOWN_REQUESTER;
    let stranger = "12D3KooWNRx3CGCQoKY4bvo8rYczsQ9Y9pcjzcjK7MNCY9ya1yhv";
    run_ok(
        &["coordinator", "requesters", "add", known],
        &[("--data-dir", &c)],
    );
    let snapshot = || {
        ["audit", "allowed"]
            .iter()
            .map(|cmd| run_ok(&["coordinator", cmd], &[("--data-dir", &c)]))
            .chain(
                [
                    ["requesters", "list"],
                    ["peers", "list"],
                    ["sessions", "list"],
                ]
                .iter()
                .map(|args| run_ok(&["coordinator", args[0], args[1]], &[("--data-dir", &c)])),
            )
            .collect::<Vec<_>>()
    };
    let before = snapshot();
    assert!(
        before[0].contains(&format!("requesters add  {known}")),
        "{}",
        before[0]
    );

    let session = "00112233445566778899aabbccddeeff";
    let digest = "ab".repeat(32);
    let cases: [(&[&str], String); 8] = [
        (
            &["requesters", "remove", stranger],
            format!("requester {stranger} not found"),
        ),
        (
            &["peers", "remove", stranger],
            format!("peer {stranger} not found"),
        ),
        (
            &["peers", "unquarantine", stranger],
            format!("peer {stranger} not found"),
        ),
        (&["disallow", &digest], format!("binary {digest} not found")),
        (
            &["sessions", "show", session],
            format!("session {session} not found"),
        ),
        (
            &["sessions", "revoke", session],
            format!("session {session} not found"),
        ),
        (
            &["requesters", "remove", "garbage"],
            "\"garbage\" is not a PeerId".into(),
        ),
        (
            &["audit", "--since", "yesterday"],
            "--since \"yesterday\" is neither an RFC 3339 time".into(),
        ),
    ];
    for (args, message) in &cases {
        let mut full = vec!["coordinator"];
        full.extend_from_slice(args);
        let out = entroshard_in(&full, "--data-dir", &c);
        assert_refused(&out, &[message]);
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }
    assert_eq!(snapshot(), before, "a refused command changed the database");

    // Removing twice is not an error; the trail has both in order, with RFC 3339 times.
    run_ok(
        &["coordinator", "requesters", "remove", known],
        &[("--data-dir", &c)],
    );
    run_ok(
        &["coordinator", "requesters", "remove", known],
        &[("--data-dir", &c)],
    );
    let trail = run_ok(&["coordinator", "audit"], &[("--data-dir", &c)]);
    assert_in_order(
        &trail,
        &[
            ("requesters add", known),
            ("requesters remove", known),
            ("requesters remove", known),
        ],
    );
    let time = trail.split_whitespace().nth(1).unwrap();
    assert!(
        coordinator::admin::rfc3339::parse_ms(time).is_some(),
        "{time} in {trail}"
    );
}

#[test]
fn admin_commands_find_the_data_directory_in_entroshard_data_dir() {
    let (tmp, c) = stopped_coordinator();
    let known = KNOWN_REQUESTER;
    let with_env = |args: &[&str], dir: &Path| {
        entroshard()
            .current_dir(tmp.path())
            .env("ENTROSHARD_DATA_DIR", dir)
            .args(args)
            .output()
            .unwrap()
    };
    let added = with_env(&["coordinator", "requesters", "add", known], &c);
    assert!(added.status.success(), "{}", stderr(&added));
    let listed = with_env(&["coordinator", "requesters", "list"], &c);
    assert!(stdout(&listed).contains(known), "{}", stdout(&listed));
    // `--data-dir` wins over the variable; a variable naming nothing is refused by name.
    let flag = run_ok(
        &["coordinator", "requesters", "list"],
        &[("--data-dir", &c)],
    );
    assert!(flag.contains(known), "{flag}");
    let missing = tmp.path().join("missing");
    let refused = with_env(&["coordinator", "requesters", "list"], &missing);
    assert_refused(&refused, &[&missing.display().to_string()]);
    assert!(!missing.exists(), "nothing is created");
}
