//! The coordinator's network entry points without a service loop, for the fuzz target
//! `coordinator_requests`: the very functions the loop runs for an inbound request and an
//! inbound gossip message, over a real database. The daemon itself does not use this type.

use super::startup::start;
use super::{Ctx, Internal, ReplyTo, State, gossip, on_coord_request, reports};
use crate::config::CoordinatorConfig;
use crate::db::CoordinatorDb;
use crate::metrics::CoordinatorMetrics;
use peer::node::{GossipVerdict, NodeConfig, NodeEvent, RequestFrame};
use protocols::identity::NodeKey;
use protocols::ids::NodeId;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A coordinator built the way the daemon builds itself (from its database, on a node of its
/// own on the memory transport, listening nowhere) whose inbound requests and gossip are fed
/// by the caller instead of a service loop: [`Self::request`] runs the loop's request handler,
/// [`Self::gossip`] its gossip handler, on the same state. No timer runs (no attestation
/// challenges, credit rounds or rotations). Must be used inside a tokio runtime.
#[doc(hidden)]
pub struct DetachedService {
    ctx: Arc<Ctx>,
    state: State,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    _events: mpsc::Receiver<NodeEvent>,
}

impl DetachedService {
    /// Loads the coordinator of `key` from `db` (which must hold its secrets) as the daemon does.
    pub async fn start(
        config: CoordinatorConfig,
        key: NodeKey,
        db: Arc<CoordinatorDb>,
    ) -> Result<Self, super::errors::StartError> {
        let mut config = config;
        config.metrics = None;
        let (ctx, state, events, _admin_rx, _admin_tx) =
            start(config, key, db, Some(NodeConfig::memory(Vec::new()))).await?;
        let (internal_tx, internal_rx) = mpsc::channel(256);
        Ok(Self {
            ctx,
            state,
            internal_tx,
            internal_rx,
            _events: events,
        })
    }

    /// Answers one coordinator request from `remote` as the loop would and returns the encoded
    /// reply (waiting for tasks the handler spawned); `None` if the handler dropped the request
    /// without answering it. Reports of spawned tasks are then handled as the loop handles them.
    pub async fn request(
        &mut self,
        remote: libp2p::PeerId,
        frame: RequestFrame,
    ) -> Option<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        on_coord_request(
            &self.ctx,
            &mut self.state,
            &self.internal_tx,
            remote,
            frame,
            ReplyTo::Detached(tx),
        )
        .await;
        let reply = rx.await.ok();
        while let Ok(msg) = self.internal_rx.try_recv() {
            reports::on_internal(&self.ctx, &mut self.state, msg);
        }
        reply
    }

    /// Handles one gossip message as the loop would; returns the verdict reported to gossipsub.
    pub fn gossip(
        &mut self,
        topic: &str,
        author: Option<&libp2p::PeerId>,
        data: &[u8],
    ) -> GossipVerdict {
        gossip::on_gossip(&self.ctx, &mut self.state, topic, author, data)
    }

    /// Whether `node` is in the peer table (enrolled).
    pub fn is_enrolled(&self, node: &NodeId) -> bool {
        self.state.peers.get(node).is_some()
    }

    /// Removes `node` from the peer table (to undo a join after restoring the database).
    pub fn forget_peer(&mut self, node: &NodeId) {
        self.state.peers.remove(node);
    }

    /// Credited bits in the pool and the number of peers they came from.
    pub fn pool_credit(&self) -> (u64, usize) {
        self.state.intake.pool_credit()
    }

    /// The coordinator's counters.
    pub fn metrics(&self) -> &CoordinatorMetrics {
        &self.ctx.metrics
    }
}
