//! The world the core's tests drive machines in: the coordinator's keys and real database,
//! holders running the agent's own request handlers over real redb share stores (killed and
//! revived as SIGKILL would), virtual time, and the checks every test shares (the recorded
//! epoch rebuilds the key, no holder keeps a share the database does not list).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::orders::Signer;
use super::placement::EpochPlacement;
use super::redistribution::Redistribution;
use super::{Outcome, WriteError};
use crate::db::{CoordinatorDb, SessionRecord};
use peer::agent::DetachedHandlers;
use peer::agent::measure::Measurement;
use peer::store::ShareStore;
use protocols::identity::NodeKey;
use protocols::ids::{NodeId, SessionId};
use protocols::keys::SessionSecret;
use protocols::reshare::{Dealt, Placement};
use protocols::sealing::{SealingMasterKey, ShareSlot};
use protocols::share_box::BoxSecret;
use protocols::sharing::{self, VerifiedShare};
use protocols::wire::{EntropyReceipt, NewHolder, SessionPolicy};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod driving;
pub(super) use driving::Run;

/// A holder's answer window on virtual time.
pub(super) const ANSWER_MS: u64 = 10_000;
/// Far-future expiry: the holders' handlers read the real clock.
pub(super) const EXPIRES_MS: u64 = 4_102_444_800_000;

pub(super) struct Holder {
    pub(super) store: Arc<ShareStore>,
    handlers: DetachedHandlers,
    /// A copy of the share key the handlers hold, to read back what the holder stores.
    pub(super) share_key: BoxSecret,
    _dir: tempfile::TempDir,
}

/// The coordinator's keys and database, the holders, and virtual time.
pub(super) struct World {
    key: NodeKey,
    master: SealingMasterKey,
    pub(super) db: CoordinatorDb,
    _db_dir: tempfile::TempDir,
    pub(super) holders: BTreeMap<NodeId, Holder>,
    pub(super) down: BTreeSet<NodeId>,
    pub(super) now: u64,
    rng: StdRng,
    /// The bytes of every share dealt so far (the test keeps them to look for them where they
    /// must never be: the orders sent and the database).
    pub(super) dealt_plain: Vec<[u8; 32]>,
    /// Every order sent, as sent.
    pub(super) sent: Vec<Vec<u8>>,
    /// Bytes of every answer received.
    pub(super) answered_bytes: usize,
    /// Rewrites a holder's reply before the machine sees it (a holder that misbehaves).
    pub(super) tamper: Option<Tamper>,
    /// Kills this holder once this many orders have been sent in all (see [`World::kill`]).
    pub(super) kill_at: Option<(NodeId, usize)>,
}

/// A rewrite of holder replies: (holder, its reply) → the reply the machine gets.
pub(super) type Tamper = Box<dyn FnMut(NodeId, Vec<u8>) -> Vec<u8>>;

/// A test holder's identity key (the world makes holder `i` from seed `i + 10`).
pub(super) fn holder_key(world_size: usize, node: &NodeId) -> NodeKey {
    NodeKey::from_secret_bytes(&[holder_index(world_size, node) as u8 + 10; 32])
}

/// Which holder of a world of `world_size` `node` is.
fn holder_index(world_size: usize, node: &NodeId) -> usize {
    (0..world_size)
        .find(|&i| &NodeKey::from_secret_bytes(&[i as u8 + 10; 32]).node_id() == node)
        .expect("a holder of the world")
}

impl World {
    pub(super) fn new(holders: usize, seed: u64) -> Self {
        let db_dir = tempfile::tempdir().unwrap();
        let db = CoordinatorDb::open(&db_dir.path().join("coordinator.redb")).unwrap();
        let key = NodeKey::from_secret_bytes(&[7; 32]);
        let holders = (0..holders)
            .map(|i| {
                let hkey = NodeKey::from_secret_bytes(&[i as u8 + 10; 32]);
                let dir = tempfile::tempdir().unwrap();
                let store =
                    Arc::new(ShareStore::open(&dir.path().join("shares.redb"), 64).unwrap());
                let node = hkey.node_id();
                let share_key = BoxSecret::from_uniform_bytes(&[i as u8 + 10; 64]);
                let handlers = Self::handlers(i, key.node_id(), store.clone());
                (
                    node,
                    Holder {
                        store,
                        handlers,
                        share_key,
                        _dir: dir,
                    },
                )
            })
            .collect();
        World {
            key,
            master: SealingMasterKey::from_bytes([9; 32]),
            db,
            _db_dir: db_dir,
            holders,
            down: BTreeSet::new(),
            now: 1_000_000,
            rng: StdRng::seed_from_u64(seed),
            dealt_plain: Vec::new(),
            sent: Vec::new(),
            answered_bytes: 0,
            tamper: None,
            kill_at: None,
        }
    }

