#!/usr/bin/env bash
# Builds the Debian packages entroshard, entroshard-peer and entroshard-coordinator for amd64,
# arm64 and armhf with cargo-deb, then runs lintian on them (fails on any lintian error).
# Binaries come from the `dist` profile: native here, cross-built by scripts/cross-build.sh.
# They are the device binary, without the lab tools (`simulate`, `bench`; docs/decisions/0044).
# Usage: scripts/build-debs.sh [ARCH...]     ARCH: amd64 arm64 armhf (default: all three)
#        NO_BUILD=1 scripts/build-debs.sh    (package binaries already built)
#        FEATURES=lab scripts/build-debs.sh  (package the full binary, with the lab tools)
# Output: target/debian/*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHES=("$@")
[ ${#ARCHES[@]} -eq 0 ] && ARCHES=(amd64 arm64 armhf)
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$TARGET_DIR/debian
mkdir -p "$OUT"

if ! command -v cargo-deb >/dev/null; then cargo install --locked cargo-deb; fi
if ! command -v lintian >/dev/null || ! command -v systemd-analyze >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lintian systemd
fi

triple_of() {
  case "$1" in
    amd64) echo "" ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    armhf) echo armv7-unknown-linux-gnueabihf ;;
    *) echo "unknown architecture $1" >&2; exit 2 ;;
  esac
}

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if [ "$(grep -c "entroshard (>= $VERSION)" Cargo.toml)" != 2 ]; then
  echo "the daemon packages' Depends on entroshard do not name version $VERSION (Cargo.toml)" >&2
  exit 2
fi

FEATURES=${FEATURES:-}
export FEATURES # scripts/cross-build.sh reads it too
FEATURE_ARGS=(--no-default-features)
[ -n "$FEATURES" ] && FEATURE_ARGS+=(--features "$FEATURES")

if [ -z "${NO_BUILD:-}" ]; then
  CROSS=()
  for a in "${ARCHES[@]}"; do
    case "$a" in arm64) CROSS+=(aarch64) ;; armhf) CROSS+=(armv7) ;; amd64) cargo build --locked --profile dist "${FEATURE_ARGS[@]}" -p entroshard --bin entroshard ;; esac
  done
  [ ${#CROSS[@]} -gt 0 ] && scripts/cross-build.sh "${CROSS[@]}"
fi

DEBS=()
for a in "${ARCHES[@]}"; do
  triple=$(triple_of "$a")
  target_args=()
  [ -n "$triple" ] && target_args=(--target "$triple")
  for variant in "" peer coordinator; do
    variant_args=()
    [ -n "$variant" ] && variant_args=(--variant "$variant")
    # The binary is stripped by the dist profile already; the foreign strip tools are not needed.
    deb=$(cargo deb --locked --no-build --no-strip -p entroshard "${target_args[@]}" "${variant_args[@]}" --output "$OUT" | tail -n 1)
    echo "built $deb"
    DEBS+=("$deb")
  done
done

echo "== lintian"
lintian --fail-on error "${DEBS[@]}"
echo "lintian: no errors in ${#DEBS[@]} packages"
