//! Holder audits carried out (decisions 0014, 0058): the orders the core's [`HolderAudits`]
//! asks for — a `ProveShare` to each holder of a session boxed to its holders
//! (docs/protocol/holder-audits.md: no share leaves the holder), a fetch with a ticket naming
//! the coordinator for a session dealt before share keys — and their replies handed back to the
//! core to judge.

use super::sessions::grant;
use super::{Ctx, Internal, holders, now_ms};
use crate::core::holder_audits::{self, Answer, Reply};
use crate::core::upkeep::AuditStart;
use crate::db::{Holder, SessionRecord};
use peer::node::Protocol;
use protocols::ids::NodeId;
use protocols::sealing::ShareSlot;
use protocols::share_box::BoxSecret;
use protocols::wire::{self, BoxedFetch, BoxedFetchReply, WIRE_VERSION_2};
use rand_core::Rng;
use std::sync::Arc;
use tokio::sync::mpsc;

type Addrs = [(NodeId, Vec<libp2p::Multiaddr>)];

fn addrs_of(addrs: &Addrs, node: &NodeId) -> Vec<libp2p::Multiaddr> {
    addrs
        .iter()
        .find(|(n, _)| n == node)
        .map(|(_, a)| a.clone())
        .unwrap_or_default()
}

/// Asks every holder of `record` for its current epoch's share (a proof, or for a session
/// dealt before share keys the share itself) and has the core judge each reply.
pub(super) async fn ask_holders(
    ctx: &Ctx,
    record: &SessionRecord,
    addrs: &Addrs,
) -> Vec<(NodeId, Answer)> {
    let answers = if record.boxed {
        ask_for_proofs(ctx, record, addrs).await
    } else {
        fetch_sealed(ctx, record, addrs).await
    };
    for (node, answer) in &answers {
        match answer {
            Answer::Verified => {}
            Answer::Fault(fault) => {
                tracing::warn!(holder = %node.short(), session = %record.session, epoch = record.epoch, ?fault, "holder failed the coordinator's check")
            }
            Answer::Silent(e) => {
                tracing::info!(holder = %node.short(), session = %record.session, error = %e, "holder did not answer the coordinator's audit")
            }
        }
    }
    answers
}

fn slot_of(record: &SessionRecord, h: &Holder) -> ShareSlot {
    ShareSlot {
        session: record.session,
        epoch: record.epoch,
        holder: h.node,
        index: h.index,
    }
}

/// A `ProveShare` to each holder, with a fresh challenge each, and a serving probe: a fetch with
/// a ticket naming the coordinator whose reply key is one nobody holds (its secret is dropped
/// before the fetch is sent), so the answer shows the holder serves without showing its share.
async fn ask_for_proofs(ctx: &Ctx, record: &SessionRecord, addrs: &Addrs) -> Vec<(NodeId, Answer)> {
    // Proof orders are only signed: the master key is not used for them.
    let master = ctx.sealing_key();
    let signer = super::placing::signer(ctx, &master);
    let probe = grant(ctx, record, ctx.key.node_id(), addrs).map(|grant| {
        let unopenable =
            BoxSecret::generate(&mut rand_core::UnwrapErr(rand::rngs::SysRng)).public();
        wire::encode(&BoxedFetch {
            v: WIRE_VERSION_2,
            ticket: grant.ticket,
            reply_key: unopenable,
        })
    });
    let probe = &probe;
    let asks = record.holders.iter().map(|h| {
        let mut challenge = [0u8; 32];
        rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut challenge);
        let order = signer.prove_order(record.session, record.epoch, challenge, false);
        let addrs = addrs_of(addrs, &h.node);
        async move {
            let slot = slot_of(record, h);
            let restored = ctx.restored.map(|r| r.backup_created_at_ms);
            let proving = async {
                let reply = match holders::request(ctx, &h.node, addrs.clone(), order).await {
                    Err(e) => Reply::NoAnswer(e.to_string()),
                    Ok(raw) => Reply::of_proof(Some(&raw)),
                };
                let reply = holder_audits::excuse_after_restore(record, reply, restored);
                holder_audits::judge(record, &slot, None, &challenge, reply, now_ms())
            };
            let serving = async {
                let Some(request) = probe.clone() else {
                    return Answer::Silent("no ticket for the serving probe".into());
                };
                let reply = fetch_reply(ctx, &h.node, addrs.clone(), request).await;
                let reply = holder_audits::excuse_after_restore(record, reply, restored);
                holder_audits::judge_serving(record, &slot, reply, now_ms())
            };
            let (proof, served) = futures::future::join(proving, serving).await;
            (h.node, holder_audits::both(proof, served))
        }
    });
    futures::future::join_all(asks).await
}

/// A fetch sent to `node`, its answer as the core takes it.
async fn fetch_reply(
    ctx: &Ctx,
    node: &NodeId,
    addrs: Vec<libp2p::Multiaddr>,
    request: Vec<u8>,
) -> Reply {
    let Some(peer) = peer::identity::peer_id(node) else {
        return Reply::NoAnswer("bad holder id".into());
    };
    match ctx
        .node
        .request(Protocol::Fetch, peer, addrs, request)
        .await
    {
        Err(e) => Reply::NoAnswer(e.to_string()),
        Ok(raw) => match wire::decode::<BoxedFetchReply>(&raw, Protocol::Fetch.limits().1) {
            Err(e) => Reply::NoAnswer(format!("undecodable reply: {e}")),
            Ok(r) => match r.result {
                Ok(fetched) => Reply::Fetched(fetched),
                Err(refusal) => Reply::Refused(refusal),
            },
        },
    }
}

/// A session dealt before share keys: fetch each sealed share with a ticket naming the
/// coordinator and open it with the master key that sealed it.
async fn fetch_sealed(ctx: &Ctx, record: &SessionRecord, addrs: &Addrs) -> Vec<(NodeId, Answer)> {
    let Some(grant) = grant(ctx, record, ctx.key.node_id(), addrs) else {
        return Vec::new();
    };
    // A fetch of version 2 carries a reply key; sealed shares are served as stored.
    let reply_secret = BoxSecret::generate(&mut rand_core::UnwrapErr(rand::rngs::SysRng));
    let request = wire::encode(&BoxedFetch {
        v: WIRE_VERSION_2,
        ticket: grant.ticket,
        reply_key: reply_secret.public(),
    });
    let asks = record.holders.iter().map(|h| {
        let request = request.clone();
        let addrs = addrs_of(addrs, &h.node);
        async move {
            let reply = fetch_reply(ctx, &h.node, addrs, request).await;
            let slot = slot_of(record, h);
            let restored = ctx.restored.map(|r| r.backup_created_at_ms);
            let reply = holder_audits::excuse_after_restore(record, reply, restored);
            let answer = match ctx.opening_key(record, &slot) {
                Some(key) => {
                    holder_audits::judge(record, &slot, Some(&key), &[0; 32], reply, now_ms())
                }
                None => Answer::Silent("no master key in force opens this session".into()),
            };
            (h.node, answer)
        }
    });
    futures::future::join_all(asks).await
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
