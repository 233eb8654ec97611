//! Real nodes on loopback TCP through a link the test can cut: a connection whose remote stopped
//! answering is closed by the ping failures, on both sides (decision 0062).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use libp2p::multiaddr::Protocol as Part;
use libp2p::{Multiaddr, PeerId};
use peer::node::{NodeConfig, NodeEvent, NodeHandle};
use protocols::identity::NodeKey;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

/// A bound on a hang, far above what the pings below need (about 3 s).
const DEADLINE: Duration = Duration::from_secs(60);

/// A TCP forwarder to one address. Once cut, no byte passes either way and no socket closes:
/// what a router dropping everything on a link does to a TCP connection through it.
struct Link {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Link {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let was_cut = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                        _ = cut.wait_for(|c| *c) => true,
                    };
                    if was_cut {
                        // Both sockets stay open and unread until the runtime ends.
                        std::future::pending::<()>().await;
                    }
                    drop((inbound, outbound));
                });
            }
        });
        Self { addr, cut }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// A TCP node on loopback that pings every 500 ms, waits 1 s for each answer, and never closes a
/// connection for idleness while the test runs: only the pings can end it.
async fn start(seed: u8) -> (NodeHandle, mpsc::Receiver<NodeEvent>, SocketAddr) {
    let mut config = NodeConfig::network(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    config.kademlia = false;
    config.ping_interval = Duration::from_millis(500);
    config.ping_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(600);
    let key = NodeKey::from_secret_bytes(&[seed; 32]);
    let (handle, events, listening) = common::start_listening(&key, config).await;
    let socket = match (listening.iter().next(), listening.iter().nth(1)) {
        (Some(Part::Ip4(ip)), Some(Part::Tcp(port))) => SocketAddr::from((ip, port)),
        _ => panic!("not a TCP address: {listening}"),
    };
    (handle, events, socket)
}

/// Waits for `want` on `events`, skipping everything else.
async fn next(events: &mut mpsc::Receiver<NodeEvent>, want: impl Fn(&NodeEvent) -> bool) {
    timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Some(e) if want(&e) => return,
                Some(_) => continue,
                None => panic!("node stopped"),
            }
        }
    })
    .await
    .expect("the event came");
}

fn connected(to: PeerId) -> impl Fn(&NodeEvent) -> bool {
    move |e| matches!(e, NodeEvent::Connected(p) if *p == to)
}

fn disconnected(to: PeerId) -> impl Fn(&NodeEvent) -> bool {
    move |e| matches!(e, NodeEvent::Disconnected(p) if *p == to)
}

#[tokio::test]
async fn a_connection_whose_remote_stopped_answering_is_closed_on_both_sides() {
    let (a, mut a_events, _) = start(21).await;
    let (b, mut b_events, b_socket) = start(22).await;
    let link = Link::to(b_socket).await;
    let through_link = Multiaddr::from(link.addr.ip())
        .with(Part::Tcp(link.addr.port()))
        .with(Part::P2p(b.peer_id()));
    a.dial(through_link).await.unwrap();
    next(&mut a_events, connected(b.peer_id())).await;
    next(&mut b_events, connected(a.peer_id())).await;
    // The pings go through while the link is up.
    timeout(DEADLINE, async {
        while !a.round_trips().contains_key(&b.peer_id()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a ping answered through the link");

    link.cut();
    // Neither side's TCP notices anything: only the pings can close the connection.
    next(&mut a_events, disconnected(b.peer_id())).await;
    next(&mut b_events, disconnected(a.peer_id())).await;
    assert!(!a.connected_peers().await.unwrap().contains(&b.peer_id()));
    assert!(!b.connected_peers().await.unwrap().contains(&a.peer_id()));
}
