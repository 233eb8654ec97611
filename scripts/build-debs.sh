#!/usr/bin/env bash
# Builds the Debian packages entroshard, entroshard-peer and entroshard-coordinator for amd64,
# arm64 and armhf with cargo-deb, then runs lintian on them (fails on any lintian error).
# Binaries come from the `dist` profile: native here, cross-built by scripts/cross-build.sh.
# They are the device binary, without the lab tools (`simulate`, `bench`; docs/decisions/0044).
# Completions and man pages come from a host build with the lab tools (docs/decisions/0047).
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
# The commit the binaries are built from, as the `git` label of `entroshard_build_info`.
ENTROSHARD_GIT_COMMIT=${ENTROSHARD_GIT_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}
export ENTROSHARD_GIT_COMMIT
FEATURE_ARGS=(--no-default-features)
[ -n "$FEATURES" ] && FEATURE_ARGS+=(--features "$FEATURES")

if [ -z "${NO_BUILD:-}" ]; then
  CROSS=()
  for a in "${ARCHES[@]}"; do
    case "$a" in arm64) CROSS+=(aarch64) ;; armhf) CROSS+=(armv7) ;; amd64) cargo build --locked --profile dist "${FEATURE_ARGS[@]}" -p entroshard --bin entroshard ;; esac
  done
  [ ${#CROSS[@]} -gt 0 ] && scripts/cross-build.sh "${CROSS[@]}"
fi

# Shell completions (bash, zsh, fish) and man pages, from a host build with the lab tools: the
# generators (clap_complete, clap_mangen) never enter the device binary (docs/decisions/0047).
# They describe the command line the package ships: without `bench` and `simulate` unless
# FEATURES names lab. Copied beside each architecture's binary, where the cargo-deb assets
# `target/release/generated/...` resolve.
DOC_ARGS=()
case ",$FEATURES," in *,lab,*) DOC_ARGS=(--with-lab-tools) ;; esac
cargo build --locked -p entroshard --bin entroshard
HOST_BIN=$TARGET_DIR/debug/entroshard
GENERATED=$TARGET_DIR/generated
rm -rf "$GENERATED"
mkdir -p "$GENERATED/completions" "$GENERATED/man"
for shell in bash zsh fish; do
  "$HOST_BIN" completions "$shell" "${DOC_ARGS[@]}" >"$GENERATED/completions/entroshard.$shell"
done
"$HOST_BIN" man "$GENERATED/man" "${DOC_ARGS[@]}" >/dev/null
gzip -9n "$GENERATED"/man/*.1
echo "generated $(ls "$GENERATED/man" | wc -l) man pages and 3 completion scripts"

DEBS=()
for a in "${ARCHES[@]}"; do
  triple=$(triple_of "$a")
  profile_dir=$TARGET_DIR/${triple:+$triple/}dist
  mkdir -p "$profile_dir"
  rm -rf "$profile_dir/generated"
  cp -r "$GENERATED" "$profile_dir/generated"
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
