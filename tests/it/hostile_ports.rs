//! Hostile input on every listening port of real processes: random bytes on the peer's and the
//! coordinator's TCP and QUIC ports, garbage, oversized and slow requests on both metrics ports,
//! crafted libp2p requests (oversized frames, 128 KiB and deeply nested CBOR, truncated messages,
//! forged signatures, expired tickets, a ticket replayed by another PeerId), a flood of fresh
//! identities, contributions from an unenrolled node and a contribution replayed under another
//! author. Each is refused by type and counted in metrics, the nodes
//! keep serving (a real fetch succeeds afterwards) and their memory stays bounded. Corrupted
//! database files stop the daemons with a clear message and are not written to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cluster::*;
use common::*;
use libp2p::Multiaddr;
use peer::node::{CONTRIBUTIONS_TOPIC, NodeEvent, NodeHandle, Protocol};
use protocols::identity::NodeKey;
use protocols::ticket::{Ticket, TicketRefusal};
use protocols::wire::{
    self, Contribution, CoordinatorCall, CoordinatorRequest, Refusal, Reply, SessionPolicy,
    ShareFetch, SignedEnvelope, TicketRequest, WIRE_VERSION,
};
use rand::RngExt;
use std::io::{Read, Write};
use std::time::Duration;
use tokio::time::Instant;

const REGIONS: [&str; 3] = ["r0", "r1", "r2"];

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..n).map(|_| rng.random()).collect()
}

/// `bytes` bytes of CBOR: one-element arrays nested as deep as they go.
fn nested_cbor(bytes: usize) -> Vec<u8> {
    vec![0x81; bytes]
}

/// A port number from a multiaddress.
fn port_of(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(p) | libp2p::multiaddr::Protocol::Udp(p) => Some(p),
            _ => None,
        })
        .unwrap()
}

/// Connections that send random bytes to a TCP port; refused or reset connections are fine.
fn tcp_garbage(port: u16, connections: usize, bytes: usize) {
    for _ in 0..connections {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(&random_bytes(bytes));
        }
    }
}

