//! End-to-end: `entroshard bench --json` starts a coordinator and peers, measures, and prints one
//! JSON document whose figures are all positive.

use serde_json::Value;
use std::process::Command;

fn positive(doc: &Value, pointer: &str) -> f64 {
    let value = doc
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {doc:#}"));
    assert!(value > 0.0, "{pointer} is {value}, not positive");
    value
}

#[test]
fn a_short_bench_prints_positive_figures_as_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_entroshard"))
        .args([
            "bench",
            "--requests",
            "20",
            "--cold",
            "3",
            "--no-large",
            "--json",
        ])
        .output()
        .expect("the entroshard binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    for kind in ["warm", "cold"] {
        positive(&doc, &format!("/bare/{kind}/p50_ms"));
        positive(&doc, &format!("/bare/{kind}/p99_ms"));
    }
    assert_eq!(doc.pointer("/bare/warm/samples"), Some(&Value::from(20)));
    assert_eq!(doc.pointer("/bare/cold/samples"), Some(&Value::from(3)));

    assert_eq!(doc.pointer("/bare_fan_out/0/k"), Some(&Value::from(3)));
    for kind in ["warm", "cold"] {
        positive(&doc, &format!("/bare_fan_out/0/{kind}/p50_ms"));
    }

    let fetch = doc["fetch"].as_array().expect("fetch is a list");
    assert_eq!(fetch.len(), 1, "only (5,3) with --no-large: {fetch:?}");
    assert_eq!(
        (fetch[0]["n"].as_u64(), fetch[0]["k"].as_u64()),
        (Some(5), Some(3))
    );
    for kind in ["warm", "cold"] {
        for field in ["p50_ms", "p99_ms", "p50_ratio_to_bare", "p99_ratio_to_bare"] {
            positive(&doc, &format!("/fetch/0/{kind}/{field}"));
        }
    }

    positive(&doc, "/sessions/seconds");
    positive(&doc, "/sessions/created");
    positive(&doc, "/sessions/sessions_per_s");
    assert!(
        doc.pointer("/sessions/not_ready_refusals")
            .and_then(Value::as_u64)
            .is_some()
    );

    positive(&doc, "/rotation/median_ms");
    positive(&doc, "/rss/coordinator_kib");
    positive(&doc, "/rss/peer_kib");
    assert_eq!(doc.pointer("/rss/with_live_sessions"), Some(&Value::Null));
    assert_eq!(doc.pointer("/setup/peers"), Some(&Value::from(7)));
    assert!(
        stderr.contains("[bench]"),
        "no progress on stderr:\n{stderr}"
    );
}
