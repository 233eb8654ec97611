//! A session's birth and its tickets on virtual time, with a real pool, real peers' standing
//! and real signatures.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::intake::DuplicateRules;
use crate::peers::Quarantine;
use protocols::entropy::{ConditionedBlock, CreditPolicy};
use protocols::identity::NodeKey;
use protocols::sealing::SealingMasterKey;
use protocols::wire::{PowerState, StatusHeartbeat};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 10_000_000;

fn rules() -> SessionRules {
    SessionRules {
        max_session_ttl_s: 86_400,
        min_credited_bits: 1024,
        min_contributors: 2,
        attestation_validity_ms: 600_000,
        heartbeat_max_age_ms: 60_000,
        ticket_ttl_s: 3_600,
    }
}

fn node(i: u8) -> NodeId {
    NodeKey::from_secret_bytes(&[i; 32]).node_id()
}

/// A coordinator's books: `peers` enrolled, attested and beating (each in its own region and
/// under its own operator), a requester allowed, and an empty pool.
struct Books {
    requesters: BTreeSet<NodeId>,
    intake: Intake,
    sources: SourceBook,
    peers: PeerTable,
    shares_held: BTreeMap<NodeId, u32>,
    round_trips: HashMap<libp2p::PeerId, std::time::Duration>,
    /// Fills so far (each fill's blocks differ from the last's).
    fills: u8,
}

impl Books {
    fn new(peers: u8) -> Self {
        let mut table = PeerTable::default();
        for i in 1..=peers {
            table.enrol(node(i), format!("region-{i}"), format!("operator-{i}"));
            let p = table.get_mut(&node(i)).unwrap();
            p.attested_at_ms = Some(NOW);
            p.share_key = Some(share_key_of(i).public());
            p.heartbeat_at_ms = Some(NOW);
            p.heartbeat = Some(StatusHeartbeat {
                v: protocols::wire::WIRE_VERSION,
                seq: 1,
                at_ms: NOW,
                power: PowerState::Mains,
                region: format!("region-{i}"),
                operator: format!("operator-{i}"),
                uptime_s: 7_200,
                free_store_slots: 100,
                shares_held: 0,
                listen_addrs: Vec::new(),
                sources: Vec::new(),
                membership: None,
            });
        }
        let intake = Intake::with_rules(
            [1; 32],
            CreditPolicy::new(1.0, 1 << 20).unwrap(),
            DuplicateRules {
                hold_ms: 0,
                min_events: 3,
            },
        )
        .unwrap();
        Self {
            requesters: [node(100)].into(),
            intake,
            sources: SourceBook::new(false, 60_000),
            peers: table,
            shares_held: BTreeMap::new(),
            round_trips: HashMap::new(),
            fills: 0,
        }
    }

    /// Credits `bits` from each of `contributors` peers.
    fn fill(&mut self, contributors: u8, bits: u64) {
        self.fills += 1;
        for i in 1..=contributors {
            let bytes: Vec<u8> = (0..128u32)
                .map(|b| (b as u8) ^ i.wrapping_mul(77) ^ self.fills.wrapping_mul(13))
                .collect();
            let block = ConditionedBlock::from_received(bytes, 640).unwrap();
            self.intake.take(&node(i), 0, &block, bits, NOW).unwrap();
        }
        self.intake.settle(NOW);
    }

    fn deal(&mut self, requester: NodeId, policy: SessionPolicy) -> Result<Born, Refusal> {
        Nursery {
            requesters: &self.requesters,
            intake: &mut self.intake,
            sources: &self.sources,
            peers: &self.peers,
            shares_held: &self.shares_held,
            round_trips: &self.round_trips,
        }
        .deal(
            &rules(),
            requester,
            policy,
            Fresh {
                session: [5; 16],
                draw: [6; 32],
                derive: [7; 32],
            },
            NOW,
            &mut StdRng::seed_from_u64(1),
        )
    }
}

fn policy(n: u8, k: u8) -> SessionPolicy {
    SessionPolicy {
        n,
        k,
        ttl_s: 600,
        requesters: vec![node(101)],
        label: "test".into(),
    }
}

