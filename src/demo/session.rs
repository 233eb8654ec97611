//! The coordinator and requester side of the in-process demo: derive, place, seal, ticket, fetch, rotate.

use super::{DemoArgs, Narrator, harvest::DemoPeer};
use anyhow::{Context, bail, ensure};
use coordinator::intake::Intake;
use protocols::identity::NodeKey;
use protocols::ids::{Epoch, NodeId, SessionId};
use protocols::keys::{SessionKey, SessionSecret};
use protocols::quorum::{PeerRecord, Power, QuorumPolicy, select_quorum};
use protocols::reshare::{Committed, Dealt, Placement, Planned};
use protocols::sealing::{self, SealedShare, SealingMasterKey, ShareSlot};
use protocols::sharing::{self, VerifiedShare};
use protocols::ticket::{OpeningKeyEntry, Ticket, TicketGrant, TicketHolder, check_ticket};
use protocols::wire::{self, SessionPolicy, SignedEnvelope, WIRE_VERSION};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const NOW_MS: u64 = 1_700_000_000_000;

/// What the holders store: sealed shares by (holder, session, epoch).
type Stores = BTreeMap<(NodeId, Epoch), SealedShare>;

struct Coordinator<'a> {
    key: NodeKey,
    master: SealingMasterKey,
    session: SessionId,
    policy_digest: [u8; 32],
    keys: &'a [NodeKey],
}

pub fn run<R: CryptoRng>(
    narrator: &mut Narrator,
    args: &DemoArgs,
    intake: &mut Intake,
    keys: &[NodeKey],
    peers: &[DemoPeer],
    os: &mut R,
) -> anyhow::Result<()> {
    let (n, k) = (usize::from(args.n), usize::from(args.k));
    let requester_a = NodeKey::generate(os);
    let requester_b = NodeKey::generate(os);
    let mut session_id = [0u8; 16];
    os.fill_bytes(&mut session_id);
    let policy = SessionPolicy {
        n: args.n,
        k: args.k,
        ttl_s: 3600,
        requesters: vec![requester_a.node_id(), requester_b.node_id()],
        label: "demo".into(),
    };
    let mut master = [0u8; 32];
    os.fill_bytes(&mut master);
    let coord = Coordinator {
        key: NodeKey::generate(os),
        master: SealingMasterKey::from_bytes(master),
        session: SessionId(session_id),
        policy_digest: Sha256::digest(wire::encode(&policy)).into(),
        keys,
    };

    let secret = narrator.step("HKDF: session secret from pool + OS randomness", || {
        let mut os_random = [0u8; 32];
        os.fill_bytes(&mut os_random);
        let (generated, receipt) = intake.draw(&os_random).map_err(anyhow::Error::msg)?;
        os.fill_bytes(&mut os_random);
        let secret =
            SessionSecret::derive(&generated, &os_random, &coord.session).context("zero scalar")?;
        let mut lines = vec![format!(
            "session {} — entropy receipt: {} bits from {} peers",
            coord.session,
            receipt.credited_bits,
            receipt.contributors.len()
        )];
        for c in &receipt.contributors {
            let name = keys
                .iter()
                .position(|k| k.node_id() == c.node)
                .map(|i| peers[i].name.clone())
                .unwrap_or_default();
            lines.push(format!("  {name:<8} {:>6} bits", c.credited_bits));
        }
        Ok((secret, lines))
    })?;

    let flagged = intake.flagged().clone();
    let flagged = &flagged;
    let table = peer_table(keys, peers);
    let holders = narrator.step(
        &format!(
            "quorum: {n} of {} devices (≤{} per region, ≤{} per operator)",
            peers.len(),
            n.saturating_sub(k),
            k.saturating_sub(1)
        ),
        || {
            let policy = QuorumPolicy::default().excluding(flagged.iter().copied());
            let quorum = select_quorum(&table, n, k, &policy, NOW_MS, os)?;
            let placements = placements(&quorum.holders);
            let mut lines = vec![describe_holders(&placements, keys, peers)];
            for node in flagged {
                lines.push(format!(
                    "excluded: {} (sent cloned entropy)",
                    short(node, keys)
                ));
            }
            Ok((placements, lines))
        },
    )?;

    let mut stores = Stores::new();
    let epoch0 = narrator.step("Feldman split + seal per holder + durable acks", || {
        let dealt = Dealt::fresh(coord.session, 0, &secret, holders.clone(), k, n, os)?;
        let committed = coord.distribute(dealt, &mut stores, os)?;
        Ok((
            committed,
            vec![format!(
                "{} sealed shares stored; {} commitments; epoch 0 committed",
                n, k
            )],
        ))
    })?;

    let key_a = narrator.step("requester A: ticket, open, verify, combine", || {
        let grant = coord.grant(&epoch0, &requester_a.node_id(), os);
        let (key, lines) = fetch(&coord, &grant, &requester_a.node_id(), &stores, k)?;
        Ok((key, lines))
    })?;
    narrator.step("requester B: its own ticket, same key", || {
        let grant = coord.grant(&epoch0, &requester_b.node_id(), os);
        let (key, mut lines) = fetch(&coord, &grant, &requester_b.node_id(), &stores, k)?;
        ensure!(key == key_a, "requester B rebuilt a different key");
        lines.push(format!("same key as A: fingerprint {}", key.fingerprint()));
        Ok(((), lines))
    })?;
    narrator.step("unauthorized requester presents A's ticket", || {
        let thief = NodeKey::generate(os);
        let grant = coord.grant(&epoch0, &requester_a.node_id(), os);
        let holder = holders[0].node;
        let refusal = check_ticket(
            &grant.ticket,
            &coord.key.node_id(),
            NOW_MS,
            &thief.node_id(),
            &holder,
            |_| vec![0],
        );
        match refusal {
            Err(reason) => Ok(((), vec![format!("holder refused: {reason}")])),
            Ok(_) => bail!("a holder accepted a ticket from the wrong requester"),
        }
    })?;
    narrator.step("tampered share in one holder's store", || {
        let victim = holders[0].node;
        if let Some(share) = stores.get_mut(&(victim, 0)) {
            share.ciphertext[0] ^= 0x01;
        }
        let grant = coord.grant(&epoch0, &requester_a.node_id(), os);
        let (key, lines) = fetch(&coord, &grant, &requester_a.node_id(), &stores, k)?;
        ensure!(key == key_a, "key differs after a tampered share");
        Ok(((), lines))
    })?;

    let epoch1 = narrator.step("rotation: new quorum, reshare from k shares, epoch 1", || {
        let policy = QuorumPolicy::default().excluding(flagged.iter().copied().chain([holders[0].node]));
        let quorum = select_quorum(&table, n, k, &policy, NOW_MS, os)?;
        let new_holders = placements(&quorum.holders);
        let old_shares = gather(&coord, &epoch0, &stores, k)?;
        let plan = Planned::new(coord.session, 0, epoch0.commitments().clone(), new_holders.clone(), k, n)?;
        let dealt = plan.deal(&old_shares, os)?;
        let committed = coord.distribute(dealt, &mut stores, os)?;
        let (session, old) = committed.deletable_epoch().context("a rotation must free the old epoch")?;
        let before = stores.len();
        stores.retain(|(_, e), _| !(session == coord.session && *e == old));
        ensure!(epoch0.commitments().0[0] == committed.commitments().0[0], "commitment 0 changed");
        Ok((committed, vec![
            describe_holders(&new_holders, keys, peers),
            format!("commitment 0 unchanged; epoch 0 deleted from old holders ({} shares removed)", before - stores.len()),
        ]))
    })?;
    narrator.step("requester A fetches from epoch 1", || {
        let grant = coord.grant(&epoch1, &requester_a.node_id(), os);
        let (key, mut lines) = fetch(&coord, &grant, &requester_a.node_id(), &stores, k)?;
        ensure!(key == key_a, "key changed across rotation");
        lines.push(format!(
            "same key after rotation: fingerprint {}",
            key.fingerprint()
        ));
        Ok(((), lines))
    })?;
    Ok(())
}

