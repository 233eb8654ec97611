//! Orders to holders over the node: the layer beneath sessions, rotation, audits and expiry.

use super::Ctx;
use super::errors::OrderError;
use peer::node::Protocol;
use protocols::ids::NodeId;
use protocols::wire::{self, Reply};

/// Sends one encoded holder order and returns the reply's bytes as received (the caller decodes
/// them: a redistribution's replies are not store acknowledgements).
pub(super) async fn request(
    ctx: &Ctx,
    node: &NodeId,
    addrs: Vec<libp2p::Multiaddr>,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, OrderError> {
    let peer = peer::identity::peer_id(node).ok_or(OrderError::BadHolderId)?;
    Ok(ctx
        .node
        .request(Protocol::Store, peer, addrs, bytes)
        .await?)
}

/// The refusal in a holder's reply of any kind, if it is one (for the log).
pub(super) fn refusal_in(raw: &[u8]) -> Option<protocols::wire::Refusal> {
    let reply: Reply<serde::de::IgnoredAny> = wire::decode(raw, Protocol::Store.limits().1).ok()?;
    reply.result.err()
}
