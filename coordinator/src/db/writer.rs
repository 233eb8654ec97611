//! The crash-test writer: puts deterministic sessions forever, acknowledging each once durable.

use super::{CoordinatorDb, DbError, Holder, SessionRecord};
use protocols::ids::{NodeId, SessionId};
use protocols::sharing::{CommitmentBytes, Commitments};
use protocols::wire::{EntropyReceipt, ReceiptLine, SessionPolicy};
use std::convert::Infallible;
use std::io::Write;
use std::path::Path;

/// The `i`-th session [`run_session_writer`] writes; session ids sort in the order of `i`.
pub fn session_writer_record(i: u64) -> SessionRecord {
    let b = i.to_be_bytes();
    let mut session = [0xa5; 16];
    session[..8].copy_from_slice(&b);
    let mut digest = [0x3c; 32];
    digest[..8].copy_from_slice(&b);
    let n = (i % 7) as u8 + 3;
    SessionRecord {
        session: SessionId(session),
        creator: NodeId([0x22; 32]),
        policy: SessionPolicy {
            n,
            k: 2,
            ttl_s: 3600 + i,
            requesters: vec![NodeId([0x33; 32])],
            label: format!("crash-test session {i}"),
        },
        policy_digest: digest,
        epoch: (i % 4) as u32,
        holders: (1..=n)
            .map(|index| Holder {
                node: NodeId([index; 32]),
                index,
            })
            .collect(),
        commitments: Commitments(vec![CommitmentBytes([b[7]; 32]), CommitmentBytes([7; 32])]),
        receipt: EntropyReceipt {
            contributors: vec![ReceiptLine {
                node: NodeId([0x44; 32]),
                credited_bits: i,
                blocks: 3,
            }],
            credited_bits: i,
            blocks_passed: 3,
            blocks_rejected: 0,
        },
        created_at_ms: i,
        expires_at_ms: u64::MAX - i,
        rotations: (i % 3) as u32,
        rotated_at_ms: 0,
        sealed_under: None,
        boxed: false,
    }
}

/// Opens the database at `path` and, from session number `sessions().len()` on, puts session `i`
/// ([`session_writer_record`]) then writes `ACK i` to `out` and flushes it — until an error.
///
/// Every acknowledged session is durable, which a crash test checks by killing the process.
pub fn run_session_writer(path: &Path, mut out: impl Write) -> Result<Infallible, DbError> {
    let db = CoordinatorDb::open(path)?;
    let mut i = db.sessions()?.len() as u64;
    loop {
        db.put_session(&session_writer_record(i))?;
        writeln!(out, "ACK {i}")
            .and_then(|()| out.flush())
            .map_err(|e| DbError::io(path, "writing an ACK", &e))?;
        i += 1;
    }
}
