//! The relaying side's pure parts: reservations kept, moved and backed off; one circuit per relay.
#![allow(clippy::unwrap_used)]

use super::*;
use libp2p::core::transport::ListenerId;

fn circuit(i: u8) -> (PeerId, Multiaddr) {
    let id = PeerId::random();
    let addr: Multiaddr = format!("/ip4/100.64.{i}.2/tcp/4001/p2p/{id}/p2p-circuit")
        .parse()
        .unwrap();
    (id, addr)
}

const BACKOFF: Duration = Duration::from_secs(60);

#[test]
fn the_first_relays_up_to_the_bound_are_dialled_and_the_rest_wait() {
    let relays: Vec<_> = (1..=3).map(circuit).collect();
    let mut r = Reservations::new(relays.iter().map(|(_, c)| c.clone()).collect(), 2, BACKOFF);
    let now = Instant::now();
    let steps = r.steps(now, |_| false);
    assert_eq!(
        steps,
        vec![
            Step::Dial(relay_addr(&relays[0].1)),
            Step::Dial(relay_addr(&relays[1].1))
        ]
    );
    // Dials under way hold their places: nothing more is asked for.
    assert!(r.steps(now, |_| false).is_empty());
    // The third relay connecting for some other reason is not reserved on.
    assert_eq!(r.on_connected(&relays[2].0, now), None);
    assert_eq!(r.on_connected(&relays[0].0, now), Some(relays[0].1.clone()));
}

#[test]
fn a_reservation_that_ends_moves_to_the_next_relay_and_the_dead_one_waits_out_its_backoff() {
    let relays: Vec<_> = (1..=3).map(circuit).collect();
    let mut r = Reservations::new(relays.iter().map(|(_, c)| c.clone()).collect(), 2, BACKOFF);
    let now = Instant::now();
    let listener = ListenerId::next();
    r.listening(&relays[0].1, listener);
    r.listening(&relays[1].1, ListenerId::next());
    assert!(r.steps(now, |_| true).is_empty());
    assert_eq!(r.on_listener_closed(listener, now), Some(relays[0].0));
    assert_eq!(r.on_listener_closed(listener, now), None);
    // The next relay takes the free place; the first is down for the backoff.
    assert_eq!(
        r.steps(now, |_| false),
        vec![Step::Dial(relay_addr(&relays[2].1))]
    );
    assert!(r.on_dial_failed(&relays[2].0, now));
    assert!(r.steps(now + FIRST_BACKOFF / 2, |_| true).is_empty());
    // After the (first) backoff the first one (first in preference) is tried again.
    assert_eq!(
        r.steps(now + FIRST_BACKOFF, |_| true),
        vec![Step::Listen(relays[0].1.clone())]
    );
}

#[test]
fn a_holder_is_dialled_through_each_relay_once() {
    let (r1, c1) = circuit(1);
    let (_, c2) = circuit(2);
    let holder = PeerId::random();
    let via = |c: &Multiaddr, quic: bool| -> Multiaddr {
        let s = c.to_string();
        let s = if quic {
            s.replacen("/tcp/4001", "/udp/4001/quic-v1", 1)
        } else {
            s
        };
        format!("{s}/p2p/{holder}").parse().unwrap()
    };
    let direct: Multiaddr = "/ip4/10.1.0.11/udp/4001/quic-v1".parse().unwrap();
    let addrs = vec![
        direct.clone(),
        via(&c1, true),
        via(&c2, false),
        via(&c1, false),
    ];
    let kept = one_circuit_per_relay(addrs);
    assert_eq!(kept, vec![direct, via(&c1, true), via(&c2, false)]);
    assert!(kept[1].to_string().contains(&r1.to_string()));
}

#[test]
fn paused_reservations_are_given_up_and_not_asked_for_until_resumed() {
    let relays: Vec<_> = (1..=2).map(circuit).collect();
    let mut r = Reservations::new(relays.iter().map(|(_, c)| c.clone()).collect(), 2, BACKOFF);
    let now = Instant::now();
    let held = ListenerId::next();
    r.listening(&relays[0].1, held);
    assert_eq!(r.pause(), vec![held]);
    assert!(r.steps(now, |_| true).is_empty());
    assert_eq!(r.on_connected(&relays[1].0, now), None);
    // The closed listener is no longer a reservation.
    assert_eq!(r.on_listener_closed(held, now), None);
    r.resume();
    assert_eq!(r.steps(now, |_| true).len(), 2);
}

#[test]
fn a_failing_relay_waits_twice_as_long_after_each_failure_until_one_is_accepted() {
    let relays: Vec<_> = (1..=1).map(circuit).collect();
    let (relay, c) = relays[0].clone();
    let mut r = Reservations::new(vec![c.clone()], 1, Duration::from_secs(30));
    let mut now = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..6 {
        let listener = ListenerId::next();
        assert_eq!(r.steps(now, |_| true), vec![Step::Listen(c.clone())]);
        r.listening(&c, listener);
        // The relay refuses (no public address yet, say): the listener closes.
        assert_eq!(r.on_listener_closed(listener, now), Some(relay));
        let mut wait = Duration::ZERO;
        while r.steps(now + wait, |_| true).is_empty() {
            wait += Duration::from_millis(500);
        }
        waits.push(wait.as_secs());
        now += wait;
    }
    assert_eq!(waits, vec![2, 4, 8, 16, 30, 30]);
    // Accepted: the next failure waits the first backoff again.
    r.accepted(&relay);
    let listener = ListenerId::next();
    r.listening(&c, listener);
    r.on_listener_closed(listener, now);
    assert!(r.steps(now + FIRST_BACKOFF / 2, |_| true).is_empty());
    assert_eq!(
        r.steps(now + FIRST_BACKOFF, |_| true),
        vec![Step::Listen(c)]
    );
}

#[test]
fn a_dial_that_never_reports_back_is_given_up_after_the_backoff() {
    let relays: Vec<_> = (1..=2).map(circuit).collect();
    let mut r = Reservations::new(relays.iter().map(|(_, c)| c.clone()).collect(), 1, BACKOFF);
    let now = Instant::now();
    assert_eq!(r.steps(now, |_| false).len(), 1);
    assert!(r.steps(now + BACKOFF / 2, |_| false).is_empty());
    assert_eq!(
        r.steps(now + BACKOFF, |_| false),
        vec![Step::Dial(relay_addr(&relays[0].1))]
    );
    // A failed dial of a relay not being dialled changes nothing.
    assert!(!r.on_dial_failed(&relays[1].0, now));
}
