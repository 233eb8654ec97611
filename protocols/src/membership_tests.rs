//! Membership certificate checks: each refusal named, the cache judging repeats by expiry alone.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::wire::WIRE_VERSION;

const NOW: u64 = 1_800_000_000_000;

fn coordinator() -> NodeKey {
    NodeKey::from_secret_bytes(&[1; 32])
}

fn member() -> NodeKey {
    NodeKey::from_secret_bytes(&[2; 32])
}

#[test]
fn a_coordinator_signed_certificate_vouches_for_its_node_until_expiry_and_skew() {
    let (c, m) = (coordinator(), member());
    let cert = issue(&c, m.node_id(), NOW);
    let expires = NOW + VALIDITY_MS;
    for at in [NOW, expires, expires + SKEW_MS] {
        assert_eq!(
            check(Some(&cert), &c.node_id(), &m.node_id(), at),
            Ok(expires)
        );
    }
}

#[test]
fn no_certificate_is_refused_as_missing() {
    let (c, m) = (coordinator(), member());
    assert_eq!(
        check(None, &c.node_id(), &m.node_id(), NOW),
        Err(CertRefusal::Missing)
    );
}

#[test]
fn a_certificate_signed_by_another_key_is_refused_as_forged() {
    let (c, m) = (coordinator(), member());
    // The member signs its own certificate, and a stranger claims to be the coordinator.
    let self_signed = issue(&m, m.node_id(), NOW);
    assert_eq!(
        check(Some(&self_signed), &c.node_id(), &m.node_id(), NOW),
        Err(CertRefusal::Forged)
    );
    let mut claimed = self_signed.clone();
    claimed.signer = c.node_id();
    assert_eq!(
        check(Some(&claimed), &c.node_id(), &m.node_id(), NOW),
        Err(CertRefusal::Forged)
    );
}

#[test]
fn a_certificate_with_its_expiry_changed_is_refused_as_forged() {
    let (c, m) = (coordinator(), member());
    let mut cert = issue(&c, m.node_id(), NOW);
    let mut body: MembershipCert = cert.open(&c.node_id()).unwrap();
    body.expires_at_ms = u64::MAX;
    cert.payload = crate::wire::encode(&body);
    assert_eq!(
        check(Some(&cert), &c.node_id(), &m.node_id(), NOW),
        Err(CertRefusal::Forged)
    );
}

#[test]
fn a_certificate_signed_under_another_context_is_refused_as_forged() {
    // A coordinator record (another signed payload type) is no certificate.
    let c = coordinator();
    let record = SignedEnvelope::seal(
        &c,
        &crate::wire::CoordinatorRecord {
            v: WIRE_VERSION,
            noise_static: [7; 32],
            issued_at_ms: NOW,
        },
    );
    assert_eq!(
        check(Some(&record), &c.node_id(), &member().node_id(), NOW),
        Err(CertRefusal::Forged)
    );
}

#[test]
fn another_nodes_certificate_is_refused_as_other_node() {
    let (c, m) = (coordinator(), member());
    let stranger = NodeKey::from_secret_bytes(&[3; 32]);
    let cert = issue(&c, m.node_id(), NOW);
    assert_eq!(
        check(Some(&cert), &c.node_id(), &stranger.node_id(), NOW),
        Err(CertRefusal::OtherNode)
    );
}

#[test]
fn a_certificate_past_expiry_and_skew_is_refused_as_expired() {
    let (c, m) = (coordinator(), member());
    let cert = issue(&c, m.node_id(), NOW);
    assert_eq!(
        check(
            Some(&cert),
            &c.node_id(),
            &m.node_id(),
            NOW + VALIDITY_MS + SKEW_MS + 1
        ),
        Err(CertRefusal::Expired)
    );
}

#[test]
fn a_member_uses_its_certificate_until_skew_before_expiry_and_renews_at_half_life() {
    let expires = NOW + VALIDITY_MS;
    assert!(usable(expires, NOW));
    assert!(usable(expires, expires - SKEW_MS - 1));
    assert!(!usable(expires, expires - SKEW_MS));
    assert!(!due_for_renewal(NOW, expires, NOW + VALIDITY_MS / 2 - 1));
    assert!(due_for_renewal(NOW, expires, NOW + VALIDITY_MS / 2));
    // What the member stops using, forwarders still accept: 2 × SKEW of clock difference.
    let cert = issue(&coordinator(), member().node_id(), NOW);
    let last_use = expires - SKEW_MS - 1;
    assert!(
        check(
            Some(&cert),
            &coordinator().node_id(),
            &member().node_id(),
            last_use + 2 * SKEW_MS
        )
        .is_ok()
    );
}

