#!/usr/bin/env bash
# Runs the aarch64 and armv7 peers under qemu-user in the loopback mesh next to native peers
# (tests/it/pi_emulated_mesh.rs): cross-builds them first (scripts/cross-build.sh), installs
# Debian's qemu-user if missing, then runs the opt-in test and prints how long it took.
# Usage: scripts/pi-emulated-mesh.sh        (PROFILE=release for a faster, non-LTO build)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dist}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if ! command -v qemu-aarch64 >/dev/null || ! command -v qemu-arm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user
fi
PROFILE=$PROFILE scripts/cross-build.sh aarch64 armv7
export ENTROSHARD_AARCH64_BIN=$TARGET_DIR/aarch64-unknown-linux-gnu/$PROFILE/entroshard
export ENTROSHARD_ARMV7_BIN=$TARGET_DIR/armv7-unknown-linux-gnueabihf/$PROFILE/entroshard
start=$(date +%s)
cargo test --locked --test it pi_emulated_mesh:: -- --ignored --nocapture
echo "emulated mesh test: $(( $(date +%s) - start )) s (after the builds)"
