#!/usr/bin/env bash
# Measures peer and coordinator RSS and CPU on loopback: a coordinator and N peers (release
# build), contributing every INTERVAL seconds, observed for SECONDS seconds.
# Usage: scripts/measure-peers.sh [SECONDS=120] [PEERS=3] [INTERVAL=60]
# Peers run on this machine's own sources (each assessed at its first start).
# PEER_ARGS adds `peer init` options (e.g. PEER_ARGS=--low-memory); the environment, such as
# MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 (as the packaged unit sets), reaches every
# daemon. WARMUP (default 5) seconds pass between the peers' start and the measurement: a peer's
# first start assesses its sources (tens of seconds for the slow ones), which is not idle.
set -euo pipefail
SECONDS_TO_RUN=${1:-120}
PEERS=${2:-3}
INTERVAL=${3:-60}
cd "$(dirname "$0")/.."
# PROFILE=dist measures the binary that ships (LTO, stripped, without the lab tools; decision
# 0044); FEATURES=lab adds them back.
PROFILE=${PROFILE:-release}
FEATURE_ARGS=()
if [ "$PROFILE" = dist ] && [ "${FEATURES:-}" != lab ]; then FEATURE_ARGS=(--no-default-features); fi
cargo build --profile "$PROFILE" --locked -q -p entroshard --bin entroshard "${FEATURE_ARGS[@]}"
BIN=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/entroshard
TMP=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PID_LINE=$($BIN coordinator init --data-dir "$TMP/c" --listen /ip4/127.0.0.1/tcp/$PORT --listen /ip4/127.0.0.1/udp/$PORT/quic-v1 | grep '^peer id')
COORD=/ip4/127.0.0.1/tcp/$PORT/p2p/${PID_LINE#peer id }
RUST_LOG=warn $BIN coordinator run --data-dir "$TMP/c" 2>"$TMP/c.log" &
COORD_PID=$!
while [ ! -S "$TMP/c/admin.sock" ]; do sleep 0.05; done
PIDS=()
for i in $(seq 1 "$PEERS"); do
  OUT=$($BIN peer init --data-dir "$TMP/p$i" --coordinator "$COORD" --region r$((i % 3)) --operator o$((i % 3)) \
        --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1 \
        --contribution-interval "$INTERVAL" --heartbeat-interval 15 ${PEER_ARGS:-})
  $BIN coordinator enrol "$(echo "$OUT" | sed -n 's/^peer id //p')" --region r$((i % 3)) --operator o$((i % 3)) --data-dir "$TMP/c" >/dev/null
  RUST_LOG=warn $BIN peer run --data-dir "$TMP/p$i" 2>"$TMP/p$i.log" &
  PIDS+=($!)
done
sleep "${WARMUP:-5}"
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
declare -A START
for p in "$COORD_PID" "${PIDS[@]}"; do START[$p]=$(cpu "$p"); done
sleep "$SECONDS_TO_RUN"
HZ=$(getconf CLK_TCK)
# rss = anon (heap, stacks: private to the process) + file (binary and libraries: clean pages,
# shared with every process mapping the same files, dropped under memory pressure).
printf '%-12s %8s %9s %9s %10s\n' process rss_mib anon_mib file_mib cpu_pct
for p in "$COORD_PID" "${PIDS[@]}"; do
  NAME=peer; [ "$p" = "$COORD_PID" ] && NAME=coordinator
  RSS=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$p/status")
  ANON=$(awk '/RssAnon/ {printf "%.1f", $2/1024}' "/proc/$p/status")
  FILE=$(awk '/RssFile/ {printf "%.1f", $2/1024}' "/proc/$p/status")
  USED=$(( $(cpu "$p") - START[$p] ))
  printf '%-12s %8s %9s %9s %10s\n' "$NAME" "$RSS" "$ANON" "$FILE" "$(awk -v u="$USED" -v hz="$HZ" -v s="$SECONDS_TO_RUN" 'BEGIN {printf "%.2f", 100*u/hz/s}')"
done
