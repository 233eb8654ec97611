//! The crash-test writer: puts deterministic shares forever, acknowledging each once durable.

use super::{ShareStore, StoreError};
use protocols::ids::{NodeId, SessionId};
use protocols::sealing::{SealedShare, ShareSlot};
use std::convert::Infallible;
use std::io::Write;
use std::path::Path;

/// The `i`-th share [`run_ack_writer`] writes: its own session, so every `i` is a distinct slot.
pub fn ack_writer_share(i: u64) -> SealedShare {
    let b = i.to_be_bytes();
    let mut session = [0x5a; 16];
    session[..8].copy_from_slice(&b);
    let mut nonce = [0xc3; 12];
    nonce[..8].copy_from_slice(&b);
    SealedShare {
        slot: ShareSlot {
            session: SessionId(session),
            epoch: (i % 5) as u32,
            holder: NodeId([0x11; 32]),
            index: (i % 255) as u8 + 1,
        },
        nonce,
        ciphertext: (0..48u8).map(|j| b[usize::from(j % 8)] ^ j).collect(),
    }
}

/// Opens the store at `path` and, from share number `len()` on, puts share `i`
/// ([`ack_writer_share`]) then writes `ACK i` to `out` and flushes it — until an error.
///
/// Every acknowledged share is durable, which a crash test checks by killing the process.
pub fn run_ack_writer(path: &Path, mut out: impl Write) -> Result<Infallible, StoreError> {
    let store = ShareStore::open(path, u32::MAX)?;
    let mut i = u64::from(store.len()?);
    loop {
        store.put(&ack_writer_share(i), u64::MAX)?;
        writeln!(out, "ACK {i}")
            .and_then(|()| out.flush())
            .map_err(|e| StoreError::io(path, "writing an ACK", &e))?;
        i += 1;
    }
}
