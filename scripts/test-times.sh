#!/usr/bin/env bash
# Per-binary times of a `cargo test` run, slowest first, read from its combined output (stdout and
# stderr, as `.ci/run` keeps it): each `Running …` / `Doc-tests …` line of cargo paired with the
# `finished in …` of the libtest summary that follows it, and the tests libtest reported as
# running for over 60 s (the only per-test time a stable libtest prints); with FLEET_TIMES (the
# `fleet-times.tsv` the end-to-end tests append to in the build's `tmp/` directory, see
# `tests/common/fleet.rs`), the slowest tests that ran a fleet of processes, by how long each held
# the fleet slot. Reads files only: it runs nothing. Usage: scripts/test-times.sh LOG [FLEET_TIMES]
set -euo pipefail
log="${1:?usage: scripts/test-times.sh LOG [FLEET_TIMES]}"
fleet_times="${2:-}"
sorted="$(mktemp)"
trap 'rm -f "$sorted"' EXIT
awk '
    /^ *Running / {
        # "Running tests/it/main.rs (target/debug/deps/it-0123abcd)": the file and its binary.
        bin = $0; sub(/.*\//, "", bin); sub(/-[0-9a-f]+\)$/, "", bin)
        sub(/^ *Running /, ""); sub(/ \(.*\)$/, ""); unit = bin ": " $0; next
    }
    /^ *Doc-tests / { sub(/^ *Doc-tests /, ""); unit = "doc-tests " $0; next }
    /^test result: / && unit != "" {
        for (i = 1; i <= NF; i++) if ($i == "in") { t = $(i + 1); sub(/s$/, "", t) }
        for (i = 1; i <= NF; i++) if ($i == "passed;") n = $(i - 1)
        printf "%9.1f s  %5d passed  %s\n", t, n, unit
        unit = ""
    }
' "$log" | sort -rn >"$sorted"
echo "test binaries, slowest first (of $(wc -l <"$sorted"); $(awk '{s += $1} END {printf "%.1f", s}' "$sorted") s summed):"
head -n 12 "$sorted"
long=$(grep -E '^test .* has been running for over 60 seconds$' "$log" | sed -E 's/^test (.*) has been running.*/  \1/' || true)
if [ -n "$long" ]; then
    echo "tests libtest reported running for over 60 s:"
    echo "$long"
fi
if [ -n "$fleet_times" ] && [ -s "$fleet_times" ]; then
    echo "tests that ran a fleet, slowest first (of $(wc -l <"$fleet_times"); seconds holding the fleet slot, waiting for it):"
    sort -rn "$fleet_times" | head -n 15 | awk -F '\t' '{printf "%9.1f s  (waited %.1f s)  %s\n", $1, $2, $3}'
fi