/// Random datagrams to a UDP (QUIC) port.
fn udp_garbage(port: u16, datagrams: usize) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..datagrams {
        // Half of them look like QUIC long-header initial packets.
        let mut d = random_bytes(1200);
        if i % 2 == 0 {
            d[0] = 0xc0 | (d[0] & 0x0f);
            d[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        let _ = sock.send_to(&d, ("127.0.0.1", port));
    }
}

/// Abuses a metrics endpoint: garbage, an endless head, slow clients past its connection bound,
/// and a request split across segments (which must be answered).
fn metrics_abuse(addr: &str) {
    tcp_garbage(
        addr.rsplit(':').next().unwrap().parse().unwrap(),
        8,
        16 * 1024,
    );
    let slow: Vec<_> = (0..24)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    drop(slow);
    // Once the slow clients are gone (the endpoint may still be closing their slots), a request
    // whose head arrives in two segments is answered.
    let split_request = || -> std::io::Result<String> {
        let mut split = std::net::TcpStream::connect(addr)?;
        split.set_nodelay(true)?;
        split.write_all(b"GET /met")?;
        std::thread::sleep(Duration::from_millis(50));
        split.write_all(b"rics HTTP/1.1\r\nhost: x\r\n\r\n")?;
        let mut answer = String::new();
        split.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let deadline = std::time::Instant::now() + DEADLINE;
    let answer = loop {
        match split_request() {
            Ok(answer) => break answer,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "metrics endpoint: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a request head in two segments is answered: {answer:?}"
    );
}

async fn request(
    node: &NodeHandle,
    protocol: Protocol,
    to: libp2p::PeerId,
    addr: &Multiaddr,
    bytes: Vec<u8>,
) -> Result<Refusal, String> {
    let raw = node
        .request(protocol, to, vec![addr.clone()], bytes)
        .await
        .map_err(|e| e.to_string())?;
    let reply: Reply<()> = wire::decode(&raw, 256 * 1024).map_err(|e| e.to_string())?;
    reply.result.err().ok_or_else(|| "accepted".into())
}

fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_on_every_port_are_refused_counted_and_survived() {
    let coord = spawn_coordinator(512, 2);
    let mut peers = spawn_peers(&coord, &REGIONS).await;
    let a = authorised_requester(&coord).await;
    wait_trusted(&coord, 3).await;
    let policy = SessionPolicy {
        n: 3,
        k: 2,
        ttl_s: 600,
        requesters: vec![],
        label: "hostile".into(),
    };
    let (session, grant) = create(&a, &policy).await.unwrap();
    let key = a.fetch(&grant).await.unwrap();
    let ticket: Ticket = grant.ticket.open_from_any_signer().unwrap().1;
    let holder = ticket.holders[0].clone();
    let holder_quic: Multiaddr = holder
        .addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .find(|a: &Multiaddr| a.to_string().contains("quic-v1"))
        .expect("the ticket names a QUIC address");
    let holder_tcp: Multiaddr = holder
        .addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .find(|a: &Multiaddr| a.to_string().contains("/tcp/"))
        .expect("the ticket names a TCP address");
    let holder_peer = peer::identity::peer_id(&holder.node).unwrap();
    let victim = peers.iter_mut().find(|p| p.node == holder.node).unwrap();
    let victim_pid = victim.proc.0.id();
    let victim_metrics = victim.metrics.clone();
    let coord_pid = coord.proc.0.id();
    let coord_peer = match coord.addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => unreachable!(),
    };
    let coord_port = port_of(&coord.addr);
    let (rss_holder, rss_coord) = (rss_kib(victim_pid), rss_kib(coord_pid));

    // Raw bytes on every socket.
    let (htcp, hquic) = (port_of(&holder_tcp), port_of(&holder_quic));
    let (vm, cm) = (victim_metrics.clone(), coord.metrics.clone());
    tokio::task::spawn_blocking(move || {
        tcp_garbage(htcp, 32, 64 * 1024);
        tcp_garbage(coord_port, 32, 64 * 1024);
        udp_garbage(hquic, 2000);
        udp_garbage(coord_port, 2000);
        metrics_abuse(&vm);
        metrics_abuse(&cm);
    })
    .await
    .unwrap();

    // Crafted libp2p requests from a node of our own.
    let mallory = NodeKey::generate(&mut rand::rng());
    let (node, mut events, _) = test_node(&mallory).await;
    let fetch = |bytes: Vec<u8>| request(&node, Protocol::Fetch, holder_peer, &holder_quic, bytes);
    let as_fetch = |ticket: SignedEnvelope| {
        wire::encode(&ShareFetch {
            v: WIRE_VERSION,
            ticket,
        })
    };
    let limit = Protocol::Fetch.limits().0;
    assert!(matches!(
        fetch(random_bytes(300)).await,
        Ok(Refusal::Malformed(_))
    ));
    assert!(
        matches!(fetch(nested_cbor(128 * 1024)).await, Ok(Refusal::Malformed(m)) if m.contains("over the limit"))
    );
    assert!(matches!(
        fetch(nested_cbor(limit - 16)).await,
        Ok(Refusal::Malformed(_))
    ));
    let mut truncated = as_fetch(grant.ticket.clone());
    truncated.truncate(truncated.len() * 2 / 3);
    assert!(matches!(fetch(truncated).await, Ok(Refusal::Malformed(_))));
    let mut forged = grant.ticket.to_bytes();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    match SignedEnvelope::from_bytes(&forged, 64 * 1024) {
        Ok(env) => assert_eq!(
            fetch(as_fetch(env)).await,
            Ok(Refusal::Ticket(TicketRefusal::BadSignature))
        ),
        Err(_) => assert!(matches!(fetch(forged).await, Ok(Refusal::Malformed(_)))),
    }
    // A's real ticket replayed by another PeerId.
    assert_eq!(
        fetch(as_fetch(grant.ticket.clone())).await,
        Ok(Refusal::Ticket(TicketRefusal::WrongRequester))
    );
    // Store orders from anyone but the coordinator.
    assert_eq!(
        request(
            &node,
            Protocol::Store,
            holder_peer,
            &holder_quic,
            random_bytes(64)
        )
        .await,
        Ok(Refusal::Unauthorized)
    );
    // The coordinator's protocol: garbage, nested CBOR, oversized, and an unauthorised ticket.
    let coord_quic: Multiaddr = format!("/ip4/127.0.0.1/udp/{coord_port}/quic-v1/p2p/{coord_peer}")
        .parse()
        .unwrap();
    let coord_limit = Protocol::Coord.limits().0;
    for bytes in [
        random_bytes(500),
        nested_cbor(coord_limit - 16),
        nested_cbor(coord_limit + 1),
    ] {
        assert!(matches!(
            request(&node, Protocol::Coord, coord_peer, &coord_quic, bytes).await,
            Ok(Refusal::Malformed(_))
        ));
    }
    let get_ticket = wire::encode(&CoordinatorCall {
        v: WIRE_VERSION,
        request: CoordinatorRequest::GetTicket(TicketRequest {
            v: WIRE_VERSION,
            session,
        }),
    });
    assert_eq!(
        request(
            &node,
            Protocol::Coord,
            coord_peer,
            &coord_quic,
            get_ticket.clone()
        )
        .await,
        Ok(Refusal::Unauthorized)
    );

    // Sybils: fresh identities, each replaying A's ticket and asking for one of its own.
    const SYBILS: usize = 20;
    for _ in 0..SYBILS {
        let key = NodeKey::generate(&mut rand::rng());
        let (sybil, _ev, _) = test_node(&key).await;
        assert_eq!(
            request(
                &sybil,
                Protocol::Fetch,
                holder_peer,
                &holder_quic,
                as_fetch(grant.ticket.clone())
            )
            .await,
            Ok(Refusal::Ticket(TicketRefusal::WrongRequester))
        );
        assert_eq!(
            request(
                &sybil,
                Protocol::Coord,
                coord_peer,
                &coord_quic,
                get_ticket.clone()
            )
            .await,
            Ok(Refusal::Unauthorized)
        );
        sybil.shutdown().await;
    }

    // Gossip: a contribution from an unenrolled node, and an enrolled peer's contribution
    // replayed under our authorship. Wait until the coordinator's mesh includes us.
    node.dial(coord.addr.clone()).await.unwrap();
    let replayed = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(NodeEvent::Gossip { topic, data, .. }) = events.recv().await
                && topic == CONTRIBUTIONS_TOPIC
            {
                return data;
            }
        }
    })
    .await
    .expect("an enrolled peer's contribution reaches us through the mesh");
    let own = SignedEnvelope::seal(
        &mallory,
        &Contribution {
            v: WIRE_VERSION,
            seq: 1,
            sent_at_ms: coordinator::service::now_ms(),
            sealed: random_bytes(512),
            membership: None,
        },
    )
    .to_bytes();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = http_get(&coord.metrics, "/metrics");
        let unenrolled = metric_sum(
            &text,
            "entroshard_intake_rejections_total{reason=\"unenrolled\"}",
        );
        let envelope = metric_sum(
            &text,
            "entroshard_gossip_refused_total{reason=\"contribution_envelope\"}",
        );
        if unenrolled >= 1.0 && envelope >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gossip refusals not counted:\n{text}"
        );
        let _ = node.publish(CONTRIBUTIONS_TOPIC, own.clone()).await;
        let _ = node.publish(CONTRIBUTIONS_TOPIC, replayed.clone()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Every refusal is counted by reason.
    let holder_text = http_get(&victim_metrics, "/metrics");
    let refused = |reason: &str| {
        metric_sum(
            &holder_text,
            &format!("entroshard_requests_refused_total{{protocol=\"fetch\",reason=\"{reason}\"}}"),
        )
    };
    assert!(refused("malformed") >= 4.0, "{holder_text}");
    assert!(
        refused("ticket_wrong_requester") >= (SYBILS + 1) as f64,
        "{holder_text}"
    );
    let coord_text = http_get(&coord.metrics, "/metrics");
    assert!(
        metric_sum(
            &coord_text,
            "entroshard_requests_refused_total{reason=\"unauthorized\"}"
        ) >= (SYBILS + 1) as f64,
        "{coord_text}"
    );
    assert!(
        metric_sum(
            &coord_text,
            "entroshard_requests_refused_total{reason=\"malformed\"}"
        ) >= 3.0,
        "{coord_text}"
    );

    for text in [&holder_text, &coord_text] {
        assert!(
            text.contains("entroshard_node_events_dropped_total{kind=\"gossip\"}"),
            "{text}"
        );
    }

    // Both keep serving, with bounded memory.
    assert_eq!(
        a.fetch(&a.ticket(session).await.unwrap()).await.unwrap(),
        key
    );
    let (after_holder, after_coord) = (rss_kib(victim_pid), rss_kib(coord_pid));
    eprintln!(
        "RSS holder {rss_holder} -> {after_holder} KiB, coordinator {rss_coord} -> {after_coord} KiB"
    );
    assert!(
        after_holder < rss_holder + 64 * 1024,
        "holder RSS grew unbounded"
    );
    assert!(
        after_coord < rss_coord + 64 * 1024,
        "coordinator RSS grew unbounded"
    );
    assert!(
        peers
            .iter_mut()
            .all(|p| p.proc.0.try_wait().unwrap().is_none())
    );
}

