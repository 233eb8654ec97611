//! The placement core on virtual time, against real holders (the agent's own request handlers
//! over real redb share stores) and the real coordinator database, every crash point replayed.
//!
//! A run drives a machine action by action: writes go to the database, store and delete orders
//! to the holders' handlers, and answers come back in an order drawn from the run's seed; a
//! holder that is down never answers, so the machine's timer fires on virtual time. A crash
//! stops the run after any action (the machine is dropped, its unfinished work lost); the
//! restart does what the daemon does at start-up: retire pending epochs, then deliver every
//! owed deletion. After it: a session whose creation was acknowledged is recorded, and its
//! recorded holders rebuild the key from their stores; a rotation leaves the session on its
//! old or its new epoch, never neither; and no holder keeps a share the database does not list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{Action, Machine, Outcome, PlacementError, Write};
use protocols::ids::NodeId;
use protocols::sharing::{self, VerifiedShare};

use super::test_world::*;

#[tokio::test]
async fn no_order_sent_and_nothing_in_the_database_holds_a_share_of_a_created_or_rotated_session() {
    let mut w = World::new(5, 7);
    let record = created(&mut w, 4, 3).await;
    assert!(record.boxed && record.sealed_under.is_none());
    let next: Vec<NodeId> = w.nodes().into_iter().skip(1).collect();
    let keys = coordinator_keys();
    let mut p = rotation(&w, &keys, &record, &next);
    let run = w.drive(&mut p, None).await;
    assert_eq!(run.outcome, Some(Outcome::Committed));
    let rotated = run.committed.unwrap();
    let new_shares = w.recorded_shares(&rotated);
    assert_eq!(new_shares.len(), 4);
    // The rotation dealt nothing at the coordinator; the new epoch's shares (read back from
    // their holders) and the key they rebuild are looked for too.
    assert_eq!(w.dealt_plain.len(), 4, "one epoch of four shares dealt");
    let secret = sharing::combine(&new_shares, &rotated.commitments).unwrap();
    w.dealt_plain
        .extend(new_shares.iter().map(VerifiedShare::value_bytes));
    w.dealt_plain
        .push(*secret.user_key(&rotated.policy_digest).expose());
    for bytes in &w.sent {
        for plain in &w.dealt_plain {
            assert!(
                !bytes.windows(32).any(|x| x == plain),
                "an order carries a share's or the key's bytes"
            );
        }
    }
    // Every order sent was checked as it went (`step`); now the whole database, row by row.
    let rows = crate::db::fuzzing::raw_contents(&w.db).unwrap();
    assert!(!rows.is_empty());
    for (table, key, value) in rows {
        for plain in &w.dealt_plain {
            assert!(
                !value.windows(32).any(|x| x == plain) && !key.windows(32).any(|x| x == plain),
                "table {table} holds a share's bytes"
            );
        }
    }
}

#[tokio::test]
async fn a_creation_crashed_after_any_action_loses_no_acknowledged_session_and_leaks_no_share() {
    // Steps of a crash-free run bound the crash points.
    let total = {
        let mut w = World::new(3, 1);
        let nodes = w.nodes();
        let (dealt, record) = w.deal_session(&nodes, 2);
        let mut p = w.placement(dealt, record);
        w.drive(&mut p, None).await.steps
    };
    assert!(total >= 6, "{total} steps");
    let mut points = 0;
    for seed in 0..4u64 {
        for crash_after in 0..=total {
            let mut w = World::new(3, seed);
            let nodes = w.nodes();
            let (dealt, record) = w.deal_session(&nodes, 2);
            let (session, c0) = (record.session, dealt.commitments().0[0]);
            let mut p = w.placement(dealt, record);
            let run = w.drive(&mut p, Some(crash_after)).await;
            drop(p);
            w.restart().await;
            let context = format!("seed {seed}, crash after {crash_after} steps");
            let recorded = w.db.session(&session).unwrap();
            if let Some(acked) = &run.committed {
                let recorded = recorded
                    .as_ref()
                    .expect("an acknowledged session is recorded");
                assert_eq!(recorded, acked, "{context}");
            }
            if let Some(r) = &recorded {
                w.assert_rebuilds(r, &c0, &context);
            }
            w.assert_no_stray_share(&context);
            points += 1;
        }
    }
    assert!(points >= 24);
}

