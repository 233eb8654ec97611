//! The properties a run must show (fetch success, no wrong key, placement bounds, no honest
//! device blamed, every misbehaving device caught), each with the figure behind it.

use super::{Check, Report};

/// The checks of `r`, in the order `report.md` lists them.
pub(super) fn checks(r: &Report) -> Vec<Check> {
    let mut checks = vec![
        Check {
            name: "fetch success >= 99.9 %".into(),
            passed: r.fetch.operations > 0 && r.fetch.success_rate >= 0.999,
            detail: format!(
                "{} of {} ({:.3} %)",
                r.fetch.ok,
                r.fetch.operations,
                r.fetch.success_rate * 100.0
            ),
        },
        Check {
            name: "no wrong key accepted".into(),
            passed: r.wrong_keys_accepted == 0,
            detail: format!("{} wrong keys", r.wrong_keys_accepted),
        },
        Check {
            name: "no placement over the region or operator bound".into(),
            passed: r.placements.get("violations").copied().unwrap_or(0) == 0,
            detail: format!(
                "{} of {} placements",
                r.placements.get("violations").copied().unwrap_or(0),
                r.placements.get("checked").copied().unwrap_or(0)
            ),
        },
        Check {
            name: "no honest device quarantined for misbehaviour".into(),
            passed: r.honest_quarantined == 0,
            detail: format!(
                "{} (and {} quarantined while unreachable, lifted when they answer again)",
                r.honest_quarantined, r.honest_quarantined_unreachable
            ),
        },
        Check {
            name: "no honest holder named for a bad share".into(),
            passed: r.honest_named_bad_share == 0,
            detail: format!("{} honest holders", r.honest_named_bad_share),
        },
    ];
    for (kind, k) in &r.byzantine {
        if kind == "false_heartbeats" {
            checks.push(Check {
                name: format!("{kind}: claimed labels never used for placement"),
                passed: r.placements.get("violations").copied().unwrap_or(0) == 0,
                detail: format!(
                    "{} devices; placement uses enrolled labels (claimed mains power cannot be checked)",
                    k.devices
                ),
            });
        }
        if matches!(kind.as_str(), "tampered_shares" | "withholding") {
            checks.push(Check {
                name: format!("{kind}: every device that held a share detected"),
                passed: k.held_a_share_detected == k.held_a_share,
                detail: format!(
                    "{} of {} (of {} devices; the others never held a share), median {:.1} s",
                    k.held_a_share_detected, k.held_a_share, k.devices, k.time_to_detection_s.p50
                ),
            });
            continue;
        }
        let gone_first = if k.left_before_misbehaving > 0 {
            format!(
                "; {} left for good before their first lie reached the network",
                k.left_before_misbehaving
            )
        } else {
            String::new()
        };
        let mut never = if k.never_lied > 0 {
            format!("; {} still running never got a lie out", k.never_lied)
        } else {
            String::new()
        };
        if k.never_heard > 0 {
            never.push_str(&format!(
                "; {} never heard by the coordinator (no heartbeat arrived)",
                k.never_heard
            ));
        }
        checks.push(Check {
            name: format!("{kind}: every device that misbehaved detected"),
            passed: k.detected + k.left_before_misbehaving + k.never_lied + k.never_heard
                == k.devices,
            detail: format!(
                "{} of {}, median {:.1} s after it started{gone_first}{never}",
                k.detected, k.devices, k.time_to_detection_s.p50
            ),
        });
        if matches!(kind.as_str(), "biased" | "cloned" | "stuck") {
            checks.push(Check {
                name: format!("{kind}: nothing credited"),
                passed: k.credited_bits == 0,
                detail: format!("{} bits credited", k.credited_bits),
            });
        }
        if kind == "cloned" {
            checks.push(Check {
                name: "cloned: no honest original quarantined".into(),
                passed: r.clone_originals_quarantined == 0,
                detail: format!("{} originals", r.clone_originals_quarantined),
            });
        }
    }
    checks
}
