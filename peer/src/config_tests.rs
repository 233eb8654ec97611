//! Tests for the configuration's textual forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn simulated_sources_parse_from_their_textual_forms() {
    let parse = |s: &str| s.parse::<SimulatedSourceConfig>().unwrap();
    assert_eq!(
        parse("biased:0.9:1"),
        SimulatedSourceConfig::Biased {
            p_one: 0.9,
            seed: 1
        }
    );
    assert_eq!(
        parse("correlated:4:0.5:7"),
        SimulatedSourceConfig::Correlated {
            bits: 4,
            p_repeat: 0.5,
            seed: 7
        }
    );
    assert_eq!(parse("stuck:3"), SimulatedSourceConfig::Stuck { value: 3 });
    assert_eq!(
        parse("walk:8:16:5"),
        SimulatedSourceConfig::RandomWalk {
            bits: 8,
            step: 16.0,
            seed: 5
        }
    );
    assert_eq!(
        parse("periodic:6:10.5:12:9"),
        SimulatedSourceConfig::Periodic {
            bits: 6,
            period: 10.5,
            noise: 12.0,
            seed: 9
        }
    );
    assert_eq!(
        parse("jitter:8:32:11"),
        SimulatedSourceConfig::JitterDeltas {
            bits: 8,
            spread: 32.0,
            seed: 11
        }
    );
}

#[test]
fn simulated_sources_that_are_malformed_or_declare_nothing_are_refused_and_named() {
    for bad in [
        "biased:1.5:1",
        "biased:1:1",
        "biased:0.5",
        "correlated:9:0.5:1",
        "walk:0:4:1",
        "walk:8:abc:1",
        "walk:8:0.25:1",
        "walk:8:inf:1",
        "walk:8:4:-1",
        "periodic:8:0:12:1",
        "periodic:8:10:0.1:1",
        "periodic:8:10:12",
        "jitter:8:0:1",
        "jitter:9:32:1",
        "noise",
    ] {
        let err = bad
            .parse::<SimulatedSourceConfig>()
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad), "{bad}: {err}");
        assert!(err.contains("walk:BITS:STEP:SEED"), "{bad}: {err}");
    }
}

#[test]
fn sensor_models_round_trip_through_the_config_file() {
    let sources = SourcesConfig {
        simulated: vec![
            "walk:8:16:1".parse().unwrap(),
            "periodic:8:10:12:2".parse().unwrap(),
            "jitter:8:32:3".parse().unwrap(),
        ],
        ..SourcesConfig::default()
    };
    let text = toml::to_string(&sources).unwrap();
    assert!(text.contains("kind = \"random_walk\""), "{text}");
    let back: SourcesConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, sources);
}

fn minimal_text(data_dir: &Path) -> String {
    format!(
        "coordinator = \"/ip4/127.0.0.1/tcp/7400/p2p/12D3KooWLbwY9UYf7ZXkU9NxYW7reLkwtWfk3PUY4q88fXQZBB5X\"\n\
         region = \"r\"\noperator = \"o\"\ndata_dir = {:?}\n",
        data_dir.display().to_string()
    )
}

fn minimal(data_dir: &Path) -> PeerConfig {
    toml::from_str(&minimal_text(data_dir)).unwrap()
}

#[test]
fn the_join_token_is_read_from_its_own_file_when_the_config_carries_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = minimal(dir.path());
    assert_eq!(config.join_token().unwrap(), None);
    std::fs::write(config.join_token_path(), "abcd\n").unwrap();
    assert_eq!(config.join_token().unwrap().as_deref(), Some("abcd"));
    let inline = PeerConfig {
        join_token: Some("ef".into()),
        ..config
    };
    assert_eq!(inline.join_token().unwrap().as_deref(), Some("ef"));
    assert!(
        !toml::to_string(&minimal(dir.path()))
            .unwrap()
            .contains("join_token")
    );
}

#[test]
fn an_unknown_key_is_refused_by_name_in_the_config_and_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peer.toml");
    let good = minimal_text(dir.path());
    for (extra, key) in [
        ("metrcs = \"127.0.0.1:1\"\n", "metrcs"),
        ("[sources]\ndetect_hardwre = false\n", "detect_hardwre"),
    ] {
        std::fs::write(&path, format!("{good}{extra}")).unwrap();
        let err = PeerConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("unknown field `{key}`")), "{err}");
    }
}

#[test]
fn a_natted_peer_reserves_on_the_coordinator_and_its_relays_unless_told_or_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let relay = "/ip4/100.64.2.2/tcp/4001/p2p/12D3KooWCwJTZGxJrpsBeZfavqd7YiuiuGMEwYJnEYwEriZaj2E3";
    let home = PeerConfig {
        listen: vec!["/ip4/10.1.0.11/tcp/4001".into()],
        relays: vec![relay.into()],
        ..minimal(dir.path())
    };
    let relays: Vec<String> = home
        .reservation_relays()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(relays, [home.coordinator.clone(), relay.to_string()]);
    // `auto` gives them up while AutoNAT finds the device public; `always` keeps them.
    assert!(home.reserve_unless_public());
    let never = PeerConfig {
        relay_reservation: RelayReservation::Never,
        ..home.clone()
    };
    assert!(never.reservation_relays().is_empty());
    let relay_itself = PeerConfig {
        relay_server: true,
        ..home.clone()
    };
    assert!(relay_itself.reservation_relays().is_empty());
    let loopback = PeerConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..home.clone()
    };
    assert!(loopback.reservation_relays().is_empty());
    let forced = PeerConfig {
        relay_reservation: RelayReservation::Always,
        ..loopback
    };
    assert_eq!(forced.reservation_relays().len(), 2);
    assert!(!forced.reserve_unless_public());
    let bad = PeerConfig {
        relays: vec!["/ip4/100.64.2.2/tcp/4001".into()],
        ..home
    };
    assert!(bad.validate().unwrap_err().contains("relay"));
}
