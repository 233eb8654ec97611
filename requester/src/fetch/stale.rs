//! When a fetch gives up on a ticket the answers show out of date (decision 0062).
//!
//! A holder named in the ticket that refuses with "ticket is for epoch e, this holder has
//! [e′ > e]" has stored a newer epoch of the session and deleted the ticket's: it deletes an old
//! share only after the newer epoch committed, so the coordinator has a newer ticket to give.
//! One that refuses as "not a holder" holds nothing of the session although the coordinator
//! named it: its share was deleted on the coordinator's order (a rotation moved the session off
//! it, as the region cut's repair does to old holders left out of the new quorum, or the session
//! was revoked) or its store was lost; either way the coordinator knows better than the ticket.
//! The ticket may still reach k, from old holders whose deletion is still owed, so this alone
//! does not end the fetch. It ends it when the holders that can still answer (asked and not yet
//! answered, or not asked yet) cannot make up k, or when they have had `grace` since the first
//! such refusal: a reachable holder answers within the fetch's request timeout, and the ones that
//! did not are dials to holders that are likely gone, which take tens of seconds to fail. A new
//! ticket costs one call to the coordinator (and when the ticket was current after all, the
//! renewed fetch waits as long as it must). Holders that were unreachable are not asked a second
//! time once the ticket is known out of date.

use super::HolderProblem;
use protocols::ids::Epoch;
use protocols::ticket::TicketRefusal;
use protocols::wire::Refusal;
use std::time::{Duration, Instant};

/// How long the holders still asked get to answer once the ticket is known out of date: the
/// fetch protocol's request timeout (`peer::node` bounds a fetch request to 3 s).
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// The newer epoch a holder's refusal proves, if it proves one.
pub(crate) fn newer_epoch(ticket_epoch: Epoch, problem: &HolderProblem) -> Option<Epoch> {
    match problem {
        HolderProblem::Refused(Refusal::Ticket(TicketRefusal::StaleEpoch { held, .. })) => {
            held.iter().copied().filter(|e| *e > ticket_epoch).max()
        }
        _ => None,
    }
}

/// Whether a holder's refusal says the ticket is out of date: `Some(Some(e))` a newer epoch `e`
/// held, `Some(None)` a named holder that holds nothing of the session.
pub(crate) fn out_of_date(ticket_epoch: Epoch, problem: &HolderProblem) -> Option<Option<Epoch>> {
    match problem {
        HolderProblem::Refused(Refusal::Ticket(TicketRefusal::NotAHolder)) => Some(None),
        _ => newer_epoch(ticket_epoch, problem).map(Some),
    }
}

/// What a fetch has learned of its ticket being out of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superseded {
    /// The newest epoch a holder said it has, if any said.
    pub newer: Option<Epoch>,
    /// When the first such refusal came.
    pub since: Instant,
}

impl Superseded {
    /// Adds one holder's answer to what is known (`None`: not known out of date yet).
    pub(crate) fn note(
        known: Option<Self>,
        ticket_epoch: Epoch,
        problem: &HolderProblem,
        now: Instant,
    ) -> Option<Self> {
        match (known, out_of_date(ticket_epoch, problem)) {
            (Some(k), Some(e)) => Some(Self {
                newer: k.newer.max(e),
                ..k
            }),
            (None, Some(newer)) => Some(Self { newer, since: now }),
            (known, None) => known,
        }
    }

    /// How long the fetch may still wait for an answer at `now`.
    pub(crate) fn left(&self, now: Instant, grace: Duration) -> Duration {
        (self.since + grace).saturating_duration_since(now)
    }
}

/// The answers so far, for [`give_up`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Shares verified.
    pub verified: usize,
    /// The ticket's threshold.
    pub need: usize,
    /// Holders asked that have not answered yet.
    pub in_flight: usize,
    /// Holders of the ticket not asked yet.
    pub not_asked: usize,
}

