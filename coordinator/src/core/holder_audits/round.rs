//! One holder audit of a session's current epoch, planned and judged here and carried out by
//! the driver (docs/protocol/holder-audits.md): for a session boxed to its holders, a
//! `ProveShare` with a fresh challenge to each holder and a serving probe (a fetch with a ticket
//! naming the coordinator whose reply key nobody holds, so the answer shows the holder serves
//! without showing its share); for a session dealt before share keys, a fetch of each sealed
//! share, opened with the master key that sealed it. Each holder's replies become one [`Answer`].

use super::{Answer, Reply, both, excuse_after_restore, judge, judge_serving};
use crate::core::errors::OrderError;
use crate::core::orders::Signer;
use crate::db::SessionRecord;
use protocols::ids::NodeId;
use protocols::sealing::{ShareOpeningKey, ShareSlot};
use protocols::share_box::BoxPublic;
use protocols::wire::{self, BoxedFetch, BoxedFetchReply, SignedEnvelope, WIRE_VERSION_2};

/// What to send one holder.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The holder.
    pub node: NodeId,
    /// Its slot of the epoch audited.
    pub slot: ShareSlot,
    /// The encoded `ProveShare` order to send it (a session boxed to its holders), or `None`
    /// (a session dealt before share keys: only the fetch).
    pub order: Option<Vec<u8>>,
    challenge: [u8; 32],
}

/// One audit: the asks, and the fetch every holder is sent too.
#[derive(Debug)]
pub struct Round {
    record: SessionRecord,
    restored_backup_ms: Option<u64>,
    fetch: Option<Vec<u8>>,
    asks: Vec<Ask>,
}

/// The encoded version-2 fetch of `ticket`'s share, boxed back to `reply_key` (a key nobody
/// holds for the serving probe; sealed shares are served as stored).
pub fn fetch_request(ticket: SignedEnvelope, reply_key: BoxPublic) -> Vec<u8> {
    wire::encode(&BoxedFetch {
        v: WIRE_VERSION_2,
        ticket,
        reply_key,
    })
}

impl Reply {
    /// A holder's answer to a fetch, as received (`Err`: why there was none).
    pub fn of_fetch(raw: Result<&[u8], &OrderError>) -> Reply {
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => return Reply::NoAnswer(e.to_string()),
        };
        match wire::decode::<BoxedFetchReply>(raw, peer::node::Protocol::Fetch.limits().1) {
            Err(e) => Reply::NoAnswer(format!("undecodable reply: {e}")),
            Ok(r) => match r.result {
                Ok(fetched) => Reply::Fetched(fetched),
                Err(refusal) => Reply::Refused(refusal),
            },
        }
    }
}

impl Round {
    /// Plans the audit of `record` (its holders already narrowed to those to ask): `fetch` is
    /// the fetch every holder is sent (see [`fetch_request`]; `None` when no ticket could be
    /// made: a boxed session's holders are then only asked for proofs, a sealed session's not
    /// at all). `rng` draws the challenges; `restored_backup_ms`: the backup the database was
    /// restored from, if any (see [`excuse_after_restore`]).
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        record: SessionRecord,
        signer: &Signer<'_>,
        fetch: Option<Vec<u8>>,
        restored_backup_ms: Option<u64>,
        rng: &mut R,
    ) -> Self {
        let asks = if record.boxed || fetch.is_some() {
            record
                .holders
                .iter()
                .map(|h| {
                    let mut challenge = [0u8; 32];
                    let mut order = None;
                    if record.boxed {
                        rng.fill_bytes(&mut challenge);
                        order = Some(signer.prove_order(
                            record.session,
                            record.epoch,
                            challenge,
                            false,
                        ));
                    }
                    let slot = ShareSlot {
                        session: record.session,
                        epoch: record.epoch,
                        holder: h.node,
                        index: h.index,
                    };
                    Ask {
                        node: h.node,
                        slot,
                        order,
                        challenge,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Round {
            record,
            restored_backup_ms,
            fetch,
            asks,
        }
    }

    /// The session audited.
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// What to send each holder.
    pub fn asks(&self) -> &[Ask] {
        &self.asks
    }

    /// The fetch to send every holder, if any.
    pub fn fetch(&self) -> Option<&[u8]> {
        self.fetch.as_deref()
    }

    /// Judges a holder of a boxed session at `now_ms` on its answer to the `ProveShare`
    /// (`Err`: why there was none) and its reply to the serving probe (`None`: none was sent).
    pub fn judge_proof(
        &self,
        ask: &Ask,
        proof: Result<&[u8], &OrderError>,
        served: Option<Reply>,
        now_ms: u64,
    ) -> Answer {
        let proof = match proof {
            Err(e) => Reply::NoAnswer(e.to_string()),
            Ok(raw) => Reply::of_proof(Some(raw)),
        };
        let proof = self.judge_one(ask, None, &ask.challenge, proof, now_ms);
        let served = match served {
            None => Answer::Silent("no ticket for the serving probe".into()),
            Some(reply) => {
                let reply = excuse_after_restore(&self.record, reply, self.restored_backup_ms);
                judge_serving(&self.record, &ask.slot, reply, now_ms)
            }
        };
        both(proof, served)
    }

    /// Judges a holder of a session dealt before share keys at `now_ms` on the sealed share it
    /// served, opened under `key` (`None`: no master key in force opens the session).
    pub fn judge_sealed(
        &self,
        ask: &Ask,
        key: Option<&ShareOpeningKey>,
        served: Reply,
        now_ms: u64,
    ) -> Answer {
        match key {
            Some(key) => self.judge_one(ask, Some(key), &[0; 32], served, now_ms),
            None => Answer::Silent("no master key in force opens this session".into()),
        }
    }

    fn judge_one(
        &self,
        ask: &Ask,
        key: Option<&ShareOpeningKey>,
        challenge: &[u8; 32],
        reply: Reply,
        now_ms: u64,
    ) -> Answer {
        let reply = excuse_after_restore(&self.record, reply, self.restored_backup_ms);
        judge(&self.record, &ask.slot, key, challenge, reply, now_ms)
    }

    /// Logs each holder that failed the audit or did not answer.
    pub fn report(&self, answers: &[(NodeId, Answer)]) {
        let record = &self.record;
        for (node, answer) in answers {
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
    }
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;
