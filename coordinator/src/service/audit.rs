//! Holder audits carried out (decisions 0014, 0058): the core plans each audit and judges the
//! replies ([`Round`]); this sends its orders — a `ProveShare` and a serving probe to each
//! holder of a session boxed to its holders, a fetch with a ticket naming the coordinator for a
//! session dealt before share keys — and hands the replies back.

use super::sessions::grant;
use super::{Ctx, Internal, holders, now_ms};
use crate::core::errors::OrderError;
use crate::core::holder_audits::{self, Answer, Ask, Reply, Round};
use crate::core::upkeep::AuditStart;
use crate::db::SessionRecord;
use peer::node::Protocol;
use protocols::ids::NodeId;
use protocols::share_box::BoxSecret;
use std::sync::Arc;
use tokio::sync::mpsc;

type Addrs = [(NodeId, Vec<libp2p::Multiaddr>)];

/// Asks every holder of `record` for its current epoch's share (a proof, or for a session
/// dealt before share keys the share itself) and has the core judge each reply.
pub(super) async fn ask_holders(
    ctx: &Ctx,
    record: &SessionRecord,
    addrs: &Addrs,
) -> Vec<(NodeId, Answer)> {
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    // The reply key's secret is dropped here: nobody can open what the probe brings back.
    let fetch = grant(ctx, record, ctx.key.node_id(), addrs)
        .map(|g| holder_audits::fetch_request(g.ticket, BoxSecret::generate(&mut rng).public()));
    // Proof orders are only signed: the master key is not used for them.
    let master = ctx.masters.sealing_key();
    let signer = super::placing::signer(ctx, &master);
    let restored = ctx.restored.map(|r| r.backup_created_at_ms);
    let round = Round::new(record.clone(), &signer, fetch, restored, &mut rng);
    let asks = round
        .asks()
        .iter()
        .map(|ask| ask_one(ctx, &round, ask, addrs));
    let answers = futures::future::join_all(asks).await;
    round.report(&answers);
    answers
}

/// Sends one holder its orders of `round` and has the core judge the replies.
async fn ask_one(ctx: &Ctx, round: &Round, ask: &Ask, addrs: &Addrs) -> (NodeId, Answer) {
    let to: Vec<_> = addrs
        .iter()
        .find(|(n, _)| n == &ask.node)
        .map(|(_, a)| a.clone())
        .unwrap_or_default();
    let serving = async {
        let request = round.fetch()?.to_vec();
        let peer = peer::identity::peer_id(&ask.node);
        let raw = match peer {
            None => Err(OrderError::BadHolderId),
            Some(peer) => (ctx.node.request(Protocol::Fetch, peer, to.clone(), request))
                .await
                .map_err(OrderError::from),
        };
        Some(Reply::of_fetch(raw.as_deref()))
    };
    let answer = match &ask.order {
        Some(order) => {
            let proving = holders::request(ctx, &ask.node, to.clone(), order.clone());
            let (proof, served) = futures::future::join(proving, serving).await;
            round.judge_proof(ask, proof.as_deref(), served, now_ms())
        }
        None => {
            let served = serving.await.unwrap_or(Reply::NoAnswer("no fetch".into()));
            let key = ctx.opening_key(round.record(), &ask.slot);
            round.judge_sealed(ask, key.as_ref(), served, now_ms())
        }
    };
    (ask.node, answer)
}

/// Runs a holder audit the core started (its session locked, so no rotation or expiry runs
/// meanwhile and the epoch audited stays the current one) in a task.
pub(super) fn spawn(ctx: &Arc<Ctx>, internal: &mpsc::Sender<Internal>, audit: AuditStart) {
    let AuditStart { order, addrs } = audit;
    let (ctx, internal) = (ctx.clone(), internal.clone());
    tokio::spawn(async move {
        let answers = ask_holders(&ctx, &order.record, &addrs).await;
        let _ = internal
            .send(Internal::Audited {
                session: order.record.session,
                faults: holder_audits::faults_of(&answers),
                silent: holder_audits::silent_of(&answers),
                attempt: order.attempt,
            })
            .await;
    });
}