    /// Handlers of holder `i` of the world over `store`, as a freshly started process has them.
    fn handlers(i: usize, coordinator: NodeId, store: Arc<ShareStore>) -> DetachedHandlers {
        DetachedHandlers::new(
            NodeKey::from_secret_bytes(&[i as u8 + 10; 32]),
            BoxSecret::from_uniform_bytes(&[i as u8 + 10; 64]),
            coordinator,
            store,
            Measurement {
                binary_sha256: [0xaa; 32],
                config_digest: [1; 32],
                boot_id: "core-tests".into(),
            },
            1e12,
        )
    }

    /// Kills `node` as SIGKILL would: it answers nothing until [`World::revive`], and what it
    /// kept only in memory (sub-shares of a redistribution under way) is gone; its store stays.
    pub(super) fn kill(&mut self, node: NodeId) {
        self.down.insert(node);
    }

    /// Starts `node` again over its store, with fresh handlers.
    pub(super) fn revive(&mut self, node: NodeId) {
        let i = holder_index(self.holders.len(), &node);
        let coordinator = self.key.node_id();
        let holder = self.holders.get_mut(&node).expect("a holder of the world");
        holder.handlers = Self::handlers(i, coordinator, holder.store.clone());
        self.down.remove(&node);
    }

    pub(super) fn signer(&self) -> Signer<'_> {
        Signer {
            key: &self.key,
            master: &self.master,
        }
    }

    pub(super) fn nodes(&self) -> Vec<NodeId> {
        self.holders.keys().copied().collect()
    }

    /// A new session over `nodes` (k of n) as the daemon deals it: epoch 0, no holders yet.
    pub(super) fn deal_session(&mut self, nodes: &[NodeId], k: usize) -> (Dealt, SessionRecord) {
        let session = SessionId(self.rng.random());
        let secret = SessionSecret::derive(&self.rng.random(), &self.rng.random(), &session)
            .expect("a secret");
        let n = nodes.len();
        let placements = placements(nodes);
        let dealt = Dealt::fresh(
            session,
            0,
            &secret,
            placements,
            k,
            k.max(n - 1),
            &mut self.rng,
        )
        .unwrap();
        let policy = SessionPolicy {
            n: n as u8,
            k: k as u8,
            ttl_s: 3600,
            requesters: vec![],
            label: "core".into(),
        };
        let record = SessionRecord {
            session,
            creator: NodeId([0x22; 32]),
            policy,
            policy_digest: [0; 32],
            epoch: 0,
            holders: Vec::new(),
            commitments: dealt.commitments().clone(),
            receipt: EntropyReceipt {
                contributors: vec![],
                credited_bits: 256,
                blocks_passed: 1,
                blocks_rejected: 0,
            },
            created_at_ms: self.now,
            expires_at_ms: EXPIRES_MS,
            rotations: 0,
            rotated_at_ms: 0,
            sealed_under: None,
            boxed: false,
        };
        (dealt, record)
    }

    pub(super) fn placement(&mut self, dealt: Dealt, record: SessionRecord) -> EpochPlacement {
        let mut rng = StdRng::seed_from_u64(self.rng.random());
        self.dealt_plain
            .extend(dealt.deliveries().iter().map(|(_, s)| s.value_bytes()));
        let keys: BTreeMap<NodeId, _> = self
            .holders
            .iter()
            .map(|(n, h)| (*n, h.share_key.public()))
            .collect();
        let dealt = dealt
            .seal_to_holders(|n| keys.get(n).copied(), &mut rng)
            .unwrap();
        let signer = Signer {
            key: &self.key,
            master: &self.master,
        };
        EpochPlacement::new(dealt, record, &signer, self.now, ANSWER_MS)
    }

    /// The shares `record`'s holders keep for its current epoch, opened and verified.
    pub(super) fn recorded_shares(&self, record: &SessionRecord) -> Vec<VerifiedShare> {
        record
            .holders
            .iter()
            .filter_map(|h| {
                let stored = self
                    .holders
                    .get(&h.node)?
                    .store
                    .get(&record.session, record.epoch)
                    .ok()??;
                let slot = ShareSlot {
                    session: record.session,
                    epoch: record.epoch,
                    holder: h.node,
                    index: h.index,
                };
                let peer::store::HeldShare::Boxed(boxed) = &stored.share else {
                    return None;
                };
                assert_eq!(boxed.slot, slot, "a box filed under another slot");
                let own = &self.holders.get(&h.node)?.share_key;
                protocols::holder_box::open_at_holder(own, &slot, &boxed.boxed, &record.commitments)
                    .ok()
            })
            .collect()
    }

    /// No holder keeps a share the database does not list for it.
    pub(super) fn assert_no_stray_share(&self, context: &str) {
        let listed: BTreeSet<(NodeId, SessionId, u32)> = self
            .db
            .sessions()
            .unwrap()
            .iter()
            .flat_map(|s| s.holders.iter().map(move |h| (h.node, s.session, s.epoch)))
            .collect();
        for (node, holder) in &self.holders {
            for info in holder.store.list().unwrap() {
                assert!(
                    listed.contains(&(*node, info.session, info.epoch)),
                    "{context}: holder {} keeps epoch {} of {} which the coordinator does not list",
                    node.short(),
                    info.epoch,
                    info.session
                );
            }
        }
    }

    /// The recorded session rebuilds a secret matching commitment 0 from its holders' stores.
    pub(super) fn assert_rebuilds(
        &self,
        record: &SessionRecord,
        c0: &sharing::CommitmentBytes,
        context: &str,
    ) {
        let shares = self.recorded_shares(record);
        assert!(
            shares.len() >= record.commitments.threshold(),
            "{context}: {} of {} shares left for epoch {}",
            shares.len(),
            record.commitments.threshold(),
            record.epoch
        );
        sharing::combine(&shares, &record.commitments)
            .expect("the recorded epoch rebuilds the key");
        assert_eq!(
            record.commitments.0.first(),
            Some(c0),
            "{context}: commitment 0 changed"
        );
    }
}

