//! A holder audit planned and judged against real Feldman commitments and real proofs: the
//! orders each holder is sent, and the verdict on each pair of replies.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::core::holder_audits::HolderFault;
use crate::core::test_state::{NOW, session};
use protocols::identity::NodeKey;
use protocols::keys::SessionSecret;
use protocols::sealing::SealingMasterKey;
use protocols::share_proof::{self, ProofContext};
use protocols::sharing::VerifiedShare;
use protocols::wire::{FetchedShare, HolderCall, HolderOrder, ProvenShare, Refusal, Reply as Wire};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A boxed session on holders 1..=3 (threshold 2) with real commitments, and their shares.
fn dealt() -> (SessionRecord, Vec<VerifiedShare>) {
    let mut record = session(1, &[1, 2, 3]);
    let secret = SessionSecret::derive(&[1; 32], &[2; 32], &record.session).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let (shares, commitments) =
        protocols::sharing::split(&secret, &[1, 2, 3], 2, &mut rng).unwrap();
    record.commitments = commitments;
    (record, shares)
}

fn round(record: SessionRecord, fetch: Option<Vec<u8>>, restored: Option<u64>) -> Round {
    let key = NodeKey::from_secret_bytes(&[1; 32]);
    let master = SealingMasterKey::from_bytes([2; 32]);
    let signer = Signer {
        key: &key,
        master: &master,
    };
    Round::new(
        record,
        &signer,
        fetch,
        restored,
        &mut StdRng::seed_from_u64(3),
    )
}

/// The holder of `ask` proving `share` over the challenge it was sent, as encoded bytes.
fn proof(ask: &Ask, share: &VerifiedShare) -> Vec<u8> {
    let ctx = ProofContext {
        session: ask.slot.session,
        epoch: ask.slot.epoch,
        index: ask.slot.index,
        challenge: ask.challenge,
    };
    let proof = share_proof::prove(&ctx, &share.value_bytes(), &mut rand::rng()).unwrap();
    wire::encode(&Wire::ok(ProvenShare {
        session: ask.slot.session,
        epoch: ask.slot.epoch,
        index: ask.slot.index,
        proof,
    }))
}

/// A reboxed share of `index` served to the probe, as encoded bytes.
fn served(index: u8) -> Vec<u8> {
    wire::encode(&Wire::ok(FetchedShare::Reboxed {
        index,
        boxed: protocols::share_box::Boxed {
            ephemeral: [1; 32],
            sealed: vec![0; 48],
        },
    }))
}

fn not_found() -> Vec<u8> {
    wire::encode(&Wire::<FetchedShare>::refused(Refusal::NotFound))
}

#[test]
fn each_holder_of_a_boxed_session_is_sent_a_signed_proof_order_over_its_own_fresh_challenge() {
    let (record, _) = dealt();
    let r = round(record.clone(), Some(vec![1, 2, 3]), None);
    assert_eq!(r.asks().len(), 3);
    assert_eq!(r.fetch(), Some(&[1u8, 2, 3][..]));
    let mut challenges = Vec::new();
    for (ask, h) in r.asks().iter().zip(&record.holders) {
        assert_eq!(
            (ask.node, ask.slot.index, ask.slot.epoch),
            (h.node, h.index, 0)
        );
        let call: HolderCall = wire::decode(ask.order.as_ref().unwrap(), 1 << 16).unwrap();
        let HolderOrder::ProveShare(envelope) = call.order else {
            panic!("a proof order");
        };
        let order: protocols::wire::ProveShare = envelope
            .open(&NodeKey::from_secret_bytes(&[1; 32]).node_id())
            .unwrap();
        assert_eq!((order.challenge, order.then_delete), (ask.challenge, false));
        challenges.push(ask.challenge);
    }
    challenges.dedup();
    assert_eq!(challenges.len(), 3, "a challenge of its own each");
}

#[test]
fn a_session_dealt_before_share_keys_is_only_fetched_and_not_audited_without_a_ticket() {
    let (mut record, _) = dealt();
    record.boxed = false;
    assert!(round(record.clone(), None, None).asks().is_empty());
    let r = round(record, Some(vec![9]), None);
    assert_eq!(r.asks().len(), 3);
    assert!(r.asks().iter().all(|a| a.order.is_none()));
    let answer = r.judge_sealed(&r.asks()[0], None, Reply::NoAnswer("x".into()), NOW);
    assert!(matches!(answer, Answer::Silent(why) if why.contains("no master key")));
}

#[test]
fn a_holder_that_proves_its_share_and_serves_it_passes_and_one_that_withholds_it_is_named() {
    let (record, shares) = dealt();
    let r = round(record, Some(vec![1]), None);
    let ask = &r.asks()[0];
    let good = proof(ask, &shares[0]);
    let fetched = |bytes: Vec<u8>| Some(Reply::of_fetch(Ok(&bytes)));
    let passes = r.judge_proof(ask, Ok(&good), fetched(served(1)), NOW);
    assert!(matches!(passes, Answer::Verified), "{passes:?}");
    let withholds = r.judge_proof(ask, Ok(&good), fetched(not_found()), NOW);
    assert!(matches!(withholds, Answer::Fault(HolderFault::Withheld)));
    let wrong = proof(ask, &shares[1]);
    let forged = r.judge_proof(ask, Ok(&wrong), fetched(served(1)), NOW);
    assert!(matches!(forged, Answer::Fault(HolderFault::BadShare(_))));
    let other_slot = r.judge_proof(ask, Ok(&good), fetched(served(2)), NOW);
    assert!(matches!(
        other_slot,
        Answer::Fault(HolderFault::BadShare(_))
    ));
}

#[test]
fn silence_garbage_and_a_missing_probe_blame_nobody_and_say_why() {
    let (record, shares) = dealt();
    let r = round(record, None, None);
    let ask = &r.asks()[0];
    let away = r.judge_proof(ask, Err(&OrderError::BadHolderId), None, NOW);
    assert!(matches!(away, Answer::Silent(_)));
    let good = proof(ask, &shares[0]);
    let no_probe = r.judge_proof(ask, Ok(&good), None, NOW);
    assert!(matches!(no_probe, Answer::Silent(why) if why == "no ticket for the serving probe"));
    let garbage = Reply::of_fetch(Ok(&[0xff, 0x01]));
    assert!(matches!(&garbage, Reply::NoAnswer(why) if why.starts_with("undecodable reply")));
    let closed = OrderError::Request(peer::node::NodeError::Closed);
    let unanswered = Reply::of_fetch(Err(&closed));
    assert!(matches!(&unanswered, Reply::NoAnswer(why) if why == "node has shut down"));
    let judged = r.judge_proof(ask, Ok(&good), Some(garbage), NOW);
    assert!(matches!(judged, Answer::Silent(_)));
}

#[test]
fn after_a_restore_a_holder_without_the_recorded_epoch_is_silent_not_withholding() {
    let (record, shares) = dealt();
    let created = record.created_at_ms;
    let r = round(record, Some(vec![1]), Some(created));
    let ask = &r.asks()[0];
    let good = proof(ask, &shares[0]);
    let gone = r.judge_proof(ask, Ok(&good), Some(Reply::of_fetch(Ok(&not_found()))), NOW);
    assert!(matches!(gone, Answer::Silent(_)), "{gone:?}");
}
