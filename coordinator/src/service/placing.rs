//! The driver of the core's state machines (`crate::core`): carries out their actions — durable
//! writes on a blocking thread, orders to holders over the node, timers on the wall clock — and
//! feeds the results back. It decides nothing itself.

use super::holders;
use super::{Ctx, now_ms};
use crate::core::deletions::{Delivery, delete_orders};
use crate::core::holder_audits::HolderFault;
use crate::core::orders::Signer;
use crate::core::{Action, Machine, Outcome, Write, WriteError};
use crate::db::{OwedDeletion, SessionRecord};
use crate::master_key::MasterKey;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use protocols::ids::NodeId;
use std::time::Duration;

/// Holder addresses known for a placement.
pub(super) type Addrs = [(NodeId, Vec<libp2p::Multiaddr>)];

/// How long a holder has to acknowledge an order before the core counts it as not
/// acknowledged: a bound on a hang. The node's own request timeout (10 s by default) normally
/// answers first, with an error.
pub(super) const HOLDER_ANSWER_MS: u64 = 30_000;

/// Where [`drive`] stopped.
pub(super) enum Stop {
    /// An epoch is durably committed; drive again to deliver its deletions. (Orders still in
    /// flight are dropped: their answers no longer count.)
    Committed(Box<SessionRecord>),
    /// The machine finished (`None`: it stalled, which the core never does).
    Done(Option<Outcome>),
}

/// Drives `machine` until it reports a commit or finishes.
pub(super) async fn drive(ctx: &Ctx, machine: &mut impl Machine, addrs: &Addrs) -> Stop {
    let mut requests = FuturesUnordered::new();
    let mut wake: Option<u64> = None;
    let mut outcome = None;
    loop {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Write(w) => {
                    let result = write(ctx, w).await;
                    machine.handle_written(result, now_ms());
                }
                Action::Send { id, node, bytes } => {
                    let to = addrs
                        .iter()
                        .find(|(n, _)| n == &node)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                    requests.push(async move {
                        (id, node, holders::request(ctx, &node, to, bytes).await)
                    });
                }
                Action::WakeAt(at) => wake = Some(at),
                Action::Committed(record) => return Stop::Committed(record),
                Action::Done(o) => outcome = Some(o),
            }
        }
        if machine.finished() {
            return Stop::Done(outcome);
        }
        let timer = wake.map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
        tokio::select! {
            Some((id, node, result)) = requests.next(), if !requests.is_empty() => {
                match &result {
                    Err(e) => tracing::info!(holder = %node.short(), error = %e, "holder order not answered"),
                    Ok(raw) => if let Some(r) = holders::refusal_in(raw) {
                        tracing::info!(holder = %node.short(), refusal = %r, "holder order refused");
                    },
                }
                machine.handle_reply(id, result.as_deref().ok(), now_ms());
            }
            () = tokio::time::sleep(timer.unwrap_or_default()), if timer.is_some() => {
                wake = None;
                machine.handle_timeout(now_ms());
            }
            else => {
                tracing::error!("placement stalled: no answer pending and no timer");
                return Stop::Done(outcome);
            }
        }
    }
}

/// Delivers `owed` deletions and settles those acknowledged (the rest stay owed); returns the
/// holders whose proof before deleting failed.
pub(super) async fn deliver_owed(
    ctx: &Ctx,
    owed: &[OwedDeletion],
    addrs: &Addrs,
) -> Vec<(NodeId, HolderFault)> {
    // Delete orders are only signed: the master key is not used for them.
    let master = ctx.masters.sealing_key();
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let orders = delete_orders(&signer(ctx, &master), owed, &mut rng);
    let mut delivery = Delivery::new(owed, &orders, now_ms(), HOLDER_ANSWER_MS, 0);
    drive(ctx, &mut delivery, addrs).await;
    delivery.faults().to_vec()
}

/// The coordinator's keys, for the orders a machine makes: its identity, and `master` (from
/// [`Ctx::sealing_key`], held by the caller until the placement ends) to seal shares under.
pub(super) fn signer<'a>(ctx: &'a Ctx, master: &'a MasterKey) -> Signer<'a> {
    Signer {
        key: &ctx.key,
        master: master.key(),
    }
}

/// Carries out one durable write on a blocking thread.
async fn write(ctx: &Ctx, w: Write) -> Result<(), WriteError> {
    let db = ctx.db.clone();
    let done = tokio::task::spawn_blocking(move || match w {
        Write::Pending(p) => db.put_pending_epoch(&p),
        Write::Commit { record, owed } => db.commit_epoch_owing(&record, &owed),
        Write::Retire(session) => db.retire_pending_epoch(&session).map(|_| ()),
        Write::Settle(owed) => db.settle_deletions(&owed),
    })
    .await;
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "coordinator database write failed");
            Err(e.into())
        }
        Err(e) => Err(WriteError::Task(e.to_string())),
    }
}
