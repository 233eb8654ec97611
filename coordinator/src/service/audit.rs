//! Holder audits carried out: the fetches the core's [`HolderAudits`] orders, sent over the node
//! with a ticket naming the coordinator, and their replies handed back to the core to judge
//! (`core::holder_audits`, decision 0014). Rotation uses the same fetch to gather its shares.

use super::sessions::grant;
use super::{Ctx, Internal, State, now_ms};
use crate::core::holder_audits::{self, Answer, FetchKey, Reply};
use crate::db::SessionRecord;
use peer::node::Protocol;
use protocols::ids::NodeId;
use protocols::sealing::ShareSlot;
use protocols::share_box::BoxSecret;
use protocols::ticket::Ticket;
use protocols::wire::{self, BoxedFetch, BoxedFetchReply, WIRE_VERSION_2};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Fetches the current epoch's share from every holder of `record` (a ticket naming the
/// coordinator) and has the core judge each reply.
pub(super) async fn ask_holders(
    ctx: &Ctx,
    record: &SessionRecord,
    addrs: &[(NodeId, Vec<libp2p::Multiaddr>)],
) -> Vec<(NodeId, Answer)> {
    let Some(grant) = grant(ctx, record, ctx.key.node_id(), addrs) else {
        return Vec::new();
    };
    let Ok(ticket) = grant.ticket.open::<Ticket>(&ctx.key.node_id()) else {
        return Vec::new();
    };
    // Made for this fetch: holders box their shares to it; dropped (wiped) when it returns.
    let reply_secret = BoxSecret::generate(&mut rand_core::UnwrapErr(rand::rngs::SysRng));
    let fetch_key = FetchKey {
        secret: &reply_secret,
        nonce: ticket.nonce,
    };
    let fetch_key = &fetch_key;
    let request = wire::encode(&BoxedFetch {
        v: WIRE_VERSION_2,
        ticket: grant.ticket,
        reply_key: reply_secret.public(),
    });
    let asks = record.holders.iter().map(|h| {
        let request = request.clone();
        let addrs = addrs
            .iter()
            .find(|(n, _)| n == &h.node)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        async move {
            let reply = match peer::identity::peer_id(&h.node) {
                None => Reply::NoAnswer("bad holder id".into()),
                Some(peer) => match ctx
                    .node
                    .request(Protocol::Fetch, peer, addrs, request)
                    .await
                {
                    Err(e) => Reply::NoAnswer(e.to_string()),
                    Ok(raw) => {
                        match wire::decode::<BoxedFetchReply>(&raw, Protocol::Fetch.limits().1) {
                            Err(e) => Reply::NoAnswer(format!("undecodable reply: {e}")),
                            Ok(r) => match r.result {
                                Ok(fetched) => Reply::Fetched(fetched),
                                Err(refusal) => Reply::Refused(refusal),
                            },
                        }
                    }
                },
            };
            let slot = ShareSlot {
                session: record.session,
                epoch: record.epoch,
                holder: h.node,
                index: h.index,
            };
            let restored = ctx.restored.map(|r| r.backup_created_at_ms);
            let reply = holder_audits::excuse_after_restore(record, reply, restored);
            // A session boxed to its holders needs no master key; one dealt before does (the
            // grant above found it: the keyring only loses a key no session needs).
            let answer = if record.boxed {
                holder_audits::judge(record, &slot, None, fetch_key, reply, now_ms())
            } else {
                match ctx.opening_key(record, &slot) {
                    Some(key) => {
                        holder_audits::judge(record, &slot, Some(&key), fetch_key, reply, now_ms())
                    }
                    None => Answer::Silent("no master key in force opens this session".into()),
                }
            };
            (h.node, answer)
        }
    });
    let answers = futures::future::join_all(asks).await;
    for (node, answer) in &answers {
        match answer {
            Answer::Verified(_) => {}
            Answer::Fault(fault) => {
                tracing::warn!(holder = %node.short(), session = %record.session, epoch = record.epoch, ?fault, "holder failed the coordinator's check")
            }
            Answer::Silent(e) => {
                tracing::info!(holder = %node.short(), session = %record.session, error = %e, "holder did not answer the coordinator's fetch")
            }
        }
    }
    answers
}

/// Quarantines each holder with a fault and counts it.
pub(super) fn apply_faults(
    ctx: &Ctx,
    state: &mut State,
    faults: Vec<(NodeId, holder_audits::HolderFault)>,
) {
    for label in holder_audits::quarantine_faulty(&mut state.peers, faults) {
        ctx.metrics.quarantines.inc(label);
    }
}

/// Starts the audits that are due, each holding its session's lock (no rotation or expiry runs
/// meanwhile, so the epoch audited stays the current one).
pub(super) fn start_due(
    ctx: &Arc<Ctx>,
    state: &mut State,
    internal: &mpsc::Sender<Internal>,
    sessions: &[SessionRecord],
) {
    let ledger = &state.ledger;
    let orders = state.audits.due(now_ms(), sessions, |s| ledger.is_busy(s));
    for order in orders {
        let session = order.record.session;
        state.ledger.lock(session);
        let addrs = state
            .peers
            .addrs_of(order.record.holders.iter().map(|h| h.node));
        let (ctx, internal) = (ctx.clone(), internal.clone());
        tokio::spawn(async move {
            let answers = ask_holders(&ctx, &order.record, &addrs).await;
            let faults = holder_audits::faults_of(&answers);
            let silent = holder_audits::silent_of(&answers);
            drop(answers);
            let _ = internal
                .send(Internal::Audited {
                    session,
                    faults,
                    silent,
                    attempt: order.attempt,
                })
                .await;
        });
    }
}
