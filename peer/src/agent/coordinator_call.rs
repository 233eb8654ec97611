//! One request from this device to the pinned coordinator on the coordinator protocol, and its
//! decoded reply: the device's own calls (the coordinator's record, a join, its membership
//! certificate, a gossip author's) all go through [`ask`].

use crate::node::{NodeError, NodeHandle, Protocol};
use libp2p::{Multiaddr, PeerId};
use protocols::wire::{self, CoordinatorCall, CoordinatorRequest, Reply, WIRE_VERSION, WireError};

/// Why a call to the coordinator brought no reply to read.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// The request did not reach it, or no answer came back.
    #[error("coordinator not reachable: {0}")]
    Unreachable(#[from] NodeError),
    /// The answer was not a reply of the expected kind.
    #[error("undecodable answer: {0}")]
    Undecodable(#[from] WireError),
}

/// Sends `request` to `coordinator` (dialled at `addr` if not connected) and decodes its reply.
pub(super) async fn ask<T>(
    node: &NodeHandle,
    coordinator: PeerId,
    addr: &Multiaddr,
    request: CoordinatorRequest,
) -> Result<Reply<T>, CallError>
where
    Reply<T>: serde::de::DeserializeOwned + wire::Versioned,
{
    let call = CoordinatorCall {
        v: WIRE_VERSION,
        request,
    };
    let protocol = Protocol::Coord;
    let bytes = node
        .request(
            protocol,
            coordinator,
            vec![addr.clone()],
            wire::encode(&call),
        )
        .await?;
    Ok(wire::decode(&bytes, protocol.limits().1)?)
}