#[test]
fn a_ready_pool_deals_a_key_on_distinct_trusted_holders_and_is_spent() {
    let mut books = Books::new(6);
    books.fill(3, 512);
    let born = books.deal(node(100), policy(5, 3)).unwrap();
    assert_eq!(born.holders.len(), 5);
    let distinct: BTreeSet<_> = born.holders.iter().collect();
    assert_eq!(distinct.len(), 5);
    assert_eq!(born.record.commitments.threshold(), 3);
    assert_eq!(born.record.creator, node(100));
    assert_eq!(born.record.expires_at_ms, NOW + 600_000);
    assert_eq!(born.record.receipt.contributors.len(), 3);
    // Everything the pool held went into this key: the next request waits for new credit.
    match books.deal(node(100), policy(5, 3)) {
        Err(Refusal::NotReady(why)) => assert!(why.contains("credited bits"), "{why}"),
        other => panic!("expected NotReady, got {:?}", other.map(|b| b.holders)),
    }
}

#[test]
fn requests_out_of_bounds_are_refused_before_the_pool_is_touched() {
    let mut books = Books::new(6);
    books.fill(3, 512);
    let refused = |books: &mut Books, who, p| books.deal(who, p).err().unwrap();
    assert_eq!(
        refused(&mut books, node(101), policy(5, 3)),
        Refusal::Unauthorized
    );
    assert!(matches!(
        refused(&mut books, node(100), policy(3, 5)),
        Refusal::Malformed(_)
    ));
    let mut forever = policy(5, 3);
    forever.ttl_s = 86_401;
    assert!(
        matches!(refused(&mut books, node(100), forever), Refusal::Malformed(m) if m.contains("ttl"))
    );
    let mut crowded = policy(5, 3);
    crowded.requesters = (0..=64).map(|i| node(i as u8)).collect();
    assert!(matches!(
        refused(&mut books, node(100), crowded),
        Refusal::Malformed(_)
    ));
    // None of that spent the pool.
    assert!(books.deal(node(100), policy(5, 3)).is_ok());
}

#[test]
fn a_pool_short_of_contributors_says_what_it_lacks() {
    let mut books = Books::new(6);
    books.fill(1, 2048);
    match books.deal(node(100), policy(5, 3)) {
        Err(Refusal::NotReady(why)) => assert!(why.contains("1 of 2 peers"), "{why}"),
        other => panic!("expected NotReady, got {:?}", other.map(|b| b.holders)),
    }
}

/// Peer `i`'s share key.
fn share_key_of(i: u8) -> protocols::share_box::BoxSecret {
    protocols::share_box::BoxSecret::from_uniform_bytes(&[i; 64])
}

#[test]
fn a_peer_without_a_verified_share_key_never_holds_shares_and_the_refusal_says_why() {
    let mut books = Books::new(6);
    books.fill(3, 512);
    books.peers.get_mut(&node(6)).unwrap().share_key = None;
    let born = books.deal(node(100), policy(5, 3)).unwrap();
    assert!(!born.holders.contains(&node(6)));
    books.peers.get_mut(&node(5)).unwrap().share_key = None;
    books.fill(3, 512);
    match books.deal(node(100), policy(5, 3)) {
        Err(Refusal::NotReady(why)) => {
            assert!(
                why.contains("2 trusted peer(s) left out: no verified share key"),
                "{why}"
            )
        }
        other => panic!("expected NotReady, got {:?}", other.map(|b| b.holders)),
    }
}

#[test]
fn quarantined_flagged_silent_and_unattested_peers_never_hold_shares() {
    let mut books = Books::new(8);
    books.fill(3, 512);
    books.peers.get_mut(&node(1)).unwrap().quarantine = Some(Quarantine::ClonedEntropy);
    books.peers.get_mut(&node(2)).unwrap().attested_at_ms = Some(NOW - 600_001);
    books.peers.get_mut(&node(3)).unwrap().heartbeat_at_ms = Some(NOW - 60_001);
    let born = books.deal(node(100), policy(5, 3)).unwrap();
    let mut holders = born.holders.clone();
    holders.sort();
    let mut expected: Vec<_> = (4..=8).map(node).collect();
    expected.sort();
    assert_eq!(holders, expected);
    // With one more peer gone there are not five left.
    books.peers.get_mut(&node(4)).unwrap().quarantine = Some(Quarantine::ClonedEntropy);
    books.fill(3, 512);
    assert!(matches!(
        books.deal(node(100), policy(5, 3)),
        Err(Refusal::NotReady(_))
    ));
}

fn record(expires_at_ms: u64) -> SessionRecord {
    let mut books = Books::new(5);
    books.fill(2, 1024);
    let mut record = books.deal(node(100), policy(5, 3)).unwrap().record;
    record.expires_at_ms = expires_at_ms;
    record
}

