//! Gossip from peers handed to the core ([`crate::core::gossip`]) with the time it arrived;
//! what the core counts goes to the metrics.

use super::{Ctx, State, now_ms};
use crate::core::gossip::GossipRules;
use libp2p::PeerId;
use peer::node::GossipVerdict;

/// Handles one gossip message; returns the verdict for gossipsub.
pub(super) fn on_gossip(
    ctx: &Ctx,
    state: &mut State,
    topic: &str,
    author: Option<&PeerId>,
    data: &[u8],
) -> GossipVerdict {
    let rules = GossipRules {
        attestation_validity_ms: state.rules.sessions.attestation_validity_ms,
        contribution_max_age_ms: state.rules.contribution_max_age_ms,
        noise_static: &ctx.noise_static,
    };
    let author = author.and_then(peer::identity::node_id);
    let mut counts = Vec::new();
    let verdict = state
        .books()
        .handle_gossip(&rules, topic, author, data, now_ms(), &mut counts);
    ctx.metrics.count(counts);
    verdict
}

/// Credits held blocks whose duplicate window has closed (called from the loop's ticks and
/// before readiness is judged).
pub(super) fn settle_intake(ctx: &Ctx, state: &mut State) {
    let mut counts = Vec::new();
    state.books().settle(now_ms(), &mut counts);
    ctx.metrics.count(counts);
}
