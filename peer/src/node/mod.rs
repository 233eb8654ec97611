//! The mesh node every role runs: one constructor, one swarm task, bounded channels in and out.
//!
//! The swarm task only moves bytes: it forwards gossip and inbound requests to the owner as
//! [`NodeEvent`]s and carries out [`NodeHandle`] commands. It never blocks on disk or CPU work;
//! when the owner falls behind, gossip is ignored and requests are refused as busy.

pub mod behaviour;
pub mod codec;
pub mod config;
mod handle;
mod reachability;
mod swarm_task;
mod transport;

pub use behaviour::{CONTRIBUTIONS_TOPIC, STATUS_TOPIC};
pub use codec::RequestFrame;
pub use config::{NodeConfig, Protocol, RelayLimits, TransportKind};
pub use handle::{Answer, ConnectionPath, DroppedEvents, GossipVerdict, NodeHandle};
pub use reachability::{Reachability, SharedReachability};
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
    if config.transport == TransportKind::Network {
        for addr in &config.listen {
            refuse_tcp_port_in_use(addr)?;
        }
    }
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Setup(format!("listen on {addr}: {}", error_chain(&e))))?;
    }
    for addr in &config.bootstrap {
        dial_bootstrap(&mut swarm, addr);
    }
    Ok(swarm_task::spawn(swarm, &config).await)
}

/// Fails when the TCP port of `addr` is in use. libp2p binds its TCP listeners with
/// `SO_REUSEPORT`, so a port another process of the same user listens on would be shared
/// without an error; a plain bind (no `SO_REUSEPORT`) finds it taken. Ephemeral ports (0) and
/// other transports are not probed.
fn refuse_tcp_port_in_use(addr: &Multiaddr) -> Result<(), NodeError> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => std::net::TcpListener::bind((ip, port))
            .map(drop)
            .map_err(|e| NodeError::Setup(format!("listen on {addr}: {e}"))),
        _ => Ok(()),
    }
}

/// An error and its sources, joined by ": " (libp2p's `TransportError::Other` displays as
/// nothing: the OS's reason is in its source).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        "unknown error".into()
    } else {
        parts.join(": ")
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_port_another_socket_listens_on_is_refused_with_the_os_reason() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let err = refuse_tcp_port_in_use(&addr).unwrap_err().to_string();
        assert!(err.contains("Address already in use"), "{err}");
        drop(taken);
        assert!(refuse_tcp_port_in_use(&addr).is_ok());
    }

    #[test]
    fn a_transport_error_shows_the_io_reason_beneath_it() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let e: libp2p::TransportError<std::io::Error> = libp2p::TransportError::Other(io);
        assert_eq!(error_chain(&e), "address in use");
    }
}