#[test]
fn tickets_go_to_the_creator_and_named_requesters_only_while_allowed_and_alive() {
    let alive = || TicketStanding {
        record: Some(record(NOW + 1)),
        removed: false,
    };
    assert!(admit_ticket(alive(), node(100), NOW).is_ok(), "creator");
    assert!(admit_ticket(alive(), node(101), NOW).is_ok(), "named");
    assert_eq!(
        admit_ticket(alive(), node(102), NOW).unwrap_err(),
        Refusal::Unauthorized
    );
    let removed = TicketStanding {
        removed: true,
        ..alive()
    };
    assert_eq!(
        admit_ticket(removed, node(100), NOW).unwrap_err(),
        Refusal::Unauthorized
    );
    let expired = TicketStanding {
        record: Some(record(NOW)),
        removed: false,
    };
    assert_eq!(
        admit_ticket(expired, node(100), NOW).unwrap_err(),
        Refusal::NotFound
    );
    let gone = TicketStanding {
        record: None,
        removed: false,
    };
    assert_eq!(
        admit_ticket(gone, node(100), NOW).unwrap_err(),
        Refusal::NotFound
    );
}

#[test]
fn a_grant_is_signed_short_lived_and_carries_opening_keys_only_for_a_session_sealed_before_share_keys()
 {
    let key = NodeKey::from_secret_bytes(&[9; 32]);
    let master = SealingMasterKey::from_bytes([8; 32]);
    let signer = Signer {
        key: &key,
        master: &master,
    };
    let mut long = record(u64::MAX);
    long.holders = (1..=5)
        .map(|i| crate::db::Holder {
            node: node(i),
            index: i,
        })
        .collect();
    let g = grant(&signer, &rules(), &long, node(101), &[], [3; 16], NOW);
    let ticket: Ticket = g.ticket.open(&key.node_id()).unwrap();
    assert_eq!(ticket.requester, node(101));
    assert_eq!(ticket.expires_at_ms, NOW + 3_600_000);
    assert_eq!(ticket.holders.len(), 5);
    // Born boxed to its holders: the grant opens nothing.
    assert!(long.boxed);
    assert!(g.opening_keys.is_empty());
    // A session dealt before holder share keys (until it is re-dealt): one key per holder.
    let legacy = SessionRecord {
        boxed: false,
        ..long.clone()
    };
    let g = grant(&signer, &rules(), &legacy, node(101), &[], [3; 16], NOW);
    assert_eq!(g.opening_keys.len(), 5);
    // Never past its session.
    let short = SessionRecord {
        expires_at_ms: NOW + 10,
        ..long
    };
    let g = grant(&signer, &rules(), &short, node(101), &[], [3; 16], NOW);
    let ticket: Ticket = g.ticket.open(&key.node_id()).unwrap();
    assert_eq!(ticket.expires_at_ms, NOW + 10);
    assert_eq!(ticket_expiry(u64::MAX, u64::MAX - 5, 3600), u64::MAX);
}

#[test]
fn ready_needs_a_full_pool_and_a_quorum_and_names_everything_missing() {
    let ready = |books: &Books| {
        let candidates = Candidates {
            peers: &books.peers,
            shares_held: &books.shares_held,
            flagged: books.intake.flagged(),
            round_trips: &books.round_trips,
        };
        readiness(
            &candidates,
            &rules(),
            &books.intake,
            &books.sources,
            NOW,
            &mut StdRng::seed_from_u64(2),
        )
    };
    // One peer: neither the pool nor a 2-of-3 quorum.
    let mut books = Books::new(1);
    let (eligible, verdict) = ready(&books);
    assert_eq!(eligible, 1);
    let why = verdict.unwrap_err();
    assert!(why.pool.is_some(), "{why}");
    assert_eq!(
        why.quorum.as_ref().map(|q| (q.n, q.k, q.eligible)),
        Some((3, 2, 1))
    );
    let text = why.to_string();
    assert!(
        text.contains("credited bits") && text.contains("no 2-of-3 quorum"),
        "{text}"
    );
    // Three peers, empty pool: only the pool is missing.
    books = Books::new(3);
    let why = ready(&books).1.unwrap_err();
    assert!(why.pool.is_some() && why.quorum.is_none(), "{why}");
    assert!(why.to_string().contains("credited bits"), "{why}");
    books.fill(2, 1024);
    assert_eq!(ready(&books), (3, Ok(())));
}
