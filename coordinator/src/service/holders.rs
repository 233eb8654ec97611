//! Orders to holders over the node: the layer beneath sessions, rotation, audits and expiry.

use super::Ctx;
use super::errors::OrderError;
use peer::node::Protocol;
use protocols::ids::NodeId;
use protocols::wire::{self, Reply, StoreAck};

/// Sends one encoded holder order and waits for its acknowledgement.
pub(super) async fn order(
    ctx: &Ctx,
    node: &NodeId,
    addrs: Vec<libp2p::Multiaddr>,
    bytes: Vec<u8>,
) -> Result<(), OrderError> {
    let peer = peer::identity::peer_id(node).ok_or(OrderError::BadHolderId)?;
    let raw = ctx
        .node
        .request(Protocol::Store, peer, addrs, bytes)
        .await?;
    let reply: Reply<StoreAck> = wire::decode(&raw, Protocol::Store.limits().1)?;
    reply.result.map(|_| ()).map_err(OrderError::Refused)
}
