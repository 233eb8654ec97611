//! Misbehaving devices: what a lying device would run instead of (or beside) the shipped agent,
//! built from the real wire and sealing functions so the coordinator and requesters see exactly
//! what such a device would send.

use crate::ByzantineKind;
use crate::fleet::Copied;
use peer::agent::harvest::ReadyBlock;
use peer::node::{CONTRIBUTIONS_TOPIC, NodeHandle};
use peer::store::ShareStore;
use protocols::identity::NodeKey;
use protocols::wire::{
    Contribution, ContributionBody, SignedEnvelope, SourceAccounting, WIRE_VERSION,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Marks the moment a misbehaviour first reached the network (first call wins).
fn mark(since: &Mutex<Option<Instant>>) {
    if let Ok(mut s) = since.lock() {
        s.get_or_insert_with(Instant::now);
    }
}

/// A cloned device: hands each block its original has just published to its own agent, after
/// `delay`, so the copy always reaches the coordinator second. A block the original took but
/// did not publish (its agent dropped it) is not relayed: that would be fresh entropy, not a
/// clone. Which blocks went out is read from the original's publish counter: the agent takes
/// one block at a time and publishes or drops it before taking the next, so block N was
/// published exactly when the counter moved between its take and the next take (or now, when
/// there is no next take yet).
pub async fn relay_copies(
    mut copies: mpsc::Receiver<Copied>,
    blocks: mpsc::Sender<ReadyBlock>,
    delay: Duration,
    since: Arc<Mutex<Option<Instant>>>,
) {
    let mut queued: VecDeque<Copied> = VecDeque::new();
    loop {
        let copy = match queued.pop_front() {
            Some(c) => c,
            None => match copies.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        tokio::time::sleep_until((copy.taken_at + delay).into()).await;
        while let Ok(next) = copies.try_recv() {
            queued.push_back(next);
        }
        let count_after = queued
            .front()
            .filter(|next| Arc::ptr_eq(&next.published, &copy.published))
            .map(|next| next.count_at_take)
            .unwrap_or_else(|| copy.published.contributions_sent.get());
        if count_after > copy.count_at_take {
            if blocks.send(copy.block).await.is_err() {
                return;
            }
            // Handed to its agent, which publishes it with its next contribution.
            mark(&since);
        }
    }
}

/// A holder that alters every share stored on it shortly after it is written: a sealed share
/// (dealt before share keys) gets one ciphertext bit flipped, which the requester's AEAD check
/// catches; a share boxed to it is opened with its `share_key`, changed and boxed to itself
/// again, so it serves a share that opens but fails the commitments. Either way the requester
/// and the coordinator's audit must name the holder. Each alteration adds one to a byte rather
/// than flipping a bit: a device restarted after an outage starts this loop afresh and alters
/// its stored shares again, and a second flip would restore them.
pub async fn tamper_store(
    store: Arc<ShareStore>,
    share_key: protocols::share_box::BoxSecret,
    since: Arc<Mutex<Option<Instant>>>,
) {
    let share_key = Arc::new(share_key);
    let mut tampered = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let (s, done, own) = (store.clone(), tampered.clone(), share_key.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<Vec<_>, String> {
            let mut changed = Vec::new();
            for info in s.list().map_err(|e| e.to_string())? {
                let slot = (info.session, info.epoch);
                if done.contains(&slot) {
                    continue;
                }
                let Some(mut stored) = s
                    .get(&info.session, info.epoch)
                    .map_err(|e| e.to_string())?
                else {
                    continue;
                };
                match &mut stored.share {
                    peer::store::HeldShare::Sealed(sealed) => {
                        if let Some(byte) = sealed.ciphertext.first_mut() {
                            *byte = byte.wrapping_add(1);
                        }
                    }
                    peer::store::HeldShare::Boxed(b) => {
                        let context = protocols::holder_box::slot_context(&b.slot);
                        let Ok(value) = own.open(&context, &b.boxed) else {
                            continue;
                        };
                        let mut value = *value;
                        value[0] = value[0].wrapping_add(1);
                        b.boxed = protocols::share_box::box_to(
                            &own.public(),
                            &context,
                            &value,
                            &mut rand::rng(),
                        )
                        .map_err(|e| e.to_string())?;
                    }
                }
                s.delete_epoch(&info.session, info.epoch)
                    .map_err(|e| e.to_string())?;
                s.put_held(&stored.share, stored.expires_at_ms)
                    .map_err(|e| e.to_string())?;
                changed.push(slot);
            }
            Ok(changed)
        })
        .await;
        if let Ok(Ok(changed)) = result
            && !changed.is_empty()
        {
            mark(&since);
            tampered.extend(changed);
        }
    }
}

/// Bytes of one lie: four conditioned outputs' worth.
const LIE_BYTES: usize = 4 * protocols::entropy::conditioning::CONDITIONED_BYTES;

/// What a lying publisher needs.
pub struct Publisher {
    /// The device's node (its agent runs beside, without a contribution task).
    pub node: NodeHandle,
    /// The device's key: the lies are signed, it is the device's own voice.
    pub key: NodeKey,
    /// The coordinator's public Noise static key.
    pub coordinator_static: [u8; 32],
    /// Seconds between publications.
    pub interval: Duration,
    /// Set when the first lie is published.
    pub since: Arc<Mutex<Option<Instant>>>,
    /// Seed of its bits.
    pub seed: [u8; 32],
    /// Failed publications of the fleet's lying devices, by error.
    pub failures: Arc<Mutex<BTreeMap<String, u64>>>,
    /// The device's membership certificate, which its agent keeps: a lying device is enrolled,
    /// so relaying devices forward its lies to the coordinator.
    pub membership: peer::agent::embedded::MembershipView,
}

impl Publisher {
    async fn publish(&self, seq: u64, bits: &[u8]) -> Result<Vec<u8>, String> {
        // Claims full-entropy 8-bit samples (as a PRNG's output would look), 40 per output.
        let body = ContributionBody {
            v: WIRE_VERSION,
            conditioned: bits.to_vec(),
            accounting: SourceAccounting {
                source: "sim:0".into(),
                bits_per_sample: 8,
                raw_samples: 40 * (bits.len() / 32) as u64,
                h_millibits: 8000,
                estimator: "declared".into(),
            },
        };
        let sealed =
            peer::contribution::seal(&self.coordinator_static, &self.key.node_id(), seq, &body)
                .map_err(|e| e.to_string())?;
        let contribution = Contribution {
            v: WIRE_VERSION,
            seq,
            sent_at_ms: peer::agent::now_ms(),
            sealed,
            membership: self.membership.current(),
        };
        let bytes = SignedEnvelope::seal(&self.key, &contribution).to_bytes();
        self.republish(bytes.clone()).await?;
        Ok(bytes)
    }

    async fn republish(&self, bytes: Vec<u8>) -> Result<(), String> {
        self.node
            .publish(CONTRIBUTIONS_TOPIC, bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Sends lies of `kind` until aborted:
/// - `Biased`: conditioned-looking bytes whose accounting claims 8 bits per sample while the
///   device's sensor gives biased bits (P(1) = 0.6): the coordinator's entropy audit must
///   quarantine that source;
/// - `Replayed`: one genuine block, then that same signed message again (its sequence number is
///   old) and the same bits under fresh sequence numbers (the intake's replay check).
pub async fn publish_lies(kind: ByzantineKind, p: Publisher) {
    let mut rng = StdRng::from_seed(p.seed);
    let mut seq = peer::agent::now_ms().saturating_mul(1000);
    let mut genuine: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut round = 0u64;
    loop {
        let jitter = 0.8 + 0.4 * rng.random::<f64>();
        tokio::time::sleep(p.interval.mul_f64(jitter)).await;
        seq += 1;
        round += 1;
        let sent = match kind {
            ByzantineKind::Replayed => match &genuine {
                None => {
                    let mut bits = vec![0u8; LIE_BYTES];
                    rng.fill(&mut bits[..]);
                    match p.publish(seq, &bits).await {
                        Ok(envelope) => {
                            genuine = Some((bits, envelope));
                            Ok(false)
                        }
                        Err(e) => Err(e),
                    }
                }
                // The very same message again: gossipsub's duplicate cache drops it before any
                // application sees it, so it is sent but not a lie anyone could catch (not marked).
                Some((_, envelope)) if round.is_multiple_of(2) => {
                    p.republish(envelope.clone()).await.map(|()| false)
                }
                Some((bits, _)) => p.publish(seq, bits).await.map(|_| true),
            },
            _ => {
                let bits: Vec<u8> = (0..LIE_BYTES)
                    .map(|_| {
                        (0..8).fold(0u8, |byte, _| {
                            (byte << 1) | u8::from(rng.random::<f64>() < 0.6)
                        })
                    })
                    .collect();
                p.publish(seq, &bits).await.map(|_| true)
            }
        };
        match sent {
            Ok(true) => mark(&p.since),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(?kind, round, error = %e, "lie not published");
                if let Ok(mut failures) = p.failures.lock() {
                    *failures.entry(e).or_insert(0) += 1;
                }
            }
        }
    }
}