#[tokio::test]
async fn a_rotation_crashed_after_any_action_leaves_the_session_on_one_whole_epoch() {
    let mut points = 0;
    for seed in 0..4u64 {
        let total = {
            let mut w = World::new(5, seed);
            let before = created(&mut w, 3, 2).await;
            let nodes: Vec<NodeId> = w.nodes().into_iter().skip(2).collect();
            let keys = coordinator_keys();
            let mut p = rotation(&w, &keys, &before, &nodes);
            w.drive(&mut p, None).await.steps
        };
        for crash_after in 0..=total {
            let mut w = World::new(5, seed);
            let before = created(&mut w, 3, 2).await;
            let c0 = before.commitments.0[0];
            // Holders 2..5: one old holder stays, two are new.
            let nodes: Vec<NodeId> = w.nodes().into_iter().skip(2).collect();
            let keys = coordinator_keys();
            let mut p = rotation(&w, &keys, &before, &nodes);
            let run = w.drive(&mut p, Some(crash_after)).await;
            drop(p);
            w.restart().await;
            let context = format!("seed {seed}, crash after {crash_after} of {total} steps");
            let after =
                w.db.session(&before.session)
                    .unwrap()
                    .expect("still recorded");
            match &run.committed {
                Some(committed) => assert_eq!(&after, committed, "{context}"),
                None => assert!(
                    after.epoch == before.epoch || after.epoch == before.epoch + 1,
                    "{context}"
                ),
            }
            if after.epoch == before.epoch {
                assert_eq!(
                    after, before,
                    "{context}: a rolled-back rotation changed the record"
                );
            } else {
                assert_eq!(after.rotations, before.rotations + 1, "{context}");
            }
            w.assert_rebuilds(&after, &c0, &context);
            w.assert_no_stray_share(&context);
            points += 1;
        }
    }
    assert!(points >= 40, "{points} crash points");
}

#[tokio::test]
async fn a_holder_down_during_creation_is_left_out_and_owes_its_deletion() {
    let mut w = World::new(4, 7);
    let nodes = w.nodes();
    let (dealt, record) = w.deal_session(&nodes, 2);
    let c0 = dealt.commitments().0[0];
    w.down.insert(nodes[3]);
    let mut p = w.placement(dealt, record);
    let run = w.drive(&mut p, None).await;
    // min_acks = max(k, n - 1) = 3 of 4: the commit goes ahead on the answer window.
    assert_eq!(run.outcome, Some(Outcome::Committed));
    let record = run.committed.unwrap();
    assert_eq!(record.holders.len(), 3);
    assert!(!record.holders.iter().any(|h| h.node == nodes[3]));
    let owed = w.db.owed_deletions().unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].node, nodes[3]);
    w.down.clear();
    w.restart().await;
    w.assert_rebuilds(&record, &c0, "holder back");
    w.assert_no_stray_share("holder back");
}

#[tokio::test]
async fn too_few_acknowledgements_roll_the_creation_back_and_delete_what_was_stored() {
    let mut w = World::new(4, 8);
    let nodes = w.nodes();
    let (dealt, record) = w.deal_session(&nodes, 2);
    let session = record.session;
    w.down.extend([nodes[0], nodes[1]]);
    let mut p = w.placement(dealt, record);
    let run = w.drive(&mut p, None).await;
    assert!(
        matches!(run.outcome, Some(Outcome::RolledBack(_))),
        "{run:?}"
    );
    assert!(run.committed.is_none());
    assert!(w.db.session(&session).unwrap().is_none());
    // The two holders that stored were told to delete at once; the two down still owe it.
    let owed = w.db.owed_deletions().unwrap();
    assert_eq!(owed.len(), 2, "{owed:?}");
    w.assert_no_stray_share("rolled back");
    w.down.clear();
    w.restart().await;
}

#[tokio::test]
async fn a_failed_commit_write_rolls_the_epoch_back() {
    let mut w = World::new(3, 9);
    let nodes = w.nodes();
    let (dealt, record) = w.deal_session(&nodes, 2);
    let session = record.session;
    let mut p = w.placement(dealt, record);
    let mut outcome = None;
    let mut answers = Vec::new();
    let mut wake = None;
    let mut run = Run {
        committed: None,
        outcome: None,
        steps: 0,
    };
    // Carry out actions by hand, failing the commit write.
    while outcome.is_none() {
        match p.poll_action() {
            Some(Action::Write(Write::Commit { .. })) => p.handle_written(Err(disk_full()), w.now),
            Some(Action::Done(o)) => outcome = Some(o),
            Some(Action::Committed(_)) => panic!("reported committed"),
            Some(Action::Write(other)) => {
                let r = w.write(other);
                p.handle_written(r, w.now);
            }
            Some(Action::Send { id, node, bytes }) => {
                if let Some(reply) = w.deliver(node, bytes).await {
                    answers.push((id, reply));
                }
            }
            Some(Action::WakeAt(at)) => wake = Some(at),
            None => {
                if let Some((id, reply)) = answers.pop() {
                    p.handle_reply(id, Some(&reply), w.now);
                } else if let Some(at) = wake.take() {
                    p.handle_timeout(at);
                } else {
                    panic!("stalled");
                }
            }
        }
        run.steps += 1;
    }
    assert_eq!(
        outcome,
        Some(Outcome::RolledBack(PlacementError::CommitNotRecorded(
            disk_full()
        )))
    );
    assert!(w.db.session(&session).unwrap().is_none());
    assert!(w.db.pending_epochs().unwrap().is_empty());
    w.assert_no_stray_share("commit failed");
}
