//! The mesh node every role runs: one constructor, one swarm task, bounded channels in and out.
//!
//! The swarm task only moves bytes: it forwards gossip and inbound requests to the owner as
//! [`NodeEvent`]s and carries out [`NodeHandle`] commands. It never blocks on disk or CPU work;
//! when the owner falls behind, gossip is ignored and requests are refused as busy.

pub mod behaviour;
pub mod codec;
pub mod config;
mod handle;
mod swarm_task;
mod transport;

pub use behaviour::{CONTRIBUTIONS_TOPIC, STATUS_TOPIC};
pub use codec::RequestFrame;
pub use config::{NodeConfig, Protocol, TransportKind};
pub use handle::{DroppedEvents, GossipVerdict, NodeHandle};
pub use swarm_task::{NodeEvent, Responder};

use libp2p::Multiaddr;
use protocols::identity::NodeKey;
use thiserror::Error;
use tokio::sync::mpsc;

/// Node failures the owner can act on.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum NodeError {
    /// The swarm task has stopped.
    #[error("node has shut down")]
    Closed,
    /// The node could not be built.
    #[error("node setup failed: {0}")]
    Setup(String),
    /// The remote did not answer or the connection failed.
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// Remote.
        peer: String,
        /// Why.
        reason: String,
        /// The connection the request went out on was closed or failed under it (a remote that
        /// restarted, say): a new request dials afresh.
        connection_lost: bool,
    },
    /// Publishing on gossip failed.
    #[error("publish failed: {0}")]
    Publish(String),
    /// Dialing failed.
    #[error("dial failed: {0}")]
    Dial(String),
}

/// Builds a node for `key` and starts its swarm task on the current tokio runtime.
/// Returns the handle and the event stream; dropping every handle stops the node.
pub async fn start(
    key: &NodeKey,
    config: NodeConfig,
) -> Result<(NodeHandle, mpsc::Receiver<NodeEvent>), NodeError> {
    let keypair = crate::identity::keypair(key).map_err(|e| NodeError::Setup(e.to_string()))?;
    let mut swarm = transport::build_swarm(keypair, &config)?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Setup(format!("listen on {addr}: {e}")))?;
    }
    for addr in &config.bootstrap {
        dial_bootstrap(&mut swarm, addr);
    }
    Ok(swarm_task::spawn(swarm, &config).await)
}

fn dial_bootstrap(swarm: &mut libp2p::Swarm<behaviour::MeshBehaviour>, addr: &Multiaddr) {
    if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last()
        && let Some(kad) = swarm.behaviour_mut().kad.as_mut()
    {
        kad.add_address(&peer, addr.clone());
    }
    if let Err(e) = swarm.dial(addr.clone()) {
        tracing::warn!(%addr, error = %e, "bootstrap dial failed");
    }
}
