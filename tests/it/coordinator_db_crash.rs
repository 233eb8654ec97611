//! Crash safety with real processes: a session writer is SIGKILLed mid-stream and every session it acknowledged must survive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::crash_loop::sigkill_rounds;
use coordinator::db::{CoordinatorDb, session_writer_record};
use std::process::Command;

#[test]
fn every_acknowledged_session_survives_sigkill_of_the_writer_five_times_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.redb");
    let writer = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_entroshard"));
        cmd.args(["coordinator", "session-writer"]).arg(&path);
        cmd
    };
    let total = sigkill_rounds(5, 30, writer, |run, last| {
        let db = CoordinatorDb::open(&path).unwrap();
        for i in 0..=last {
            let want = session_writer_record(i);
            let got = db
                .session(&want.session)
                .unwrap()
                .unwrap_or_else(|| panic!("run {run}: acknowledged session {i} is missing"));
            assert_eq!(got, want, "run {run}: session {i} differs");
        }
        let sessions = db.sessions().unwrap();
        // The one unacknowledged session, if its put completed, is whole.
        if sessions.len() as u64 == last + 2 {
            assert_eq!(
                sessions[sessions.len() - 1],
                session_writer_record(last + 1)
            );
        }
        sessions.len() as u64
    });
    assert!(total >= 150);
}