impl Coordinator<'_> {
    fn distribute<R: CryptoRng>(
        &self,
        mut dealt: Dealt,
        stores: &mut Stores,
        os: &mut R,
    ) -> anyhow::Result<Committed> {
        let holders: Vec<Placement> = dealt.deliveries().iter().map(|(p, _)| *p).collect();
        for (placement, share) in dealt.deliveries() {
            let slot = ShareSlot {
                session: dealt.session(),
                epoch: dealt.epoch(),
                holder: placement.node,
                index: placement.index,
            };
            let mut nonce = [0u8; 12];
            os.fill_bytes(&mut nonce);
            let sealed = sealing::seal(
                &self.master.share_key(&slot),
                slot,
                &share.value_bytes(),
                nonce,
            );
            stores.insert((placement.node, dealt.epoch()), sealed);
        }
        for p in &holders {
            dealt.acknowledge(&p.node)?;
        }
        dealt.commit().map_err(|e| anyhow::anyhow!("{}", e.1))
    }

    fn grant<R: CryptoRng>(
        &self,
        epoch: &Committed,
        requester: &NodeId,
        os: &mut R,
    ) -> TicketGrant {
        let mut nonce = [0u8; 16];
        os.fill_bytes(&mut nonce);
        let ticket = Ticket {
            v: WIRE_VERSION,
            coordinator: self.key.node_id(),
            session: self.session,
            epoch: epoch.epoch(),
            requester: *requester,
            holders: epoch
                .holders()
                .iter()
                .map(|p| TicketHolder {
                    node: p.node,
                    index: p.index,
                    addrs: vec![],
                })
                .collect(),
            commitments: epoch.commitments().clone(),
            policy_digest: self.policy_digest,
            issued_at_ms: NOW_MS,
            expires_at_ms: NOW_MS + 3_600_000,
            nonce,
        };
        let opening_keys = epoch
            .holders()
            .iter()
            .map(|p| OpeningKeyEntry {
                index: p.index,
                key: self.master.share_key(&self.slot(epoch.epoch(), p)),
            })
            .collect();
        TicketGrant {
            v: WIRE_VERSION,
            ticket: SignedEnvelope::seal(&self.key, &ticket),
            opening_keys,
        }
    }

    fn slot(&self, epoch: Epoch, p: &Placement) -> ShareSlot {
        ShareSlot {
            session: self.session,
            epoch,
            holder: p.node,
            index: p.index,
        }
    }
}

