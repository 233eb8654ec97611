//! The gossip core on virtual time, with real signed envelopes and Noise-sealed contributions.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::intake::DuplicateRules;
use crate::intake::sources::AuditResult;
use protocols::entropy::CreditPolicy;
use protocols::identity::NodeKey;
use protocols::wire::{ContributionBody, SourceAccounting, WIRE_VERSION};

const VALIDITY: u64 = 600_000;
const MAX_AGE: u64 = 60_000;
const HOLD: u64 = 5_000;
const T0: u64 = 1_000_000;
const NOISE: [u8; 32] = [7; 32];

/// A coordinator's books with one enrolled peer, the peer's key, and where the books live.
struct Desk {
    peers: PeerTable,
    intake: Intake,
    sources: SourceBook,
    peer: NodeKey,
    counts: Vec<Count>,
}

impl Desk {
    /// `auditing`: whether sources wait for an entropy audit before their blocks are credited.
    fn new(auditing: bool) -> Self {
        let peer = NodeKey::from_secret_bytes(&[3; 32]);
        let mut peers = PeerTable::default();
        peers.enrol(peer.node_id(), "eu".into(), "op-a".into());
        let intake = Intake::with_rules(
            [1; 32],
            CreditPolicy::new(1.0, 1 << 20).unwrap(),
            DuplicateRules {
                hold_ms: HOLD,
                min_events: 3,
            },
        )
        .unwrap();
        Self {
            peers,
            intake,
            sources: SourceBook::new(auditing, 60_000),
            peer,
            counts: Vec::new(),
        }
    }

    fn attest(&mut self, at: u64) {
        self.peers
            .get_mut(&self.peer.node_id())
            .unwrap()
            .attested_at_ms = Some(at);
    }

