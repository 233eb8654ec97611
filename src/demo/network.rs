//! The networked demo: a coordinator, seven peers in three regions under three operators and
//! two requesters, all real processes or real sockets on loopback, narrated step by step.

use super::{DemoArgs, Narrator, residue};
use crate::fleet::{CoordinatorSettings, Fleet, FleetSettings, PeerLayout, admin_call};
use anyhow::{Context, bail, ensure};
use coordinator::admin::AdminCall;
use protocols::identity::NodeKey;
use protocols::keys::SessionKey;
use protocols::ticket::Ticket;
use protocols::wire::{Refusal, SessionPolicy};
use rand::rngs::SysRng;
use rand_core::UnwrapErr;
use requester::{Requester, RequesterError};
use std::time::{Duration, Instant};

const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
const OPERATORS: [&str; 3] = ["alpha", "bravo", "charlie"];
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs the networked demo.
pub fn run(args: &DemoArgs, narrator: &mut Narrator) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let settings = FleetSettings {
        coordinator: CoordinatorSettings {
            min_credited_bits: args.min_credited_bits,
            min_contributors: args.min_contributors,
            entropy_audit_samples: args.window_samples,
        },
        peers: PeerLayout {
            regions: &REGIONS,
            operators: &OPERATORS,
            real_sources: (&[], args.window_samples.map_or(1_000_000, |n| n as usize)),
            address_per_peer: false,
            coordinator_over_quic: false,
            contribution_interval_s: 0.3,
            fetch_rate_per_s: None,
        },
        log_filter: "info".into(),
    };
    let (mut fleet, coord_addr) = narrator.step("coordinator: init and start", || {
        let deadline = Instant::now() + DEADLINE;
        let fleet = Fleet::start(settings, |_| {
            ensure!(Instant::now() < deadline, "coordinator did not start");
            Ok(())
        })?;
        let addr = fleet.coordinator_addr.clone();
        let lines = vec![
            format!("listening on {addr}"),
            format!(
                "data in {} (0700; keys never leave it)",
                fleet.coordinator_dir().display()
            ),
        ];
        Ok(((fleet, addr), lines))
    })?;
    let socket = fleet.admin_socket.clone();

    narrator.step(&format!("{} peers: init, enrol, start", args.peers), || {
        let mut lines = Vec::new();
        for _ in 0..args.peers {
            let p = runtime.block_on(fleet.add_peer())?;
            lines.push(format!(
                "{}: {}/{} {}",
                p.name,
                p.region,
                p.operator,
                p.node.short()
            ));
        }
        Ok(((), vec![lines.join("   ")]))
    })?;

    narrator.step(
        "peers attest (nonce, binary hash, config digest, signature)",
        || {
            let deadline = Instant::now() + DEADLINE;
            loop {
                let lines = runtime.block_on(fleet.status())?;
                let trusted = lines.iter().filter(|l| l.trusted).count();
                if trusted >= args.peers {
                    return Ok((
                        (),
                        vec![format!(
                            "{trusted} of {} peers attested; every source healthy: {}",
                            lines.len(),
                            lines.iter().all(|l| l.quarantine.is_none())
                        )],
                    ));
                }
                ensure!(Instant::now() < deadline, "only {trusted} peers attested");
                std::thread::sleep(Duration::from_millis(200));
            }
        },
    )?;

    let mut os = UnwrapErr(SysRng);
    let (a_key, b_key, c_key) = (
        NodeKey::generate(&mut os),
        NodeKey::generate(&mut os),
        NodeKey::generate(&mut os),
    );
    runtime.block_on(admin_call(
        &socket,
        AdminCall::AddRequester {
            node: a_key.node_id(),
        },
    ))?;
    let a = runtime.block_on(Requester::connect(&a_key, coord_addr.clone()))?;
    let policy = SessionPolicy {
        n: args.n,
        k: args.k,
        ttl_s: 3600,
        requesters: vec![b_key.node_id()],
        label: "demo".into(),
    };
    let created = narrator.step("entropy flows until the pool is ready; session created", || {
        let deadline = Instant::now() + DEADLINE;
        let created = loop {
            match runtime.block_on(a.create_session(policy.clone())) {
                Ok(c) => break c,
                Err(RequesterError::Refused(Refusal::NotReady(_))) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
                Err(e) => return Err(e.into()),
            }
        };
        let t: Ticket = created.grant.ticket.open_from_any_signer()?.1;
        let mut lines = vec![format!("session {} — {} of {} holders: {}", created.session, t.threshold(), t.holders.len(), t.holders.iter().map(|h| format!("#{}→{}", h.index, fleet.name_of(&h.node))).collect::<Vec<_>>().join(" "))];
        lines.push(format!("entropy receipt: {} credited bits from {} peers ({} blocks credited, {} not: duplicate, unaudited or refused)", created.receipt.credited_bits, created.receipt.contributors.len(), created.receipt.blocks_passed, created.receipt.blocks_rejected));
        for c in &created.receipt.contributors {
            lines.push(format!("  {:<8} {:>6} bits", fleet.name_of(&c.node), c.credited_bits));
        }
        Ok((created, lines))
    })?;

    let fingerprint = |k: &SessionKey| format!("key fingerprint {}", k.fingerprint());
    let key_a = narrator.step(
        "requester A fetches k shares over QUIC, verifies, combines",
        || {
            let key = runtime.block_on(a.fetch(&created.grant))?;
            Ok((key.clone(), vec![fingerprint(&key)]))
        },
    )?;
    let b = runtime.block_on(Requester::connect(&b_key, coord_addr.clone()))?;
    let key_b = narrator.step("requester B gets its own ticket and the same key", || {
        let grant = runtime.block_on(b.ticket(created.session))?;
        let key = runtime.block_on(b.fetch(&grant))?;
        ensure!(key == key_a, "requester B rebuilt a different key");
        Ok((
            key.clone(),
            vec![format!("{} — same as A", fingerprint(&key))],
        ))
    })?;
    narrator.step("an unauthorized requester is refused", || {
        let c = runtime.block_on(Requester::connect(&c_key, coord_addr.clone()))?;
        let ticket = runtime.block_on(c.ticket(created.session));
        ensure!(
            matches!(ticket, Err(RequesterError::Refused(Refusal::Unauthorized))),
            "the coordinator gave C a ticket"
        );
        let stolen = runtime.block_on(c.fetch(&created.grant));
        let Err(RequesterError::Fetch(requester::FetchError::NotEnoughShares {
            got: 0,
            failures,
            ..
        })) = stolen
        else {
            bail!("holders served A's ticket to C, or failed otherwise: {stolen:?}")
        };
        let refusal = failures
            .iter()
            .find(|f| {
                matches!(
                    f.problem,
                    requester::HolderProblem::Refused(Refusal::Ticket(
                        protocols::ticket::TicketRefusal::WrongRequester
                    ))
                )
            })
            .context("no holder refused C by name")?;
        Ok((
            (),
            vec![
                "coordinator: ticket refused (not named by the session)".into(),
                format!("holders, shown A's ticket by C: {refusal}"),
            ],
        ))
    })?;
    let killed = narrator.step("two holders killed with SIGKILL; A fetches again", || {
        let t: Ticket = created.grant.ticket.open_from_any_signer()?.1;
        let holders: Vec<usize> = (0..fleet.peers.len())
            .filter(|&i| t.holders.iter().any(|h| h.node == fleet.peers[i].node))
            .take(usize::from(args.n - args.k))
            .collect();
        let mut killed = Vec::new();
        for i in holders {
            if fleet.kill_peer(i)? {
                killed.push(fleet.peers[i].name.clone());
            }
        }
        let key = runtime.block_on(a.fetch(&created.grant))?;
        ensure!(key == key_a, "key changed with holders down");
        Ok((
            killed.clone(),
            vec![format!(
                "killed {}; {} — same key from the remaining holders",
                killed.join(", "),
                fingerprint(&key)
            )],
        ))
    })?;
    narrator.step("the devices return; rotation to a new epoch on a fresh quorum", || {
        for i in 0..fleet.peers.len() {
            if killed.contains(&fleet.peers[i].name) {
                fleet.start_peer(i)?;
            }
        }
        // The returning devices must be listening again before they can take shares.
        let deadline = Instant::now() + DEADLINE;
        for p in fleet.peers.iter().filter(|p| killed.contains(&p.name)) {
            while std::net::TcpStream::connect((p.ip, p.port)).is_err() {
                ensure!(Instant::now() < deadline, "{} did not come back", p.name);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // A rotation that cannot gather enough durable acks rolls back; ask again until one commits.
        let mut attempts = 0;
        let grant = 'rotated: loop {
            attempts += 1;
            runtime.block_on(admin_call(&socket, AdminCall::Rotate { session: created.session }))?;
            let attempt_deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < attempt_deadline {
                let grant = runtime.block_on(a.ticket(created.session))?;
                let t: Ticket = grant.ticket.open_from_any_signer()?.1;
                if t.epoch >= 1 {
                    break 'rotated grant;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            ensure!(Instant::now() < deadline, "rotation did not commit after {attempts} attempts");
        };
        // A rotation asked for again above may commit after the one this ticket names (on a
        // busy machine an attempt can take longer than its 15 s): then the holders have a newer
        // epoch and refuse this ticket as stale, and A asks for a ticket for that epoch.
        let (grant, key) = {
            let (mut grant, mut stale) = (grant, 0);
            loop {
                match runtime.block_on(a.fetch(&grant)) {
                    Ok(key) => break (grant, key),
                    Err(RequesterError::Fetch(requester::FetchError::StaleTicket { .. })) if stale < 3 => {
                        stale += 1;
                        grant = runtime.block_on(a.ticket(created.session))?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let t: Ticket = grant.ticket.open_from_any_signer()?.1;
        ensure!(key == key_a, "key changed across rotation");
        Ok(((), vec![
            format!("epoch {}: {}", t.epoch, t.holders.iter().map(|h| format!("#{}→{}", h.index, fleet.name_of(&h.node))).collect::<Vec<_>>().join(" ")),
            format!("{} — same key; the old holders sub-dealt their shares to the new ones (the coordinator relayed boxes and commitments), then proved and deleted epoch 0", fingerprint(&key)),
        ]))
    })?;
    narrator.step("the coordinator killed with SIGKILL and restarted: it holds nothing that opens the key", || {
        let deadline = Instant::now() + DEADLINE;
        // Restarts the coordinator; returns once A fetches through it (the holders' heartbeats
        // reach it within seconds; until then a ticket may name no address for some of them).
        let restart = |fleet: &mut Fleet| -> anyhow::Result<(Requester, SessionKey)> {
            runtime.block_on(fleet.restart_coordinator(|what| {
                ensure!(Instant::now() < deadline, "{what}: no answer");
                Ok(())
            }))?;
            loop {
                let attempt = runtime.block_on(async {
                    let a = Requester::connect(&a_key, coord_addr.clone()).await?;
                    let grant = a.ticket(created.session).await?;
                    let key = a.fetch(&grant).await?;
                    anyhow::Ok((a, key))
                });
                match attempt {
                    Ok(done) => return Ok(done),
                    Err(e) => ensure!(Instant::now() < deadline, "no fetch after the restart: {e:#}"),
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        };
        // The session may have moved on since (a repair, or the rotation asked for above
        // committing after another): a ticket for its epoch now, then the kill at once. A rotation
        // that commits between the two leaves A a stale ticket and no coordinator to renew it:
        // then the coordinator is started again and it is tried anew, a few times at most.
        let mut requester: Option<Requester> = None;
        let mut stale = 0;
        let (memory, key) = loop {
            let pid = fleet.coordinator_pid().context("the coordinator is not running")?;
            let memory = residue::in_process(pid, key_a.expose())?;
            ensure!(memory.found == 0, "the coordinator's memory holds the session key");
            let r = requester.as_ref().unwrap_or(&a);
            let grant = runtime.block_on(r.ticket(created.session))?;
            ensure!(fleet.kill_coordinator()?, "the coordinator was not running");
            match runtime.block_on(r.fetch(&grant)) {
                Ok(key) => break (memory, key),
                Err(RequesterError::Fetch(requester::FetchError::StaleTicket { .. })) if stale < 3 => {
                    stale += 1;
                    requester = Some(restart(&mut fleet)?.0);
                }
                Err(e) => return Err(e.into()),
            }
        };
        ensure!(key == key_a, "key changed with the coordinator down");
        let files = residue::in_files(&fleet.coordinator_dir(), key_a.expose())?;
        ensure!(files.found == 0, "the coordinator's data directory holds the session key");
        let (_, key) = restart(&mut fleet)?;
        ensure!(key == key_a, "key changed across the coordinator's restart");
        let retried = if stale > 0 {
            format!(" (after {stale} rotation(s) committed between its ticket and the kill)")
        } else {
            String::new()
        };
        Ok(((), vec![
            format!("its memory before the kill: {} MiB in {} writable regions, no copy of the key", memory.bytes >> 20, memory.places),
            format!("coordinator down: A fetched with the ticket it holds{retried}: {} — same key", fingerprint(&key)),
            format!("its data directory: {} files, {} KiB, no copy of the key; every share is boxed to its holder's own key", files.places, files.bytes >> 10),
            "restarted from its database: a new ticket, the same key — the holders answer for it, not the coordinator".into(),
        ]))
    })?;
    narrator.step("a Noise NNpsk0 tunnel keyed by the session key", || {
        runtime.block_on(tunnel(&key_a, &key_b))
    })?;
    drop(fleet);
    Ok(())
}

async fn tunnel(key_a: &SessionKey, key_b: &SessionKey) -> anyhow::Result<((), Vec<String>)> {
    use crate::cli::tunnel::{handshake, recv, send};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let b_key = *key_b.expose();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut t = handshake(&mut s, &b_key, false).await?;
        let msg = recv(&mut s, &mut t).await?.context("no message")?;
        let (mut s2, _) = listener.accept().await?;
        let wrong = handshake(&mut s2, &b_key, false).await;
        anyhow::Ok((msg, wrong.err().map(|e| e.to_string())))
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut t = handshake(&mut s, key_a.expose(), true).await?;
    send(&mut s, &mut t, b"hello from A to B over the session key").await?;
    let mut wrong_key = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut UnwrapErr(SysRng), &mut wrong_key);
    let mut s2 = tokio::net::TcpStream::connect(addr).await?;
    let _ = handshake(&mut s2, &wrong_key, true).await;
    drop(s2);
    let (msg, wrong) = server.await??;
    ensure!(wrong.is_some(), "a wrong key completed the handshake");
    Ok((
        (),
        vec![
            format!("B received: {:?}", String::from_utf8_lossy(&msg)),
            format!(
                "a third party with another key: {}",
                wrong.unwrap_or_default()
            ),
        ],
    ))
}
