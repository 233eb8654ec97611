//! Reading a scenario file and checking every range and cross-field rule of it.

use super::{Scenario, ScenarioError};
use std::path::Path;

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        let scenario: Self = toml::from_str(&text).map_err(|e| ScenarioError::Parse {
            path: shown,
            detail: e.to_string(),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks every range and cross-field rule.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |field: &str, reason: &str| {
            Err(ScenarioError::Invalid {
                field: field.into(),
                reason: reason.into(),
            })
        };
        let fraction = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.peers < 8 {
            return bad("peers", "at least 8 devices");
        }
        if self.peers > 100_000 {
            return bad("peers", "at most 100000 devices");
        }
        for (field, v) in [
            ("duration_s", self.duration_s),
            ("warmup_max_s", self.warmup_max_s),
            ("time_scale", self.time_scale),
            ("timing.heartbeat_s", self.timing.heartbeat_s),
            ("timing.contribution_s", self.timing.contribution_s),
            ("timing.attestation_s", self.timing.attestation_s),
            (
                "timing.attestation_validity_s",
                self.timing.attestation_validity_s,
            ),
            (
                "timing.attestation_answer_s",
                self.timing.attestation_answer_s,
            ),
            (
                "timing.heartbeat_max_age_s",
                self.timing.heartbeat_max_age_s,
            ),
            ("timing.rotation_period_s", self.timing.rotation_period_s),
            ("timing.credit_round_s", self.timing.credit_round_s),
        ] {
            if !positive(v) {
                return bad(field, "must be a positive number");
            }
        }
        for (field, v) in [
            ("timing.credit_hold_s", self.timing.credit_hold_s),
            ("timing.holder_audit_s", self.timing.holder_audit_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, "must be 0 or a positive number");
            }
        }
        if self.regions.is_empty() || self.operators.is_empty() {
            return bad("regions/operators", "at least one of each");
        }
        for w in self.regions.iter().chain(&self.operators) {
            if !positive(w.weight) || w.name.trim().is_empty() {
                return bad(
                    "regions/operators",
                    "names must be set and weights positive",
                );
            }
        }
        let b = &self.battery;
        if !fraction(b.mains_fraction) || b.min_percent > b.max_percent || b.max_percent > 100 {
            return bad(
                "battery",
                "mains_fraction in [0,1], 0 <= min_percent <= max_percent <= 100",
            );
        }
        let c = &self.churn;
        if !fraction(c.leave_per_min)
            || !fraction(c.permanent_fraction)
            || !fraction(c.join_per_min)
        {
            return bad("churn", "rates and fractions in [0,1]");
        }
        if c.leave_per_min > 0.0 && !positive(c.offline_mean_s) {
            return bad(
                "churn.offline_mean_s",
                "must be positive when devices leave",
            );
        }
        let mut byzantine = 0.0;
        for (kind, v) in self.byzantine.kinds() {
            if !fraction(v) {
                return bad(&format!("byzantine.{}", kind.name()), "a fraction in [0,1]");
            }
            byzantine += v;
        }
        if byzantine > 0.5 {
            return bad("byzantine", "the fractions add up to more than 0.5");
        }
        let s = &self.sessions;
        if let Err(e) = protocols::sharing::check_parameters(usize::from(s.n), usize::from(s.k)) {
            return bad("sessions.n/k", &e.to_string());
        }
        if usize::from(s.n) > self.peers / 2 {
            return bad("sessions.n", "at most half the devices");
        }
        if s.requesters == 0 || s.requesters > 64 || s.max_in_flight == 0 || s.max_live == 0 {
            return bad(
                "sessions",
                "1..=64 requesters, max_in_flight and max_live positive",
            );
        }
        let rate_ok = |v: f64| v.is_finite() && v >= 0.0;
        if !rate_ok(s.create_per_min) || !rate_ok(s.fetch_per_min) || s.ttl_s == 0 {
            return bad("sessions", "rates >= 0 and ttl_s > 0");
        }
        let names: Vec<&str> = self.regions.iter().map(|r| r.name.as_str()).collect();
        for p in &self.partitions {
            if !(p.at_s >= 0.0 && positive(p.duration_s)) || p.regions.is_empty() {
                return bad("partitions", "at_s >= 0, duration_s > 0, regions named");
            }
            if let Some(r) = p.regions.iter().find(|r| !names.contains(&r.as_str())) {
                return bad("partitions.regions", &format!("unknown region {r}"));
            }
        }
        for o in &self.outages {
            if !(o.at_s >= 0.0 && positive(o.duration_s)) {
                return bad("outages", "at_s >= 0 and duration_s > 0");
            }
            if !names.contains(&o.region.as_str()) {
                return bad("outages.region", &format!("unknown region {}", o.region));
            }
        }
        if !fraction(self.network.relay_fraction) || self.network.gossip_mesh_n == 0 {
            return bad("network", "relay_fraction in [0,1], gossip_mesh_n > 0");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scenario::Partition;

    #[test]
    fn every_shipped_scenario_parses_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 6, "only {seen} scenarios shipped");
    }

    #[test]
    fn a_misspelt_field_is_refused() {
        let err = toml::from_str::<Scenario>("peer = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn byzantine_fractions_over_one_half_are_refused() {
        let mut s = Scenario::default();
        s.byzantine.stuck = 0.3;
        s.byzantine.biased = 0.3;
        assert!(matches!(
            s.validate(),
            Err(ScenarioError::Invalid { field, .. }) if field == "byzantine"
        ));
    }

    #[test]
    fn a_partition_of_an_unknown_region_is_refused() {
        let mut s = Scenario::default();
        s.partitions.push(Partition {
            at_s: 1.0,
            duration_s: 1.0,
            regions: vec!["mars".into()],
        });
        assert!(s.validate().is_err());
    }
}
