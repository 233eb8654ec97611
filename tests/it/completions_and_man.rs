//! Shell completions and man pages as scripts/build-debs.sh generates them with a host build:
//! `entroshard completions bash|zsh|fish` and `entroshard man DIR` cover every subcommand an
//! operator types, leave out hidden ones and, for the device packages, the lab tools.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::cli::stdout;
use common::entroshard;

/// Subcommands every completion script and the man pages must know, nested ones included.
const SUBCOMMANDS: [&str; 8] = [
    "coordinator",
    "peer",
    "requester",
    "session",
    "fetch",
    "tunnel",
    "entropy",
    "unquarantine",
];

fn completions(args: &[&str]) -> String {
    let out = entroshard().arg("completions").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

#[test]
fn completion_scripts_name_every_subcommand_and_no_hidden_or_lab_one() {
    for (shell, marker) in [
        ("bash", "complete -F _entroshard"),
        ("zsh", "#compdef entroshard"),
        ("fish", "complete -c entroshard"),
    ] {
        let script = completions(&[shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        for hidden in ["session-writer", "completions", "bench"] {
            assert!(
                !script.contains(hidden),
                "{shell} completion offers {hidden}"
            );
        }
        let full = completions(&[shell, "--with-lab-tools"]);
        assert!(full.contains("bench"), "{shell} with lab tools lacks bench");
    }
}

#[test]
fn man_pages_cover_the_command_and_every_visible_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = entroshard().arg("man").arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name));
    let top = page("entroshard.1").unwrap();
    assert!(top.contains(".TH entroshard 1"), "{top}");
    for sub in SUBCOMMANDS.iter().take(7) {
        assert!(top.contains(sub), "entroshard.1 does not list {sub}");
    }
    for name in [
        "entroshard-peer-run.1",
        "entroshard-coordinator-run.1",
        "entroshard-coordinator-peers-unquarantine.1",
        "entroshard-fetch.1",
        "entroshard-session-create.1",
    ] {
        let text = page(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".SH SYNOPSIS"), "{name} has no synopsis");
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for absent in ["bench", "simulate", "completions", "session-writer"] {
        assert!(
            !names.iter().any(|n| n.contains(absent)),
            "a page for {absent}: {names:?}"
        );
    }
    let full = tempfile::tempdir().unwrap();
    let out = entroshard()
        .args(["man", "--with-lab-tools"])
        .arg(full.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(full.path().join("entroshard-bench.1").exists());
}
