//! Swarm construction: TCP + Noise + yamux, QUIC and relayed circuits for real nodes, memory +
//! Noise + yamux for the simulator.

use super::NodeError;
use super::behaviour::MeshBehaviour;
use super::config::{NodeConfig, TransportKind};
use libp2p::core::{transport::MemoryTransport, upgrade::Version};
use libp2p::{Swarm, SwarmBuilder, Transport, identity::Keypair, noise, tcp, yamux};

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
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux_config,
            )
            .map_err(|e| setup(&e))?
            .with_quic_config(|mut c| {
                c.max_stream_data = config.quic_max_stream_data;
                c.max_connection_data = config.quic_max_connection_data;
                c.max_concurrent_stream_limit = config.quic_max_streams;
                c
            })
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