/// The coordinator gathers k shares of a committed epoch for resharing (it may open them: it is the dealer).
fn gather(
    coord: &Coordinator<'_>,
    epoch: &Committed,
    stores: &Stores,
    k: usize,
) -> anyhow::Result<Vec<VerifiedShare>> {
    let mut out = Vec::new();
    for p in epoch.holders() {
        let slot = coord.slot(epoch.epoch(), p);
        let Some(sealed) = stores.get(&(p.node, epoch.epoch())) else {
            continue;
        };
        let Ok(share) = sealing::open(&coord.master.share_key(&slot), &slot, sealed) else {
            continue;
        };
        if let Ok(v) = share.verify(epoch.commitments()) {
            out.push(v);
        }
        if out.len() == k {
            break;
        }
    }
    Ok(out)
}

/// A requester's fetch: each holder checks the ticket; the requester opens, verifies, combines.
fn fetch(
    coord: &Coordinator<'_>,
    grant: &TicketGrant,
    me: &NodeId,
    stores: &Stores,
    k: usize,
) -> anyhow::Result<(SessionKey, Vec<String>)> {
    let ticket: Ticket = grant.ticket.open(&coord.key.node_id())?;
    let mut shares = Vec::new();
    let mut lines = Vec::new();
    for holder in &ticket.holders {
        if shares.len() == k {
            break;
        }
        let held = |_: &SessionId| {
            stores
                .keys()
                .filter(|(n, _)| n == &holder.node)
                .map(|(_, e)| *e)
                .collect()
        };
        let checked = check_ticket(
            &grant.ticket,
            &coord.key.node_id(),
            NOW_MS,
            me,
            &holder.node,
            held,
        )?;
        let Some(sealed) = stores.get(&(holder.node, checked.ticket.epoch)) else {
            continue;
        };
        let key = grant
            .opening_keys
            .iter()
            .find(|e| e.index == holder.index)
            .context("grant lacks an opening key")?;
        let slot = ShareSlot {
            session: ticket.session,
            epoch: ticket.epoch,
            holder: holder.node,
            index: holder.index,
        };
        match sealing::open(&key.key, &slot, sealed)
            .map_err(anyhow::Error::from)
            .and_then(|s| Ok(s.verify(&ticket.commitments)?))
        {
            Ok(v) => shares.push(v),
            Err(e) => lines.push(format!(
                "share from holder {} rejected: {e}",
                short(&holder.node, coord.keys)
            )),
        }
    }
    let secret = sharing::combine(&shares, &ticket.commitments)?;
    let key = secret.user_key(&ticket.policy_digest);
    lines.push(format!(
        "{} shares verified against {} commitments; G·s = C0; key fingerprint {}",
        shares.len(),
        ticket.commitments.threshold(),
        key.fingerprint()
    ));
    Ok((key, lines))
}

fn peer_table(keys: &[NodeKey], peers: &[DemoPeer]) -> Vec<PeerRecord> {
    keys.iter()
        .zip(peers)
        .enumerate()
        .map(|(i, (key, peer))| PeerRecord {
            node: key.node_id(),
            region: peer.region.into(),
            operator: peer.operator.into(),
            attested: true,
            last_heartbeat_ms: NOW_MS,
            power: if i % 2 == 0 {
                Power::Mains
            } else {
                Power::Battery { percent: 80 }
            },
            free_store_slots: 64,
            uptime_ratio: 0.99,
            reachability: 1.0,
            rtt_ms: Some(5),
            shares_held: 0,
        })
        .collect()
}

fn placements(holders: &[NodeId]) -> Vec<Placement> {
    holders
        .iter()
        .zip(1u8..)
        .map(|(node, index)| Placement { node: *node, index })
        .collect()
}

fn short(node: &NodeId, keys: &[NodeKey]) -> String {
    keys.iter()
        .position(|k| &k.node_id() == node)
        .map(|i| format!("peer-{i}"))
        .unwrap_or_else(|| node.short())
}

fn describe_holders(placements: &[Placement], keys: &[NodeKey], peers: &[DemoPeer]) -> String {
    placements
        .iter()
        .map(|p| {
            let i = keys.iter().position(|k| k.node_id() == p.node).unwrap_or(0);
            format!(
                "#{}→{} ({}/{})",
                p.index, peers[i].name, peers[i].region, peers[i].operator
            )
        })
        .collect::<Vec<_>>()
        .join("  ")
}
