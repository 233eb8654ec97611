//! A holder's request handlers (`peer::agent::DetachedHandlers`, the code `peer run` answers
//! every inbound request with) over a real redb share store holding one share: attestation,
//! store/delete orders and share fetches from the coordinator, the ticket's requester, the holder
//! itself or an outsider, as raw bytes, as payloads the coordinator signed, or as envelopes.
//! Every reply must be one of ours; only the coordinator's orders may succeed or change the
//! store; a share is served only on a live coordinator ticket naming the remote. Input layout:
//! `selector ‖ mode ‖ rest` (see `fuzz_support::holder::HolderInput`).
#![no_main]

use fuzz_support::holder::{HOLDER, HolderInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = HolderInput::parse(data) {
        let _ = HOLDER.run(&input);
    }
});