/// A write refused for want of space.
pub(super) fn disk_full() -> WriteError {
    WriteError::Database(crate::db::DbError::Io {
        path: "coordinator.redb".into(),
        op: "committing an epoch",
        kind: std::io::ErrorKind::StorageFull,
        detail: "No space left on device".into(),
    })
}

pub(super) fn placements(nodes: &[NodeId]) -> Vec<Placement> {
    nodes
        .iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node: *node, index })
        .collect()
}

/// Creates a session on the first `n` holders without a crash; returns its record.
pub(super) async fn created(world: &mut World, n: usize, k: usize) -> SessionRecord {
    let nodes: Vec<NodeId> = world.nodes().into_iter().take(n).collect();
    let (dealt, record) = world.deal_session(&nodes, k);
    let mut p = world.placement(dealt, record);
    let run = world.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed));
    run.committed.expect("committed")
}

/// The coordinator's keys as [`World`] holds them, apart, for a machine that borrows them
/// while the world drives it.
pub(super) fn coordinator_keys() -> (NodeKey, SealingMasterKey) {
    (
        NodeKey::from_secret_bytes(&[7; 32]),
        SealingMasterKey::from_bytes([9; 32]),
    )
}

/// A rotation of `record` by redistribution onto `nodes` (indices 1.., each with its share
/// key), committing after max(k, n − 1) acknowledgements.
pub(super) fn rotation<'k>(
    world: &World,
    keys: &'k (NodeKey, SealingMasterKey),
    record: &SessionRecord,
    nodes: &[NodeId],
) -> Redistribution<'k> {
    let k = record.commitments.threshold();
    let new_holders = nodes
        .iter()
        .zip(1u8..)
        .map(|(node, index)| NewHolder {
            node: *node,
            index,
            share_key: world.holders[node].share_key.public(),
        })
        .collect();
    let signer = Signer {
        key: &keys.0,
        master: &keys.1,
    };
    let min_acks = k.max(nodes.len() - 1);
    Redistribution::new(
        record.clone(),
        new_holders,
        min_acks,
        signer,
        world.now,
        ANSWER_MS,
        &mut rand::rng(),
    )
    .unwrap()
}
