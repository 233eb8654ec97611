//! When a peer is ready (`GET /ready`): a connection to its coordinator is open and at least one
//! entropy source passes its health tests. A pure judgement over what the agent last saw.

use protocols::wire::{SourceHealth, SourceState};

/// `Ok` when the peer can contribute and serve; otherwise every reason it cannot, in one line.
pub fn judge(coordinator_connected: bool, sources: &[SourceHealth]) -> Result<(), String> {
    let mut reasons = Vec::new();
    if !coordinator_connected {
        reasons.push("no connection to the coordinator".to_string());
    }
    if !sources.iter().any(|s| s.state == SourceState::Healthy) {
        if sources.is_empty() {
            reasons.push("no entropy source has started".to_string());
        } else {
            let states: Vec<String> = sources
                .iter()
                .map(|s| {
                    let state = match s.state {
                        SourceState::Startup => "start-up tests",
                        SourceState::Healthy => "healthy",
                        SourceState::CutOff => "cut off by a health test",
                    };
                    format!("{} {state}", s.source)
                })
                .collect();
            reasons.push(format!(
                "no entropy source passes its health tests ({})",
                states.join(", ")
            ));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

/// Sources passing their continuous health tests.
pub fn running(sources: &[SourceHealth]) -> usize {
    sources
        .iter()
        .filter(|s| s.state == SourceState::Healthy)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, state: SourceState) -> SourceHealth {
        SourceHealth {
            source: name.into(),
            state,
            samples: 0,
            failures: 0,
        }
    }

    #[test]
    fn a_connected_peer_with_one_healthy_source_is_ready() {
        let sources = [
            source("jitter", SourceState::Healthy),
            source("hwrng", SourceState::CutOff),
        ];
        assert_eq!(judge(true, &sources), Ok(()));
        assert_eq!(running(&sources), 1);
    }

    #[test]
    fn a_peer_without_its_coordinator_or_a_healthy_source_says_which() {
        let sources = [
            source("jitter", SourceState::Startup),
            source("hwrng", SourceState::CutOff),
        ];
        assert_eq!(
            judge(false, &sources),
            Err(
                "no connection to the coordinator; no entropy source passes its health tests \
                 (jitter start-up tests, hwrng cut off by a health test)"
                    .into()
            )
        );
        assert_eq!(
            judge(true, &[]),
            Err("no entropy source has started".into())
        );
    }
}
