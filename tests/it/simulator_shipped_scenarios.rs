//! Every scenario shipped in `scenarios/` loads and passes validation, so a typo in one is caught
//! by the test suite rather than by an operator's 10-minute run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use simulator::Scenario;

#[test]
fn every_shipped_scenario_loads_and_validates() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(dir).expect("scenarios directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenario = Scenario::load(&path)
                .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
            loaded.push((scenario.name.clone(), scenario.peers));
        }
    }
    loaded.sort();
    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "all-at-once",
        "byzantine",
        "churn",
        "partition",
        "region-outage",
        "steady",
        "ten-thousand",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    assert!(loaded.iter().any(|(_, peers)| *peers == 10_000));
}
