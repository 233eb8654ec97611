//! Answers to the coordinator's and requesters' requests: attestation, store/delete orders, share fetches.

use super::Shared;
use crate::node::{Protocol, RequestFrame};
use crate::store::{BoxedShare, HeldShare, PutOutcome};
use libp2p::PeerId;
use protocols::attestation::{Challenge, Evidence};
use protocols::holder_box;
use protocols::ids::NodeId;
use protocols::ticket::check_opened_ticket;
use protocols::wire::{
    self, BoxedFetch, BoxedFetchReply, DeleteShares, FetchedShare, HolderCall, HolderOrder,
    Refusal, Reply, ShareFetch, SignedEnvelope, StoreAck, StoreBoxedShare, StoreShare,
    WIRE_VERSION, WIRE_VERSION_2,
};
use serde::Serialize;
use std::sync::Arc;

fn encode_reply<T: Serialize>(reply: &Reply<T>) -> Vec<u8> {
    wire::encode(reply)
}

/// Answers one request; never panics on its input, always returns the bytes to send.
pub async fn answer(
    shared: Arc<Shared>,
    protocol: Protocol,
    remote: PeerId,
    frame: RequestFrame,
) -> Vec<u8> {
    let bytes = match frame {
        RequestFrame::Bytes(bytes) => bytes,
        RequestFrame::Oversized { len, max } => {
            let refusal =
                Refusal::Malformed(format!("request of {len} bytes over the limit {max}"));
            shared.metrics.refused(protocol, &refusal);
            tracing::info!(%remote, ?protocol, len, "oversized request refused");
            return encode_reply(&Reply::<()>::refused(refusal));
        }
    };
    let Some(remote_node) = crate::identity::node_id(&remote) else {
        return encode_reply(&Reply::<()>::refused(Refusal::Unauthorized));
    };
    let (max, _) = protocol.limits();
    let started = std::time::Instant::now();
    let result = match protocol {
        Protocol::Attest => {
            attest(&shared, &remote_node, &bytes, max).map(|v| encode_reply(&Reply::ok(v)))
        }
        Protocol::Store => store(&shared, &remote_node, &bytes, max).await,
        Protocol::Fetch => fetch(&shared, &remote_node, &bytes, max).await,
        Protocol::Audit => audit(&shared, &remote_node, &bytes, max)
            .await
            .map(|v| encode_reply(&Reply::ok(v))),
        Protocol::Coord => Err(Refusal::Unauthorized),
    };
    match result {
        Ok(reply) => {
            shared.metrics.served(protocol);
            if matches!(protocol, Protocol::Fetch) {
                let seconds = crate::telemetry::seconds_since(started);
                shared.metrics.fetch_serve_seconds.observe(seconds);
            }
            reply
        }
        Err(refusal) => {
            tracing::info!(%remote, ?protocol, reason = %refusal, "request refused");
            shared.metrics.refused(protocol, &refusal);
            encode_reply(&Reply::<()>::refused(refusal))
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> Refusal {
    Refusal::Malformed(e.to_string())
}

/// An entropy audit: only the pinned coordinator may ask (docs/protocol/entropy-audit.md).
async fn audit(
    shared: &Shared,
    remote: &NodeId,
    bytes: &[u8],
    max: usize,
) -> Result<protocols::wire::AuditWindow, Refusal> {
    if remote != &shared.coordinator {
        return Err(Refusal::Unauthorized);
    }
    let request: protocols::wire::AuditRequest = wire::decode(bytes, max).map_err(malformed)?;
    shared.audits.answer(request).await
}

fn attest(
    shared: &Shared,
    remote: &NodeId,
    bytes: &[u8],
    max: usize,
) -> Result<SignedEnvelope, Refusal> {
    if remote != &shared.coordinator {
        return Err(Refusal::Unauthorized);
    }
    let challenge: Challenge = wire::decode(bytes, max).map_err(malformed)?;
    // What the coordinator says of this device's sources; the evidence answers the nonce only.
    super::feedback::record(&shared.metrics, challenge.feedback);
    let health = shared
        .health
        .lock()
        .map(|h| h.counters.clone())
        .unwrap_or_default();
    let evidence = Evidence {
        v: WIRE_VERSION,
        node: shared.key.node_id(),
        nonce: challenge.nonce,
        binary_sha256: shared.measurement.binary_sha256,
        config_digest: shared.measurement.config_digest,
        boot_id: shared.measurement.boot_id.clone(),
        uptime_s: shared.started.elapsed().as_secs(),
        health,
        at_ms: super::now_ms(),
        share_key: Some(shared.share_key_statement.clone()),
    };
    Ok(SignedEnvelope::seal(&shared.key, &evidence))
}

/// A holder order from the coordinator; returns the encoded reply.
async fn store(
    shared: &Arc<Shared>,
    remote: &NodeId,
    bytes: &[u8],
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    if remote != &shared.coordinator {
        return Err(Refusal::Unauthorized);
    }
    let call: HolderCall = wire::decode(bytes, max).map_err(malformed)?;
    match call.order {
        HolderOrder::Redeal(envelope) => super::redeal::redeal(shared, &envelope).await,
        HolderOrder::SubShares(envelope) => super::redeal::sub_shares(shared, &envelope).await,
        HolderOrder::Combine(envelope) => super::redeal::combine(shared, &envelope).await,
        HolderOrder::ProveShare(envelope) => super::prove::prove_share(shared, &envelope).await,
        order => store_or_delete(shared, order)
            .await
            .map(|ack| encode_reply(&Reply::ok(ack))),
    }
}

/// A store or delete order (the redistribution orders are answered by [`super::redeal`]).
async fn store_or_delete(shared: &Arc<Shared>, order: HolderOrder) -> Result<StoreAck, Refusal> {
    let local = shared.key.node_id();
    match order {
        HolderOrder::Store(envelope) => {
            let order: StoreShare = envelope.open(&shared.coordinator).map_err(malformed)?;
            if order.share.slot.holder != local {
                return Err(Refusal::Malformed(
                    "share is addressed to another holder".into(),
                ));
            }
            let ack = StoreAck {
                session: order.share.slot.session,
                epoch: order.share.slot.epoch,
            };
            let store = shared.store.clone();
            let outcome =
                tokio::task::spawn_blocking(move || store.put(&order.share, order.expires_at_ms))
                    .await
                    .map_err(|_| Refusal::Internal)?;
            match outcome {
                Ok(PutOutcome::Stored | PutOutcome::AlreadyStored) => Ok(ack),
                Err(crate::store::StoreError::Full { .. }) => Err(Refusal::StoreFull),
                Err(e) => {
                    tracing::error!(error = %e, "share store write failed");
                    Err(Refusal::Internal)
                }
            }
        }
        HolderOrder::StoreBoxed(envelope) => {
            let order: StoreBoxedShare = envelope.open(&shared.coordinator).map_err(malformed)?;
            if order.slot.holder != local {
                return Err(Refusal::Malformed(
                    "share is addressed to another holder".into(),
                ));
            }
            let ack = StoreAck {
                session: order.slot.session,
                epoch: order.slot.epoch,
            };
            let held = shared.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                // Opened and checked before anything is stored; the plaintext is wiped here.
                if let Err(e) = holder_box::open_at_holder(
                    &held.share_key,
                    &order.slot,
                    &order.boxed,
                    &order.commitments,
                ) {
                    return Err(Refusal::BadShare(e.to_string()));
                }
                let boxed = BoxedShare {
                    slot: order.slot,
                    boxed: order.boxed,
                    commitments: order.commitments,
                };
                held.store
                    .put_held(&HeldShare::Boxed(boxed), order.expires_at_ms)
                    .map_err(|e| match e {
                        crate::store::StoreError::Full { .. } => Refusal::StoreFull,
                        e => {
                            tracing::error!(error = %e, "share store write failed");
                            Refusal::Internal
                        }
                    })
            })
            .await
            .map_err(|_| Refusal::Internal)?;
            match outcome {
                Ok(PutOutcome::Stored | PutOutcome::AlreadyStored) => Ok(ack),
                Err(refusal) => {
                    if let Refusal::BadShare(why) = &refusal {
                        tracing::warn!(session = %ack.session, epoch = ack.epoch, %why, "store order refused: the share fails its commitments (a faulty dealing)");
                    }
                    Err(refusal)
                }
            }
        }
        HolderOrder::Delete(envelope) => {
            let order: DeleteShares = envelope.open(&shared.coordinator).map_err(malformed)?;
            let store = shared.store.clone();
            tokio::task::spawn_blocking(move || store.delete_epoch(&order.session, order.epoch))
                .await
                .map_err(|_| Refusal::Internal)?
                .map_err(|e| {
                    tracing::error!(error = %e, "share delete failed");
                    Refusal::Internal
                })?;
            Ok(StoreAck {
                session: order.session,
                epoch: order.epoch,
            })
        }
        HolderOrder::Redeal(_)
        | HolderOrder::SubShares(_)
        | HolderOrder::Combine(_)
        | HolderOrder::ProveShare(_) => Err(Refusal::Internal),
    }
}

/// A share fetch, version 1 (a share sealed under the coordinator's master key, served as
/// stored) or version 2 (with the requester's reply key: a boxed share is opened and boxed again
/// to it). Returns the encoded reply.
async fn fetch(
    shared: &Arc<Shared>,
    remote: &NodeId,
    bytes: &[u8],
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    let now = super::now_ms();
    let allowed = shared
        .fetch_limiter
        .lock()
        .map(|mut l| l.allow(remote, now))
        .unwrap_or(false);
    if !allowed {
        return Err(Refusal::RateLimited);
    }
    let (ticket, reply_key) = match wire::probe_version(bytes, max).map_err(malformed)? {
        WIRE_VERSION_2 => {
            let request: BoxedFetch = wire::decode(bytes, max).map_err(malformed)?;
            (request.ticket, Some(request.reply_key))
        }
        _ => {
            let request: ShareFetch = wire::decode(bytes, max).map_err(malformed)?;
            (request.ticket, None)
        }
    };
    // The signature is checked once per distinct ticket (a forged one costs no store read).
    let ticket = shared
        .tickets
        .open(&ticket, &shared.coordinator)
        .map_err(Refusal::Ticket)?;
    let nonce = ticket.nonce;
    // One small read transaction, served from redb's page cache, run right here once the cheap
    // checks passed: a hop to a blocking thread and back costs more than the read
    // (docs/decisions/0008).
    let (local, epoch) = (shared.key.node_id(), ticket.epoch);
    let mut read = None;
    let checked = check_opened_ticket(
        ticket,
        &shared.coordinator,
        now,
        remote,
        &local,
        |session| match shared.store.epochs_and_share(session, epoch) {
            Ok((held, stored)) => {
                read = Some(Ok(stored));
                held
            }
            Err(e) => {
                read = Some(Err(e));
                Vec::new()
            }
        },
    );
    let stored = match read {
        Some(Err(e)) => {
            tracing::error!(error = %e, "share store read failed");
            return Err(Refusal::Internal);
        }
        Some(Ok(stored)) => stored,
        None => None,
    };
    checked.map_err(Refusal::Ticket)?;
    let held = stored.ok_or(Refusal::NotFound)?.share;
    match (held, reply_key) {
        (HeldShare::Sealed(sealed), None) => Ok(encode_reply(&Reply::ok(sealed))),
        (HeldShare::Sealed(sealed), Some(_)) => Ok(encode_reply(&BoxedFetchReply::ok(
            FetchedShare::Sealed(sealed),
        ))),
        (HeldShare::Boxed(_), None) => Err(Refusal::Malformed(
            "this share is boxed to its holder: fetch it with a reply key (wire version 2)".into(),
        )),
        (HeldShare::Boxed(b), Some(reply_key)) => {
            let boxed = holder_box::rebox_for_fetch(
                &shared.share_key,
                &b.slot,
                &b.boxed,
                &nonce,
                &reply_key,
                &mut rand_core::UnwrapErr(rand::rngs::SysRng),
            )
            .map_err(|e| {
                // Checked when it was stored: the share key or the store changed since.
                tracing::error!(session = %b.slot.session, epoch = b.slot.epoch, error = %e, "a stored boxed share does not open");
                Refusal::Internal
            })?;
            Ok(encode_reply(&BoxedFetchReply::ok(FetchedShare::Reboxed {
                index: b.slot.index,
                boxed,
            })))
        }
    }
}
