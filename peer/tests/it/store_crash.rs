//! Crash safety with real processes: a writer is SIGKILLed mid-stream and every share it acknowledged must survive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/common/crash_loop.rs"]
mod crash_loop;

use crash_loop::sigkill_rounds;
use peer::store::{ShareStore, ack_writer_share};
use std::process::Command;

#[test]
fn every_acknowledged_share_survives_sigkill_of_the_writer_five_times_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shares.redb");
    let writer = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_store-writer"));
        cmd.arg(&path);
        cmd
    };
    let total = sigkill_rounds(5, 50, writer, |run, last| {
        let store = ShareStore::open(&path, u32::MAX).unwrap();
        for i in 0..=last {
            let want = ack_writer_share(i);
            let got = store
                .get(&want.slot.session, want.slot.epoch)
                .unwrap()
                .unwrap_or_else(|| panic!("run {run}: acknowledged share {i} is missing"));
            assert_eq!(
                got.share,
                peer::store::HeldShare::Sealed(want),
                "run {run}: share {i} differs"
            );
            assert_eq!(got.expires_at_ms, u64::MAX);
        }
        u64::from(store.len().unwrap())
    });
    assert!(total >= 250);
}
