#!/usr/bin/env bash
# Long run of the coordinator crash test: SIGKILL at POINTS points (default 100) during session
# distribution and rotation, each followed by a restart and the checks of
# tests/it/faults_coordinator_crash.rs. CI runs 5 points (every crash point between two actions is replayed in coordinator::core).
#
#   scripts/crash-points.sh [POINTS] [SEED]      (or: scripts/crash-points.sh --points 100)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--points" ]]; then shift; fi
points="${1:-100}"
[[ "$points" =~ ^[0-9]+$ ]] || { echo "usage: $0 [--points] POINTS [SEED]" >&2; exit 2; }
export ENTROSHARD_CRASH_POINTS="$points"
if [[ -n "${2:-}" ]]; then export ENTROSHARD_CRASH_SEED="$2"; fi
exec cargo test --locked -p entroshard --test it faults_coordinator_crash:: -- --nocapture