/// Whether the fetch stops and reports its ticket superseded at `now`.
pub(crate) fn give_up(
    known: Option<&Superseded>,
    tally: Tally,
    now: Instant,
    grace: Duration,
) -> bool {
    let Some(known) = known else {
        return false;
    };
    let can_still = tally
        .verified
        .saturating_add(tally.in_flight)
        .saturating_add(tally.not_asked);
    can_still < tally.need || known.left(now, grace).is_zero()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stale(ticket_epoch: Epoch, held: &[Epoch]) -> HolderProblem {
        HolderProblem::Refused(Refusal::Ticket(TicketRefusal::StaleEpoch {
            ticket_epoch,
            held: held.to_vec(),
        }))
    }

    const TWO_OF_FOUR: Tally = Tally {
        verified: 0,
        need: 2,
        in_flight: 0,
        not_asked: 0,
    };

    #[test]
    fn a_newer_epoch_or_a_named_holder_holding_nothing_shows_the_ticket_out_of_date() {
        assert_eq!(newer_epoch(0, &stale(0, &[1])), Some(1));
        assert_eq!(newer_epoch(1, &stale(1, &[0, 3, 2])), Some(3));
        // A holder behind the ticket (the newer epoch not stored yet) proves nothing.
        assert_eq!(newer_epoch(2, &stale(2, &[1])), None);
        assert_eq!(
            newer_epoch(0, &HolderProblem::Refused(Refusal::NotFound)),
            None
        );
        // A named holder that holds nothing of the session: out of date, no epoch known.
        let gone = HolderProblem::Refused(Refusal::Ticket(TicketRefusal::NotAHolder));
        assert_eq!(out_of_date(0, &gone), Some(None));
        assert_eq!(out_of_date(0, &stale(0, &[1])), Some(Some(1)));
        assert_eq!(out_of_date(2, &stale(2, &[1])), None);
        assert_eq!(
            out_of_date(0, &HolderProblem::Refused(Refusal::RateLimited)),
            None
        );
        assert_eq!(
            newer_epoch(0, &HolderProblem::Unreachable("Failed to dial".into())),
            None
        );
        let t = Instant::now();
        let first = Superseded::note(None, 0, &gone, t).unwrap();
        assert_eq!(first.newer, None);
        let later = t + Duration::from_secs(1);
        let second = Superseded::note(Some(first), 0, &stale(0, &[2]), later).unwrap();
        assert_eq!((second.newer, second.since), (Some(2), t));
        let third = Superseded::note(Some(second), 0, &gone, later).unwrap();
        assert_eq!(third, second);
        let unrelated = HolderProblem::Unreachable("timeout".into());
        assert_eq!(
            Superseded::note(Some(second), 0, &unrelated, later),
            Some(second)
        );
        assert_eq!(Superseded::note(None, 0, &unrelated, later), None);
    }

    #[test]
    fn a_ticket_not_known_superseded_is_never_given_up_here() {
        let t = Instant::now();
        assert!(!give_up(
            None,
            TWO_OF_FOUR,
            t + Duration::from_secs(3600),
            GRACE
        ));
    }

    #[test]
    fn a_superseded_ticket_is_given_up_at_once_when_the_holders_left_cannot_make_up_k() {
        let t = Instant::now();
        let known = Superseded {
            newer: Some(1),
            since: t,
        };
        // 2-of-4 after a region cut: two live holders refused (newer epoch), the two cut-off
        // ones were unreachable once: nobody is left to ask, no second round.
        assert!(give_up(Some(&known), TWO_OF_FOUR, t, GRACE));
        // One share verified, one holder still asked: it may bring the second.
        let one_left = Tally {
            verified: 1,
            in_flight: 1,
            ..TWO_OF_FOUR
        };
        assert!(!give_up(Some(&known), one_left, t, GRACE));
        // None verified, one asked and one not asked yet: enough to try while the grace lasts.
        let two_left = Tally {
            in_flight: 1,
            not_asked: 1,
            ..TWO_OF_FOUR
        };
        assert!(!give_up(Some(&known), two_left, t, GRACE));
        let one = Tally {
            in_flight: 1,
            ..TWO_OF_FOUR
        };
        assert!(give_up(Some(&known), one, t, GRACE));
    }

    #[test]
    fn a_superseded_ticket_whose_holders_left_do_not_answer_within_the_grace_is_given_up() {
        let t = Instant::now();
        let known = Superseded {
            newer: Some(1),
            since: t,
        };
        // Two holders cut off, their dials still running: they could make up k, but only
        // the grace since the proof is waited, not the dials' failure.
        let dials_running = Tally {
            in_flight: 2,
            ..TWO_OF_FOUR
        };
        assert!(!give_up(Some(&known), dials_running, t, GRACE));
        assert_eq!(
            known.left(t + Duration::from_secs(1), GRACE),
            GRACE - Duration::from_secs(1)
        );
        assert!(!give_up(
            Some(&known),
            dials_running,
            t + GRACE - Duration::from_millis(1),
            GRACE
        ));
        assert!(give_up(Some(&known), dials_running, t + GRACE, GRACE));
        assert!(known.left(t + GRACE * 2, GRACE).is_zero());
    }
}