#[test]
fn the_cache_judges_a_known_certificate_by_expiry_and_checks_a_changed_one_in_full() {
    let (c, m) = (coordinator(), member());
    let mut admission = Admission::default();
    let cert = issue(&c, m.node_id(), NOW);
    let expires = NOW + VALIDITY_MS;
    assert_eq!(
        admission.check(Some(&cert), &c.node_id(), &m.node_id(), NOW),
        Ok(expires)
    );
    assert_eq!(admission.len(), 1);
    assert_eq!(
        admission.check(Some(&cert), &c.node_id(), &m.node_id(), NOW + 1),
        Ok(expires)
    );
    assert_eq!(
        admission.check(
            Some(&cert),
            &c.node_id(),
            &m.node_id(),
            expires + SKEW_MS + 1
        ),
        Err(CertRefusal::Expired)
    );
    // Same signature, payload changed: not the cached certificate, so checked in full.
    let mut changed = cert.clone();
    let mut body: MembershipCert = cert.open(&c.node_id()).unwrap();
    body.expires_at_ms = u64::MAX;
    changed.payload = crate::wire::encode(&body);
    assert_eq!(
        admission.check(Some(&changed), &c.node_id(), &m.node_id(), NOW),
        Err(CertRefusal::Forged)
    );
    // A cached certificate does not vouch for another author.
    let stranger = NodeKey::from_secret_bytes(&[3; 32]);
    assert_eq!(
        admission.check(Some(&cert), &c.node_id(), &stranger.node_id(), NOW),
        Err(CertRefusal::OtherNode)
    );
    // A renewed certificate replaces the cached one.
    let renewed = issue(&c, m.node_id(), NOW + VALIDITY_MS / 2);
    assert_eq!(
        admission.check(Some(&renewed), &c.node_id(), &m.node_id(), NOW),
        Ok(NOW + VALIDITY_MS / 2 + VALIDITY_MS)
    );
    assert_eq!(admission.len(), 1);
}

#[test]
fn the_cache_stays_bounded_and_drops_expired_authors_first() {
    let c = coordinator();
    let node = |i: usize| {
        let mut seed = [9u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        NodeKey::from_secret_bytes(&seed).node_id()
    };
    let mut admission = Admission::default();
    // Filled at NOW; the first half's certificates expire at NOW, the others an hour later.
    for i in 0..CACHED_AUTHORS {
        let issued = if i < CACHED_AUTHORS / 2 {
            NOW - VALIDITY_MS
        } else {
            NOW
        };
        let cert = issue(&c, node(i), issued);
        assert!(
            admission
                .check(Some(&cert), &c.node_id(), &node(i), NOW)
                .is_ok()
        );
    }
    assert_eq!(admission.len(), CACHED_AUTHORS);
    // Full: a new author past the first half's expiry makes room by dropping the expired.
    let later = NOW + SKEW_MS + 1;
    let newcomer = node(CACHED_AUTHORS);
    let cert = issue(&c, newcomer, later);
    assert!(
        admission
            .check(Some(&cert), &c.node_id(), &newcomer, later)
            .is_ok()
    );
    assert_eq!(admission.len(), CACHED_AUTHORS / 2 + 1);
}

#[test]
fn a_cached_certificate_vouches_for_its_authors_bare_messages_until_it_expires() {
    let (c, m) = (coordinator(), member());
    let mut admission = Admission::default();
    assert_eq!(
        admission.check(None, &c.node_id(), &m.node_id(), NOW),
        Err(CertRefusal::Missing)
    );
    let cert = issue(&c, m.node_id(), NOW);
    let expires = NOW + VALIDITY_MS;
    assert!(
        admission
            .check(Some(&cert), &c.node_id(), &m.node_id(), NOW)
            .is_ok()
    );
    assert_eq!(
        admission.check(None, &c.node_id(), &m.node_id(), NOW + 1),
        Ok(expires)
    );
    assert_eq!(
        admission.check(None, &c.node_id(), &m.node_id(), expires + SKEW_MS + 1),
        Err(CertRefusal::Expired)
    );
    let stranger = NodeKey::from_secret_bytes(&[3; 32]);
    assert_eq!(
        admission.check(None, &c.node_id(), &stranger.node_id(), NOW),
        Err(CertRefusal::Missing)
    );
}
