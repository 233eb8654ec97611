#!/usr/bin/env bash
# Figures of the entropy path on this machine's own sources (README "Five minutes on real
# machines" on loopback): a coordinator with its defaults (2,048 credited bits from 3 peers),
# PEERS peers as shipped (every detected source, 1,000,000-sample assessment at first start, a
# contribution a minute) and a requester creating a session every second once the pool allows.
# Prints: seconds from `peer run` to the first session, sessions per minute after it, each
# source's model (device) against the coordinator's audit, credited bits per second per source
# kind, health-test alarms per hour per source, and contributions refused by reason.
# Usage: scripts/entropy-figures.sh [SECONDS=300] [PEERS=3]
set -euo pipefail
DURATION=${1:-300}
PEERS=${2:-3}
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p entroshard --bin entroshard
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/entroshard
TMP=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); MPORT=$(free_port)
PID_LINE=$($BIN coordinator init --data-dir "$TMP/c" --listen /ip4/127.0.0.1/tcp/$PORT \
  --listen /ip4/127.0.0.1/udp/$PORT/quic-v1 --metrics 127.0.0.1:$MPORT | grep '^peer id')
COORD=/ip4/127.0.0.1/tcp/$PORT/p2p/${PID_LINE#peer id }
RUST_LOG=info ENTROSHARD_EXIT_WITH_PARENT=$$ $BIN coordinator run --data-dir "$TMP/c" 2>"$TMP/c.log" &
while [ ! -S "$TMP/c/admin.sock" ]; do sleep 0.05; done
REGIONS=(eu-west us-east ap-south); OPERATORS=(alpha bravo charlie)
for i in $(seq 0 $((PEERS - 1))); do
  r=${REGIONS[$((i % 3))]}; o=${OPERATORS[$((i % 3))]}
  OUT=$($BIN peer init --data-dir "$TMP/p$i" --coordinator "$COORD" --region "$r" --operator "$o" \
        --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1 --metrics 127.0.0.1:$(free_port))
  $BIN coordinator enrol "$(echo "$OUT" | sed -n 's/^peer id //p')" --region "$r" --operator "$o" --data-dir "$TMP/c" >/dev/null
done
RID=$($BIN requester init --data-dir "$TMP/r" --coordinator "$COORD" | sed -n 's/^peer id //p')
$BIN coordinator requesters add "$RID" --data-dir "$TMP/c" >/dev/null
START=$(date +%s.%N)
for i in $(seq 0 $((PEERS - 1))); do
  RUST_LOG=info ENTROSHARD_EXIT_WITH_PARENT=$$ $BIN peer run --data-dir "$TMP/p$i" 2>"$TMP/p$i.log" &
done
FIRST=""; SESSIONS=0
END=$(echo "$START + $DURATION" | bc)
while [ "$(echo "$(date +%s.%N) < $END" | bc)" = 1 ]; do
  if $BIN session create --n 3 --k 2 --ttl 10m -o "$TMP/t.cbor" --data-dir "$TMP/r" >/dev/null 2>"$TMP/create.err"; then
    SESSIONS=$((SESSIONS + 1))
    if [ -z "$FIRST" ]; then
      FIRST=$(echo "$(date +%s.%N) - $START" | bc)
      $BIN fetch "$TMP/t.cbor" --format hex --data-dir "$TMP/r" >/dev/null
    fi
  fi
  sleep 1
done
NOW=$(date +%s.%N)
echo "entropy figures: $PEERS peers on this machine's own sources, coordinator defaults, $DURATION s"
if [ -n "$FIRST" ]; then
  AFTER=$(echo "$NOW - $START - $FIRST" | bc)
  printf 'first session %.1f s after `peer run`; %d sessions, %.2f per minute after the first\n' \
    "$FIRST" "$SESSIONS" "$(echo "($SESSIONS - 1) * 60 / $AFTER" | bc -l)"
else
  echo "no session in $DURATION s; last refusal: $(cat "$TMP/create.err")"
fi
echo
echo "device models (first start):"
for i in $(seq 0 $((PEERS - 1))); do
  $BIN entropy models --data-dir "$TMP/p$i" | sed "s/^/  p$i  /"
done
echo
echo "coordinator audits (source: H found, samples, estimator):"
sed 's/\x1b\[[0-9;]*m//g' "$TMP/c.log" \
  | sed -n 's/.*entropy audit node=\([0-9a-f]*\) source=\([^ ]*\) h=\([0-9.]*\) samples=\([0-9]*\) estimator=\(.*\)$/  \1 \2 \3 \4 \5/p' | sort | uniq -c | sort -rn | head -40
echo
M=$(curl -s "127.0.0.1:$MPORT/metrics")
echo "coordinator: credited bits (all peers) $(echo "$M" | awk '/^entroshard_credited_entropy_total/ {s+=$2} END {print s+0}') in $(echo "$NOW - $START" | bc | cut -d. -f1) s"
echo "$M" | grep -E '^entroshard_(intake_rejections_total|entropy_audits_total)' | sed 's/^/  /'
echo
echo "coordinator status (per peer and source: audit, claim, credited bits, refusals):"
$BIN coordinator status --data-dir "$TMP/c" | sed 's/^/  /'
echo
echo "health-test alarms per source (peer metrics: samples, failures):"
for i in $(seq 0 $((PEERS - 1))); do
  ADDR=$(sed -n 's/^metrics = "\(.*\)"/\1/p' "$TMP/p$i/peer.toml")
  curl -s "$ADDR/metrics" | grep -E '^entroshard_source_(samples|health_failures)_total' | sed "s/^/  p$i  /"
done
