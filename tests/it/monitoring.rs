//! Monitoring as an operator meets it, over HTTP: a running coordinator and its peers answer
//! `/health` at once and `/ready` with 503 and the reason until a session could be made; their
//! `/metrics` carry HELP and TYPE on every series, the latency histograms and the build info,
//! and pass `promtool check metrics`; the alert rules pass `promtool check rules` and their unit
//! tests; the Grafana dashboard parses, and the dashboard and the rules name only series the
//! daemons serve. (promtool policy: tests/common/promtool.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cluster::*;
use common::*;
use peer::telemetry::exposition::{self, Exposition, Format};
use protocols::wire::SessionPolicy;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn monitoring_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/monitoring")
        .join(name)
}

/// Every `entroshard_*` name in a PromQL expression (or a series selector).
fn series_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("entroshard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(monitoring_file("entroshard-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["title"], "entroshard");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() > 10));
    let mut exprs = Vec::new();
    walk(&dashboard, &mut exprs);
    exprs
}

/// Every series the alert rules and their unit tests name.
fn alert_series() -> Vec<String> {
    ["entroshard-alerts.yml", "entroshard-alerts.test.yml"]
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(monitoring_file(f)).unwrap();
            text.lines()
                .filter(|l| {
                    let l = l.trim_start();
                    l.starts_with("expr:") || l.starts_with("- series:")
                })
                .flat_map(series_names)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Names an exposition serves: its families and its samples (`x_bucket`, …).
fn served(expositions: &[&Exposition]) -> BTreeSet<String> {
    expositions
        .iter()
        .flat_map(|e| e.families.keys().chain(e.sample_names.iter()).cloned())
        .collect()
}

/// The names the dashboard and the rules use that `served` lacks.
fn unserved(served: &BTreeSet<String>) -> Vec<String> {
    let mut used: Vec<String> = dashboard_exprs()
        .iter()
        .flat_map(|e| series_names(e))
        .chain(alert_series())
        .collect();
    used.sort();
    used.dedup();
    assert!(used.len() > 20, "{used:?}");
    used.into_iter().filter(|n| !served.contains(n)).collect()
}

/// Both roles' expositions as a daemon builds them, without running one.
fn in_process_expositions() -> Vec<Exposition> {
    let mut node = prometheus_client::registry::Registry::default();
    node.register_collector(Box::new(Arc::new(peer::node::DroppedEvents::default())));
    [
        coordinator::metrics::CoordinatorMetrics::default().render(),
        peer::agent::metrics::PeerMetrics::default().render(),
        exposition::encode(&node, Format::Text),
    ]
    .iter()
    .map(|text| exposition::check(text).unwrap_or_else(|e| panic!("{e}\n{text}")))
    .collect()
}

#[test]
fn dashboard_and_alert_rules_name_only_series_the_daemons_serve() {
    let expositions = in_process_expositions();
    let missing = unserved(&served(&expositions.iter().collect::<Vec<_>>()));
    assert!(
        missing.is_empty(),
        "named by the dashboard or the alert rules but not served: {missing:?}"
    );
}

#[test]
fn alert_rules_pass_promtool_check_rules_and_their_unit_tests() {
    let rules = monitoring_file("entroshard-alerts.yml");
    if common::promtool::run_on(&["check", "rules"], &rules) {
        common::promtool::run_on(
            &["test", "rules"],
            &monitoring_file("entroshard-alerts.test.yml"),
        );
    }
}

/// Polls `/ready` at `addr` until it answers 200; panics with the last reason at the deadline.
async fn wait_ready(what: &str, addr: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let a = addr.to_string();
        let r = tokio::task::spawn_blocking(move || http_response(&a, "/ready", None))
            .await
            .unwrap();
        match r {
            Ok(r) if r.status == 200 => {
                assert_eq!(r.body, "ready\n");
                return;
            }
            Ok(r) => {
                assert_eq!(r.status, 503, "{what} /ready: {}", r.body);
                assert!(r.body.starts_with("not ready: "), "{}", r.body);
                assert!(Instant::now() < deadline, "{what} never ready: {}", r.body);
            }
            Err(e) => assert!(Instant::now() < deadline, "{what} /ready: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Scrapes `/metrics` as curl and promtool do (the text format) and checks it on both sides.
fn scrape(what: &str, addr: &str) -> (String, Exposition) {
    let r = http_response(addr, "/metrics", None).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type
    );
    let checked = exposition::check(&r.body).unwrap_or_else(|e| panic!("{what}: {e}\n{}", r.body));
    common::promtool::check_metrics(what, &r.body);
    (r.body, checked)
}

/// The sum of every sample named `name` (any labels) in `text`.
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_daemons_serve_health_ready_and_metrics_that_promtool_accepts() {
    let coord = spawn_coordinator(256, 3);
    let health = http_response(&coord.metrics, "/health", None).unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let not_ready = http_response(&coord.metrics, "/ready", None).unwrap();
    assert_eq!(not_ready.status, 503, "{}", not_ready.body);
    assert!(
        not_ready.body.starts_with("not ready: "),
        "{}",
        not_ready.body
    );

    // Three peers in three regions: the smallest session (2 of 3) fits.
    let peers = spawn_peers(&coord, &["eu-west", "us-east", "ap-south"]).await;
    for p in &peers {
        wait_ready("peer", &p.metrics).await;
    }
    wait_ready("coordinator", &coord.metrics).await;
    // Set with the verdict /ready just gave (a session drawn below may empty the pool again).
    let gauge = http_response(&coord.metrics, "/metrics", None)
        .unwrap()
        .body;
    assert_eq!(
        metric(&gauge, "entroshard_pool_ready"),
        Some(1.0),
        "{gauge}"
    );
    assert!(metric(&gauge, "entroshard_holders_eligible").is_some_and(|n| n >= 3.0));

    // A session and a fetch, so that every latency histogram has observed something.
    let a = authorised_requester(&coord).await;
    let policy = SessionPolicy {
        n: 3,
        k: 2,
        ttl_s: 600,
        requesters: vec![],
        label: "monitoring".into(),
    };
    let (session, _) = create(&a, &policy).await.unwrap();
    fetch_fresh(&a, session).await;

    let (text, coordinator) = scrape("coordinator", &coord.metrics);
    assert!(
        text.lines()
            .any(|l| l.starts_with("entroshard_build_info{") && l.contains("role=\"coordinator\"")),
        "{text}"
    );
    assert!(total(&text, "entroshard_session_create_duration_seconds_count") >= 1.0);
    assert!(total(&text, "entroshard_ticket_issue_duration_seconds_count") >= 1.0);
    assert!(
        coordinator
            .families
            .contains_key("entroshard_node_events_dropped_total")
    );

    let mut expositions = vec![coordinator];
    let mut fetches_served = 0.0;
    for p in &peers {
        let (text, peer) = scrape("peer", &p.metrics);
        assert!(text.contains("role=\"peer\""), "{text}");
        assert_eq!(metric(&text, "entroshard_coordinator_connected"), Some(1.0));
        assert!(metric(&text, "entroshard_sources_running").is_some_and(|n| n >= 1.0));
        fetches_served += total(&text, "entroshard_fetch_serve_duration_seconds_count");
        expositions.push(peer);
    }
    assert!(fetches_served >= 2.0, "a 2-of-3 fetch reads two holders");

    // A Prometheus server asks for OpenMetrics and gets it.
    let open = http_response(
        &coord.metrics,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .unwrap();
    assert!(
        open.content_type
            .starts_with("application/openmetrics-text")
    );
    assert!(open.body.ends_with("# EOF\n"));

    let missing = unserved(&served(&expositions.iter().collect::<Vec<_>>()));
    assert!(
        missing.is_empty(),
        "named by the dashboard or the alert rules but not served by the running daemons: \
         {missing:?}"
    );
}
