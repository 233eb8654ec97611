//! Swarm construction: TCP + Noise + yamux, QUIC and relayed circuits for real nodes, memory +
//! Noise + yamux for the simulator.

use super::NodeError;
use super::behaviour::MeshBehaviour;
use super::config::{NodeConfig, TransportKind};
use libp2p::core::{muxing::StreamMuxerBox, transport::MemoryTransport, upgrade::Version};
use libp2p::{Swarm, SwarmBuilder, Transport, identity::Keypair, noise, tcp, yamux};
use std::time::Duration;

/// How long data sent on a TCP connection may stay unacknowledged before the kernel drops the
/// connection (Linux `TCP_USER_TIMEOUT`). Without it a connection through a link that died
/// without a reset lives until TCP's retransmissions give up (minutes), and closing it does not
/// help: libp2p's graceful close waits to flush into the full send buffer, so the swarm counts it
/// open, and after the link comes back the next retransmission is up to two minutes away
/// (decision 0062). A live link acknowledges within a second or two even on a loaded machine.
pub(super) const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets [`TCP_USER_TIMEOUT`] on a new connection's socket (logged, not fatal, if refused).
fn limit_unacknowledged(stream: &tcp::tokio::TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let ms = u32::try_from(TCP_USER_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
        if let Err(e) =
            nix::sys::socket::setsockopt(&stream.0, nix::sys::socket::sockopt::TcpUserTimeout, &ms)
        {
            tracing::warn!(error = %e, "TCP_USER_TIMEOUT not set");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

pub(super) fn build_swarm(
    keypair: Keypair,
    config: &NodeConfig,
) -> Result<Swarm<MeshBehaviour>, NodeError> {
    let setup = |e: &dyn std::fmt::Display| NodeError::Setup(e.to_string());
    let idle = config.idle_timeout;
    let yamux_config = || {
        let mut c = yamux::Config::default();
        c.set_max_num_streams(config.yamux_max_streams);
        c
    };
    let swarm = match config.transport {
        TransportKind::Network => SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_quic_config(|mut c| {
                c.max_stream_data = config.quic_max_stream_data;
                c.max_connection_data = config.quic_max_connection_data;
                c.max_concurrent_stream_limit = config.quic_max_streams;
                c
            })
            // TCP as `with_tcp` builds it, with the socket's unacknowledged-data bound set.
            .with_other_transport(|key| {
                let noise = noise::Config::new(key)
                    .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
                Ok(
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                        .map(|stream, _| {
                            limit_unacknowledged(&stream);
                            stream
                        })
                        .upgrade(Version::V1Lazy)
                        .authenticate(noise)
                        .multiplex(yamux_config())
                        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer))),
                )
            })
            .map_err(|e| setup(&e))?
            .with_relay_client(noise::Config::new, yamux_config)
            .map_err(|e| setup(&e))?
            .with_behaviour(|key, relay_client| MeshBehaviour::new(key, config, Some(relay_client)))
            .map_err(|e| setup(&e))?
            .with_swarm_config(|c| {
                // `dial_concurrency` applies to request dials only (swarm_task/dialing.rs).
                c.with_idle_connection_timeout(idle)
                    .with_dial_concurrency_factor(super::config::LIBP2P_DIAL_CONCURRENCY)
            })
            .build(),
        TransportKind::Memory => SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| {
                let noise = noise::Config::new(key)
                    .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
                Ok(MemoryTransport::default()
                    .upgrade(Version::V1)
                    .authenticate(noise)
                    .multiplex(yamux_config())
                    .boxed())
            })
            .map_err(|e| setup(&e))?
            .with_behaviour(|key| MeshBehaviour::new(key, config, None))
            .map_err(|e| setup(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build(),
    };
    Ok(swarm)
}