    fn books(&mut self) -> Books<'_> {
        Books {
            peers: &mut self.peers,
            intake: &mut self.intake,
            sources: &mut self.sources,
        }
    }

    fn gossip(
        &mut self,
        topic: &str,
        author: Option<NodeId>,
        data: &[u8],
        now: u64,
    ) -> GossipVerdict {
        let rules = GossipRules {
            attestation_validity_ms: VALIDITY,
            contribution_max_age_ms: MAX_AGE,
            noise_static: &NOISE,
        };
        let mut counts = Vec::new();
        let verdict = self
            .books()
            .handle_gossip(&rules, topic, author, data, now, &mut counts);
        self.counts.extend(counts);
        verdict
    }

    /// Publishes a contribution as the peer would, sealed to `to`.
    fn contribute(
        &mut self,
        seq: u64,
        sent_at: u64,
        body: &ContributionBody,
        to: &[u8; 32],
        now: u64,
    ) -> GossipVerdict {
        let c = Contribution {
            v: WIRE_VERSION,
            seq,
            sent_at_ms: sent_at,
            sealed: peer::contribution::seal(
                &peer::contribution::static_public(to),
                &self.peer.node_id(),
                seq,
                body,
            )
            .unwrap(),
            membership: None,
        };
        let bytes = SignedEnvelope::seal(&self.peer, &c).to_bytes();
        let author = Some(self.peer.node_id());
        self.gossip(CONTRIBUTIONS_TOPIC, author, &bytes, now)
    }

    fn rejected(&self) -> Vec<&'static str> {
        self.counts
            .iter()
            .filter_map(|c| match c {
                Count::IntakeRejected(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    fn credited(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| match c {
                Count::Credited { bits, .. } => *bits,
                _ => 0,
            })
            .sum()
    }

    fn me(&self) -> &crate::peers::PeerState {
        self.peers.get(&self.peer.node_id()).unwrap()
    }
}

/// Four whole outputs whose accounting claims `h` bits per 8-bit sample.
fn body(fill: u8, h_millibits: u32) -> ContributionBody {
    ContributionBody {
        v: WIRE_VERSION,
        conditioned: (0..128u8).map(|i| i.wrapping_mul(31) ^ fill).collect(),
        accounting: SourceAccounting {
            source: "jitter".into(),
            bits_per_sample: 8,
            raw_samples: 640,
            h_millibits,
            estimator: "declared".into(),
        },
    }
}

fn heartbeat(key: &NodeKey, seq: u64, region: &str) -> Vec<u8> {
    let beat = StatusHeartbeat {
        v: WIRE_VERSION,
        seq,
        region: region.into(),
        operator: "op-a".into(),
        at_ms: 0,
        power: protocols::wire::PowerState::Mains,
        uptime_s: 1,
        free_store_slots: 10,
        shares_held: 0,
        listen_addrs: Vec::new(),
        sources: Vec::new(),
        membership: None,
    };
    SignedEnvelope::seal(key, &beat).to_bytes()
}

#[test]
fn unsigned_and_malformed_gossip_is_rejected_and_counted() {
    let mut desk = Desk::new(false);
    assert_eq!(
        desk.gossip(STATUS_TOPIC, None, b"x", T0),
        GossipVerdict::Reject
    );
    let author = Some(desk.peer.node_id());
    assert_eq!(
        desk.gossip(STATUS_TOPIC, author, b"not cbor", T0),
        GossipVerdict::Reject
    );
    assert_eq!(
        desk.counts,
        vec![
            Count::GossipRefused("unsigned"),
            Count::GossipRefused("malformed")
        ]
    );
}

#[test]
fn an_envelope_signed_by_someone_else_is_rejected() {
    let mut desk = Desk::new(false);
    let other = NodeKey::from_secret_bytes(&[4; 32]);
    let author = Some(desk.peer.node_id());
    let verdict = desk.gossip(STATUS_TOPIC, author, &heartbeat(&other, 1, "eu"), T0);
    assert_eq!(verdict, GossipVerdict::Reject);
    assert_eq!(desk.counts, vec![Count::GossipRefused("heartbeat")]);
}

#[test]
fn the_newest_heartbeat_counts_and_a_label_that_differs_from_enrolment_is_refused() {
    let mut desk = Desk::new(false);
    let author = Some(desk.peer.node_id());
    let key = NodeKey::from_secret_bytes(desk.peer.secret_bytes());
    assert_eq!(
        desk.gossip(STATUS_TOPIC, author, &heartbeat(&key, 5, "eu"), T0),
        GossipVerdict::Accept
    );
    assert_eq!(desk.me().heartbeat_at_ms, Some(T0));
    // An older one is a sign of nothing new.
    desk.gossip(STATUS_TOPIC, author, &heartbeat(&key, 4, "eu"), T0 + 10);
    assert_eq!(desk.me().heartbeat_at_ms, Some(T0));
    // A newer one that claims another region is kept as a sign of life, the claim refused.
    desk.gossip(STATUS_TOPIC, author, &heartbeat(&key, 6, "us"), T0 + 20);
    assert_eq!(desk.me().heartbeat_at_ms, Some(T0 + 20));
    assert_eq!(desk.me().region, "eu");
    assert_eq!(desk.counts, vec![Count::GossipRefused("heartbeat_labels")]);
    assert_eq!(desk.me().refusals.get("heartbeat_labels"), Some(&1));
}

#[test]
fn a_trusted_peers_block_is_credited_once_its_hold_window_closes() {
    let mut desk = Desk::new(false);
    desk.attest(T0);
    assert_eq!(
        desk.contribute(1, T0, &body(1, 8000), &NOISE, T0),
        GossipVerdict::Accept
    );
    assert_eq!(desk.credited(), 0, "held for the duplicate window first");
    let mut counts = Vec::new();
    desk.books().settle(T0 + HOLD - 1, &mut counts);
    assert!(counts.is_empty());
    desk.books().settle(T0 + HOLD, &mut counts);
    desk.counts.extend(counts);
    assert_eq!(desk.credited(), 4 * 256, "four outputs of 256 bits");
    assert_eq!(desk.me().credited_bits, 4 * 256);
}

#[test]
fn replayed_stale_unopenable_and_impossible_contributions_are_refused_by_name() {
    let mut desk = Desk::new(false);
    desk.attest(T0);
    desk.contribute(2, T0, &body(1, 8000), &NOISE, T0);
    desk.contribute(2, T0, &body(2, 8000), &NOISE, T0);
    desk.contribute(3, T0 - MAX_AGE - 1, &body(3, 8000), &NOISE, T0);
    desk.contribute(4, T0 + MAX_AGE + 1, &body(4, 8000), &NOISE, T0);
    desk.contribute(5, T0, &body(5, 8000), &[9; 32], T0);
    desk.contribute(6, T0, &body(6, 8001), &NOISE, T0);
    let mut short = body(7, 8000);
    short.conditioned.truncate(100);
    desk.contribute(7, T0, &short, &NOISE, T0);
    assert_eq!(
        desk.rejected(),
        vec![
            "sequence",
            "stale",
            "stale",
            "unopenable",
            "bad_accounting",
            "wrong_size"
        ]
    );
    // A refusal that came after the body opened still moves the sequence on.
    assert_eq!(desk.me().last_seq, Some(7));
}

#[test]
fn an_unattested_or_unenrolled_peers_block_is_never_credited() {
    let mut desk = Desk::new(false);
    desk.contribute(1, T0, &body(1, 8000), &NOISE, T0);
    // Attested long ago: no longer trusted.
    desk.attest(T0 - VALIDITY - 1);
    desk.contribute(2, T0, &body(2, 8000), &NOISE, T0);
    desk.peers.remove(&desk.peer.node_id());
    desk.contribute(3, T0, &body(3, 8000), &NOISE, T0);
    let mut counts = Vec::new();
    desk.books().settle(T0 + HOLD, &mut counts);
    desk.counts.extend(counts);
    assert_eq!(
        desk.rejected(),
        vec!["unattested", "unattested", "unenrolled"]
    );
    assert_eq!(desk.credited(), 0);
}

#[test]
fn an_audited_source_waits_for_its_audit_and_a_failed_audit_witnesses_its_blocks() {
    let mut desk = Desk::new(true);
    desk.attest(T0);
    desk.contribute(1, T0, &body(1, 8000), &NOISE, T0);
    assert!(desk.rejected().is_empty(), "waiting, not refused");
    assert_eq!(desk.sources.blocks_waiting(), 1);
    let node = desk.peer.node_id();
    let mut counts = Vec::new();
    desk.books().settle_audit(
        node,
        "jitter",
        Err::<AuditResult, _>("no answer"),
        0.5,
        T0 + 1,
        &mut counts,
    );
    desk.counts.extend(counts);
    assert!(desk.counts.contains(&Count::EntropyAudit("failed")));
    assert_eq!(desk.rejected(), vec!["audit_failed"]);
    assert_eq!(desk.sources.blocks_waiting(), 0);
}

#[test]
fn a_successful_audit_credits_the_waiting_blocks_under_its_cap() {
    let mut desk = Desk::new(true);
    desk.attest(T0);
    desk.contribute(1, T0, &body(1, 8000), &NOISE, T0);
    let node = desk.peer.node_id();
    let audit = AuditResult {
        h: 8.0,
        samples: 10_000,
        estimator: "mcv".into(),
        at_ms: T0 + 1,
    };
    let mut counts = Vec::new();
    desk.books().settle_audit(
        node,
        "jitter",
        Ok::<_, &str>(audit),
        0.5,
        T0 + 1,
        &mut counts,
    );
    desk.books().settle(T0 + 1 + HOLD, &mut counts);
    desk.counts.extend(counts);
    assert!(desk.counts.contains(&Count::EntropyAudit("assessed")));
    assert!(desk.rejected().is_empty(), "{:?}", desk.counts);
    assert_eq!(desk.credited(), 4 * 256);
}
