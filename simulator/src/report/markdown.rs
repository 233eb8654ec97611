//! `report.md`: the checks, a summary table and the plots, readable at a glance.

use super::Report;
use std::fmt::Write;

/// Renders the report; `plots` are (title, file stem) pairs written beside it.
pub fn render(r: &Report, plots: &[(String, String)]) -> String {
    let mut md = String::new();
    let s = &r.scenario;
    let _ = writeln!(md, "# Simulation report: {}\n", s.name);
    if !s.description.is_empty() {
        let _ = writeln!(md, "{}\n", s.description);
    }
    let _ = writeln!(
        md,
        "{} devices at the start, seed {}, {:.0} s run (one wall second stands for {} s of device life), \
         {:.0} s to start the devices, {:.0} s of warm-up until the pool could key the first session.\n",
        r.peers,
        s.seed,
        r.wall_s.get("run").copied().unwrap_or(0.0),
        s.time_scale,
        r.wall_s.get("starting_devices").copied().unwrap_or(0.0),
        r.wall_s.get("warm_up").copied().unwrap_or(0.0),
    );
    let _ = writeln!(
        md,
        "## Checks\n\n| property | held | figure |\n|---|---|---|"
    );
    for c in &r.checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            c.name,
            if c.passed { "yes" } else { "**NO**" },
            c.detail
        );
    }
    let f = &r.fetch;
    let q = &f.latency_ms;
    let _ = writeln!(md, "\n## Summary\n\n| figure | value |\n|---|---|");
    let rows: Vec<(String, String)> = vec![
        (
            "fetches (ok / all)".into(),
            format!(
                "{} / {} ({:.3} %)",
                f.ok,
                f.operations,
                f.success_rate * 100.0
            ),
        ),
        (
            "fetch failures by reason".into(),
            if f.failures_by_reason.is_empty() {
                "none".into()
            } else {
                f.failures_by_reason
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "fetch latency p50 / p90 / p99 / max".into(),
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} ms",
                q.p50, q.p90, q.p99, q.max
            ),
        ),
        (
            "fetches shed (too many in flight)".into(),
            f.shed.to_string(),
        ),
        (
            "wrong keys accepted".into(),
            r.wrong_keys_accepted.to_string(),
        ),
        ("sessions created".into(), r.sessions_created.to_string()),
        (
            "session creations refused".into(),
            format!("{:?}", r.session_create_failures),
        ),
        (
            "fewest running holders of any session".into(),
            format!("{} (k = {})", r.min_running_holders, s.sessions.k),
        ),
        (
            "samples with a session below k running holders".into(),
            r.samples_with_session_below_k.to_string(),
        ),
        (
            "rotations by cause".into(),
            format!("{:?}", r.rotations_by_cause),
        ),
        ("intake".into(), format!("{:?}", r.intake)),
        (
            "devices quarantined (honest for misbehaviour / honest while unreachable / clone originals)".into(),
            format!(
                "{} ({} / {} / {})",
                r.quarantines.len(),
                r.honest_quarantined,
                r.honest_quarantined_unreachable,
                r.clone_originals_quarantined
            ),
        ),
        (
            "churn".into(),
            format!(
                "{:.0} devices left ({:.1} % of the fleet), {:.0} for good, {:.0} returned, {:.0} joined",
                r.churn.get("devices_that_left").copied().unwrap_or(0.0),
                r.churn.get("fraction_that_left").copied().unwrap_or(0.0) * 100.0,
                r.churn.get("left_for_good").copied().unwrap_or(0.0),
                r.churn.get("returned").copied().unwrap_or(0.0),
                r.churn.get("joined").copied().unwrap_or(0.0),
            ),
        ),
        (
            "events dropped by nodes whose loop was behind (gossip / requests / other)".into(),
            r.node_events_dropped
                .iter()
                .map(|(who, d)| format!("{who}: {} / {} / {}", d.gossip, d.requests, d.other))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (
            "memory (RSS, /proc/self/status)".into(),
            format!(
                "coordinator alone {:.0} MiB, all devices up {:.0} MiB, peak {:.0} MiB: {:.0} KiB per device ({:.0} at peak)",
                r.memory.baseline_mib,
                r.memory.after_start_mib,
                r.memory.peak_mib,
                r.memory.per_device_kib_after_start,
                r.memory.per_device_kib_peak
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    if !r.byzantine.is_empty() {
        let _ = writeln!(
            md,
            "\n## Misbehaviour\n\n| kind | devices | detected | time to detection min / median / max (s) | quarantined | credited bits | caught by |\n|---|---|---|---|---|---|---|"
        );
        for (kind, k) in &r.byzantine {
            let t = &k.time_to_detection_s;
            let _ = writeln!(
                md,
                "| {kind} | {} | {} | {:.1} / {:.1} / {:.1} | {} | {} | {} |",
                k.devices,
                k.detected,
                t.min,
                t.p50,
                t.max,
                k.quarantined,
                k.credited_bits,
                k.how.join("; ")
            );
        }
    }
    if !r.events.is_empty() {
        let _ = writeln!(md, "\n## Faults applied\n");
        for e in &r.events {
            let _ = writeln!(md, "- {:.0} s: {}", e.t_s, e.what);
        }
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for (title, stem) in plots {
            let _ = writeln!(md, "### {title}\n\n![{title}]({stem}.svg)\n");
        }
    }
    md
}
