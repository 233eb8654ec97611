//! Backup and recovery through the CLI, as an operator types it (decision 0046): a running
//! coordinator with three peers is backed up, its data directory destroyed and restored, and
//! the restored coordinator serves the old key and rotates its master key (holds the fleet
//! slot); a stopped coordinator is backed up, and every refusal — wrong passphrase, altered or
//! truncated file, a directory in use, an existing file — writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "a long enough backup passphrase";

fn coordinator_cmd(args: &[&str], extra: &[(&str, &Path)]) -> Output {
    let mut cmd = entroshard();
    cmd.arg("coordinator").args(args);
    for (flag, path) in extra {
        cmd.arg(flag).arg(path);
    }
    cmd.output().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The file names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A passphrase file in `dir`.
fn passphrase_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    path
}

/// `coordinator master-key`'s output.
fn master_key(dir: &Path) -> String {
    run_ok(&["coordinator", "master-key"], &[("--data-dir", dir)])
}

#[test]
fn a_destroyed_coordinator_restored_from_a_backup_serves_the_old_key_and_rotates_its_master_key() {
    let mut coord = spawn_coordinator(512, 3);
    let c = coord.dir.path().to_path_buf();
    let mut peers = Vec::new();
    for (i, (region, operator)) in [("eu", "a"), ("us", "b"), ("ap", "c")].iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        init_peer(dir.path(), &coord.addr, region, operator, 600 + i as u64);
        enrol_peer(&coord, dir.path(), region, operator);
        peers.push((spawn_peer(dir.path()), dir));
    }
    let requester_dir = tempfile::tempdir().unwrap();
    let r = requester_dir.path();
    let pid = requester(&coord, r);
    run_ok(
        &["coordinator", "requesters", "add", &pid],
        &[("--data-dir", &c)],
    );
    let ticket = r.join("ticket.cbor");
    let session = create_session(r, &ticket, 3, 2, &[]);
    let key = fetch_key(r, &ticket, "hex");
    assert_eq!(mode(&c.join("master.key")), 0o600);
    let shown = master_key(&c);
    let old_id = line_value(&shown, "master key ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(old_id.len(), 16, "{shown}");

    // Backed up while it runs: the snapshot comes over the admin socket.
    let keep = tempfile::tempdir().unwrap();
    let pass = passphrase_file(keep.path(), "pass", PASSPHRASE);
    let file = keep.path().join("coordinator.esb");
    let out = coordinator_cmd(
        &["backup", file.to_str().unwrap()],
        &[("--data-dir", &c), ("--passphrase-file", &pass)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains(&format!("master key      {old_id}")),
        "{report}"
    );
    assert!(report.contains("1 sessions, 3 enrolled peers"), "{report}");
    assert_eq!(mode(&file), 0o600);
    let trail = run_ok(&["coordinator", "audit"], &[("--data-dir", &c)]);
    assert!(trail.contains("  backup  coordinator.redb"), "{trail}");

    // The data directory is lost; the restore rebuilds it where it was.
    coord.proc.kill9();
    std::fs::remove_dir_all(&c).unwrap();
    let out = coordinator_cmd(
        &["restore", file.to_str().unwrap()],
        &[("--data-dir", &c), ("--passphrase-file", &pass)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("master key      {old_id}")));
    for name in ["identity.key", "master.key", "coordinator.redb"] {
        assert_eq!(mode(&c.join(name)), 0o600, "{name}");
    }
    assert_eq!(
        listing(&c),
        [
            "coordinator.redb",
            "coordinator.toml",
            "identity.key",
            "master.key"
        ]
    );
    coord.proc = run_coordinator(&c);

    // The restored coordinator issues a new ticket; the holders serve the old shares on it.
    let fresh = r.join("fresh.cbor");
    let key_again = fetch_with_fresh_ticket(r, &session, &fresh);
    assert_eq!(
        key_again, key,
        "the restored coordinator serves another key"
    );

    // A new master key: the session is boxed to its holders, under no master key (decision
    // 0053), so nothing is re-sealed and the old key is erased at once.
    let out = coordinator_cmd(&["rotate-master-key"], &[("--data-dir", &c)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new_id = line_value(&stdout(&out), "master key ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_ne!(new_id, old_id);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let shown = master_key(&c);
        if !shown.contains("retiring") {
            assert!(shown.contains(&new_id), "{shown}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old master key was never erased: {shown}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let shown = run_ok(
        &["coordinator", "sessions", "show", &session],
        &[("--data-dir", &c)],
    );
    assert!(
        shown.contains("sealed     boxed to each holder's share key"),
        "{shown}"
    );
    assert!(!shown.contains("under master key"), "{shown}");
    assert!(shown.contains("(0 rotations)"), "{shown}");
    assert_eq!(fetch_with_fresh_ticket(r, &session, &fresh), key);
    // Rotated by hand, so that the backup below is older than the session's epoch.
    run_ok(&["coordinator", "rotate", &session], &[("--data-dir", &c)]);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let shown = run_ok(
            &["coordinator", "sessions", "show", &session],
            &[("--data-dir", &c)],
        );
        if shown.contains("(1 rotations)") {
            assert!(
                shown.contains("boxed to each holder's share key"),
                "{shown}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session never rotated: {shown}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(fetch_with_fresh_ticket(r, &session, &fresh), key);

    let trail = run_ok(&["coordinator", "audit"], &[("--data-dir", &c)]);
    // The backup's own entry was written after its snapshot: it is in the lost trail only.
    assert!(!trail.contains("  backup  "), "{trail}");
    for (action, subject) in [
        ("restore", "coordinator.esb"),
        ("master-key rotate", new_id.as_str()),
        ("master-key erase", old_id.as_str()),
    ] {
        assert!(
            trail.contains(&format!("  {action}  {subject}")),
            "no {action} in:\n{trail}"
        );
    }

    // The same backup again, now older than the session's rotation: its record names epoch 0,
    // which the holders deleted (they refuse the epoch-0 ticket). A rotation of it fails (a
    // backup serves a session only until its next rotation), and the holders are not
    // quarantined for a share they rightly deleted.
    coord.proc.kill9();
    std::fs::remove_dir_all(&c).unwrap();
    let out = coordinator_cmd(
        &["restore", file.to_str().unwrap()],
        &[("--data-dir", &c), ("--passphrase-file", &pass)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    coord.proc = run_coordinator(&c);
    run_ok(&["coordinator", "rotate", &session], &[("--data-dir", &c)]);
    let deadline = Instant::now() + DEADLINE;
    let failed = "entroshard_rotations_failed_total{cause=\"manual\"}";
    loop {
        let text = try_http_get(&coord.metrics, "/metrics").unwrap_or_default();
        if metric(&text, failed).unwrap_or(0.0) >= 1.0 {
            let withheld = "entroshard_quarantines_total{reason=\"withheld_share\"}";
            assert_eq!(metric(&text, withheld).unwrap_or(0.0), 0.0, "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale session's rotation never failed: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `session ticket SESSION -o FILE` as the requester in `dir`, then `fetch FILE`; both asked
/// again until they succeed: a restarted coordinator learns its holders' addresses only from
/// their next heartbeats, and a ticket issued before names none.
fn fetch_with_fresh_ticket(dir: &Path, session: &str, ticket: &Path) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let _ = std::fs::remove_file(ticket);
        let got = entroshard()
            .args(["session", "ticket", session, "-o"])
            .arg(ticket)
            .arg("--data-dir")
            .arg(dir)
            .output()
            .unwrap();
        let out = if got.status.success() {
            fetch_output(dir, ticket)
        } else {
            got
        };
        if out.status.success() {
            return out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "no key with a fresh ticket: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

const KNOWN_REQUESTER: &str = "12D3KooWLbwY9UYf7ZXkU9NxYW7reLkwtWfk3PUY4q88fXQZBB5X";

#[test]
fn a_stopped_coordinator_is_backed_up_and_restored_and_every_refusal_writes_nothing() {
    let (tmp, c) = stopped_coordinator();
    let t = tmp.path();
    run_ok(
        &["coordinator", "requesters", "add", KNOWN_REQUESTER],
        &[("--data-dir", &c)],
    );
    let pass = passphrase_file(t, "pass", PASSPHRASE);
    let file = t.join("b.esb");
    let file_arg = file.to_str().unwrap();
    let out = coordinator_cmd(
        &["backup", file_arg],
        &[("--data-dir", &c), ("--passphrase-file", &pass)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let original = std::fs::read(&file).unwrap();
    assert_eq!(&original[..8], b"ESBACKUP");
    let id = line_value(&master_key(&c), "master key ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    // A backup is never written over a file, nor under a short passphrase.
    let out = coordinator_cmd(
        &["backup", file_arg],
        &[("--data-dir", &c), ("--passphrase-file", &pass)],
    );
    assert_refused(
        &out,
        &["already exists; a backup is never written over a file"],
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    let short = passphrase_file(t, "short", "too short");
    let other = t.join("other.esb");
    let out = coordinator_cmd(
        &["backup", other.to_str().unwrap()],
        &[("--data-dir", &c), ("--passphrase-file", &short)],
    );
    assert_refused(&out, &["at least 12 characters"]);
    assert!(!other.exists());

    // Refusals of a restore: each leaves the target as it was (not created, or still empty).
    let target = t.join("restored");
    let wrong = passphrase_file(t, "wrong", "not the passphrase at all");
    let mut altered = original.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x20;
    let altered_file = t.join("altered.esb");
    std::fs::write(&altered_file, &altered).unwrap();
    let truncated_file = t.join("truncated.esb");
    std::fs::write(&truncated_file, &original[..original.len() - 100]).unwrap();
    let not_a_backup = t.join("notes.txt");
    std::fs::write(&not_a_backup, "hello").unwrap();
    let cases: [(&Path, &Path, &str); 4] = [
        (&file, &wrong, "wrong passphrase"),
        (&altered_file, &pass, "the backup was altered"),
        (&truncated_file, &pass, "the backup is truncated"),
        (&not_a_backup, &pass, "not an entroshard backup"),
    ];
    for (backup, passphrase, message) in cases {
        let out = coordinator_cmd(
            &["restore", backup.to_str().unwrap()],
            &[("--data-dir", &target), ("--passphrase-file", passphrase)],
        );
        assert_refused(&out, &[message, "nothing was written"]);
        assert!(!target.exists(), "{message}: the target was created");
    }
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = coordinator_cmd(
        &["restore", altered_file.to_str().unwrap()],
        &[("--data-dir", &empty), ("--passphrase-file", &pass)],
    );
    assert_refused(&out, &["the backup was altered"]);
    assert!(listing(&empty).is_empty(), "{:?}", listing(&empty));
    // Never over a coordinator, never without a passphrase.
    let before = listing(&c);
    let out = coordinator_cmd(
        &["restore", file_arg],
        &[("--data-dir", &c), ("--passphrase-file", &pass)],
    );
    assert_refused(&out, &["is not empty", "never over a coordinator"]);
    assert_eq!(listing(&c), before);
    let out = entroshard()
        .args(["coordinator", "restore", file_arg, "--data-dir"])
        .arg(&target)
        .env_remove("ENTROSHARD_BACKUP_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_refused(&out, &["no backup passphrase", "--passphrase-file"]);
    assert!(!target.exists());

    // Into an existing empty directory, the passphrase from the environment.
    let out = entroshard()
        .args(["coordinator", "restore", file_arg, "--data-dir"])
        .arg(&empty)
        .env("ENTROSHARD_BACKUP_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        listing(&empty),
        [
            "coordinator.redb",
            "coordinator.toml",
            "identity.key",
            "master.key"
        ]
    );
    assert_eq!(
        std::fs::read(empty.join("identity.key")).unwrap(),
        std::fs::read(c.join("identity.key")).unwrap()
    );
    assert!(master_key(&empty).contains(&id));
    let listed = run_ok(
        &["coordinator", "requesters", "list"],
        &[("--data-dir", &empty)],
    );
    assert!(listed.contains(KNOWN_REQUESTER), "{listed}");
    let config = std::fs::read_to_string(empty.join("coordinator.toml")).unwrap();
    assert!(
        config.contains(&format!("data_dir = \"{}\"", empty.display())),
        "{config}"
    );
    let trail = run_ok(&["coordinator", "audit"], &[("--data-dir", &empty)]);
    assert!(trail.contains("  restore  b.esb"), "{trail}");

    // Rotating the master key needs the running coordinator.
    let out = coordinator_cmd(&["rotate-master-key"], &[("--data-dir", &c)]);
    assert_refused(&out, &["needs a running coordinator"]);
}

#[test]
fn a_coordinator_without_its_master_key_file_or_with_one_others_can_read_does_not_start() {
    let (_tmp, c) = stopped_coordinator();
    let key = c.join("master.key");
    assert_eq!(mode(&key), 0o600);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = coordinator_cmd(&["run"], &[("--data-dir", &c)]);
    assert_refused(&out, &["has mode 644; a master key file must be 0600"]);
    std::fs::remove_file(&key).unwrap();
    let out = coordinator_cmd(&["run"], &[("--data-dir", &c)]);
    assert_refused(&out, &["master.key is missing", "coordinator restore"]);
}