#[test]
fn corrupted_database_files_stop_the_daemons_with_a_clear_message_and_are_not_written() {
    // 4 KiB flipped in the middle, and every 13th byte past the header (which makes redb panic
    // inside its B-tree code; the panic must become the same clear message, without a backtrace).
    let in_the_middle = |bytes: &mut Vec<u8>| {
        let len = bytes.len();
        for b in bytes.iter_mut().skip(len / 3).take(4096) {
            *b ^= 0x5a;
        }
    };
    let sprinkled = |bytes: &mut Vec<u8>| {
        for b in bytes.iter_mut().skip(4096).step_by(13) {
            *b ^= 0x5a;
        }
    };
    for corrupt in [&in_the_middle as &dyn Fn(&mut Vec<u8>), &sprinkled] {
        let coord = tempfile::tempdir().unwrap();
        run_ok(
            &["coordinator", "init", "--listen", "/ip4/127.0.0.1/tcp/0"],
            &[("--data-dir", coord.path())],
        );
        let db = coord.path().join("coordinator.redb");
        let mut garbage = std::fs::read(&db).unwrap();
        corrupt(&mut garbage);
        std::fs::write(&db, &garbage).unwrap();
        let mut run = entroshard();
        run.args(["coordinator", "run", "--data-dir"])
            .arg(coord.path());
        refuses_corrupt_database(run, &db, "coordinator.redb");
    }

    let dir = tempfile::tempdir().unwrap();
    let coordinator: Multiaddr =
        "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWHfivAih815QnGuZH536yf4ZooYfZ6ytTLnAfJqRhsJZX"
            .parse()
            .unwrap();
    init_peer(dir.path(), &coordinator, "r0", "op", 1);
    let store = dir.path().join("shares.redb");
    std::fs::write(&store, random_bytes(64 * 1024)).unwrap();
    let mut run = entroshard();
    run.args(["peer", "run", "--data-dir"]).arg(dir.path());
    refuses_corrupt_database(run, &store, "shares.redb");
}

/// Runs a daemon's `command` on its corrupted database `file` (whose name is `name`): it must
/// exit with an error naming the file and saying it is corrupt, and leave the file untouched.
fn refuses_corrupt_database(
    mut command: std::process::Command,
    file: &std::path::Path,
    name: &str,
) {
    let before = std::fs::read(file).unwrap();
    let out = command.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the daemon ran on a corrupt {name}: {err}"
    );
    assert!(err.contains(name), "the message names the file: {err}");
    assert!(
        err.contains("corrupt"),
        "the message says what is wrong: {err}"
    );
    assert!(
        !err.contains("panicked at") && !err.contains("backtrace"),
        "a panic was printed before the message: {err}"
    );
    assert_eq!(
        std::fs::read(file).unwrap(),
        before,
        "{name} was written to"
    );
}
