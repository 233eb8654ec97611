//! Kademlia on real nodes over loopback TCP: it is for peer routing only. A requester finds a
//! holder it has no address for through a node serving Kademlia (what a fetch does when a
//! ticket's addresses fail), and a stranger's value and provider records sent to such a node are
//! not kept (`peer::node::behaviour`: record filtering, a store bounded to zero records).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use futures::StreamExt;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use peer::node::{NodeConfig, NodeHandle};
use protocols::identity::NodeKey;
use std::time::Duration;

/// Bound on each exchange with the node on loopback (generous: a busy machine answers in ms).
const DEADLINE: Duration = Duration::from_secs(60);

/// A plain libp2p swarm speaking only Kademlia, with its own store (the attacker's view).
fn stranger() -> Swarm<kad::Behaviour<MemoryStore>> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::new(id, MemoryStore::new(id));
            kad.set_mode(Some(kad::Mode::Server));
            kad
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// Drives `swarm` until `pick` returns something.
async fn until<T>(
    swarm: &mut Swarm<kad::Behaviour<MemoryStore>>,
    mut pick: impl FnMut(SwarmEvent<kad::Event>) -> Option<T>,
) -> T {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(found) = pick(swarm.select_next_some().await) {
                return found;
            }
        }
    })
    .await
    .expect("the Kademlia exchange ends")
}

/// Starts one of our nodes on loopback TCP (Kademlia on; a server if `server`) and returns it
/// with its first listen address; its events are drained.
async fn our_node(server: bool) -> (NodeHandle, Multiaddr) {
    let key = NodeKey::generate(&mut rand_core::UnwrapErr(rand::rngs::SysRng));
    let mut config = NodeConfig::network(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    config.kademlia = true;
    config.kad_server = server;
    let (node, mut events, listening) = common::start_listening(&key, config).await;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    (node, listening)
}

#[tokio::test]
async fn a_requester_finds_a_holder_it_has_no_address_for_through_a_kademlia_server() {
    let (seed, seed_addr) = our_node(true).await;
    let seed_full = seed_addr.with(Protocol::P2p(seed.peer_id()));
    // The holder knows the seed (as a device knows its coordinator) and serves Kademlia, as a
    // reachable device does (AutoNAT) and a NATed one once it has a relayed address: a client is
    // kept in nobody's routing table. The requester knows only the seed and the holder's PeerId.
    let (holder, holder_addr) = our_node(true).await;
    holder.dial(seed_full.clone()).await.unwrap();
    let (requester, _) = our_node(false).await;
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let found = requester
                .find_peer(holder.peer_id(), vec![seed_full.clone()])
                .await
                .unwrap();
            if !found.is_empty() {
                return found;
            }
            // The seed learns the holder's addresses from identify once connected.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the holder is found through the seed");
    let holder_full = holder_addr.clone().with(Protocol::P2p(holder.peer_id()));
    assert!(
        found.iter().any(|a| a == &holder_addr || a == &holder_full),
        "found {found:?}, the holder listens on {holder_addr}"
    );
    for node in [requester, holder, seed] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn a_node_serving_kademlia_keeps_no_stranger_records() {
    let (node, listening) = our_node(true).await;
    let target: PeerId = node.peer_id();

    // The attacker stores a 4 KiB value and announces itself as a provider, at the node only.
    let mut attacker = stranger();
    attacker
        .behaviour_mut()
        .add_address(&target, listening.clone());
    let record_key = kad::RecordKey::new(&b"anyone's record".to_vec());
    let record = kad::Record::new(record_key.clone(), vec![7u8; 4096]);
    attacker
        .behaviour_mut()
        .put_record_to(record, std::iter::once(target), kad::Quorum::One);
    let put = until(&mut attacker, |e| match e {
        SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::PutRecord(r),
            ..
        }) => Some(r),
        _ => None,
    })
    .await;
    // The node answered the store request (libp2p acknowledges a filtered store as if stored:
    // what counts is what is kept).
    assert!(
        put.is_ok(),
        "the node did not answer the store request: {put:?}"
    );
    let provided = kad::RecordKey::new(&b"anyone's provider key".to_vec());
    attacker
        .behaviour_mut()
        .start_providing(provided.clone())
        .unwrap();
    until(&mut attacker, |e| match e {
        SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::StartProviding(r),
            ..
        }) => Some(r),
        _ => None,
    })
    .await
    .ok();

    // A second stranger, who knows only the node, asks it for both.
    let mut asker = stranger();
    asker.behaviour_mut().add_address(&target, listening);
    asker.behaviour_mut().get_record(record_key);
    let (found, stats) = until(&mut asker, |e| match e {
        SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::GetRecord(r),
            stats,
            ..
        }) => Some((r, stats)),
        _ => None,
    })
    .await;
    if let Ok(kad::GetRecordOk::FoundRecord(r)) = found {
        panic!("the node served a stranger's record from {:?}", r.peer);
    }
    assert!(
        stats.num_successes() >= 1,
        "the asker never got an answer from the node: {stats:?}"
    );
    asker.behaviour_mut().get_providers(provided);
    let stats = until(&mut asker, |e| match e {
        SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result:
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })),
            ..
        }) if !providers.is_empty() => {
            panic!("the node served a stranger's provider record: {providers:?}")
        }
        SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::GetProviders(_),
            step,
            stats,
            ..
        }) if step.last => Some(stats),
        _ => None,
    })
    .await;
    assert!(
        stats.num_successes() >= 1,
        "the asker never got an answer from the node: {stats:?}"
    );
    node.shutdown().await;
}
