//! Crash safety with real processes: a session writer is SIGKILLed mid-stream and every session it acknowledged must survive.

use coordinator::db::{CoordinatorDb, session_writer_record};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Parses `ACK i` lines, failing on anything else.
fn ack(line: &str) -> u64 {
    line.strip_prefix("ACK ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected writer output {line:?}"))
}

#[test]
fn every_acknowledged_session_survives_sigkill_of_the_writer_five_times_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.redb");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut acked_total = 0u64;
    for run in 0..5u32 {
        let wait_for = 30 + u64::from(seed.wrapping_add(run * 7919) % 97);
        let mut child = Command::new(env!("CARGO_BIN_EXE_entroshard"))
            .args(["coordinator", "session-writer"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        while (acked.len() as u64) < wait_for {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("run {run}: writer stopped after {} ACKs", acked.len()))
                .unwrap();
            acked.push(ack(&line));
        }
        // SIGKILL on Unix: the writer is in the middle of its next put (or its next ACK).
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "run {run}: writer exited on its own: {status}"
        );
        // ACKs printed between our last read and the kill count too.
        for line in lines {
            acked.push(ack(&line.unwrap()));
        }
        // The writer resumes at the number of sessions stored: numbers stay contiguous.
        assert_eq!(
            acked[0], acked_total,
            "run {run}: writer did not resume where the database ends"
        );
        assert!(
            acked.windows(2).all(|w| w[1] == w[0] + 1),
            "run {run}: ACKs not consecutive"
        );

        let db = CoordinatorDb::open(&path).unwrap();
        let last = *acked.last().unwrap();
        for i in 0..=last {
            let want = session_writer_record(i);
            let got = db
                .session(&want.session)
                .unwrap()
                .unwrap_or_else(|| panic!("run {run}: acknowledged session {i} is missing"));
            assert_eq!(got, want, "run {run}: session {i} differs");
        }
        // At most the one session whose put was under way when the kill landed is unacknowledged.
        let sessions = db.sessions().unwrap();
        let len = sessions.len() as u64;
        assert!(
            len == last + 1 || len == last + 2,
            "run {run}: {len} sessions after ACK {last}"
        );
        if len == last + 2 {
            assert_eq!(sessions[len as usize - 1], session_writer_record(last + 1));
        }
        acked_total = len;
        drop(db);
    }
    assert!(acked_total >= 150);
}
