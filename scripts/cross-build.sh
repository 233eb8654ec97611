#!/usr/bin/env bash
# Cross-builds the `entroshard` binary for Raspberry-Pi-class boards without containers:
# installs Debian's cross compilers and the Rust targets it needs, then builds with the
# `dist` profile (LTO, one codegen unit, stripped) unless PROFILE says otherwise. It builds the
# device binary: no default features, so none of the lab tools (`simulate`, `bench`; see
# docs/decisions/0044) unless FEATURES names them.
#
# Usage: scripts/cross-build.sh [TARGET...]
#   TARGET: aarch64 | armv7 | armv6 | a full Rust triple   (default: aarch64 armv7)
#   PROFILE=release scripts/cross-build.sh aarch64         (another cargo profile)
#   NO_INSTALL=1 scripts/cross-build.sh                    (skip apt-get / rustup)
#   FEATURES=lab scripts/cross-build.sh aarch64            (the full binary, with the lab tools)
# Output: target/<triple>/<profile>/entroshard, and a size line per target.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dist}
FEATURES=${FEATURES:-}
FEATURE_ARGS=(--no-default-features)
[ -n "$FEATURES" ] && FEATURE_ARGS+=(--features "$FEATURES")
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(aarch64 armv7)

triple_of() {
  case "$1" in
    aarch64) echo aarch64-unknown-linux-gnu ;;
    armv7) echo armv7-unknown-linux-gnueabihf ;;
    armv6) echo arm-unknown-linux-gnueabihf ;;
    *) echo "$1" ;;
  esac
}
# Debian cross compiler (prefix) and C library package for each Rust triple.
gcc_prefix_of() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo aarch64-linux-gnu ;;
    armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf) echo arm-linux-gnueabihf ;;
    x86_64-unknown-linux-gnu) echo x86_64-linux-gnu ;;
    *) echo "no cross compiler known for $1" >&2; exit 2 ;;
  esac
}
apt_packages_of() {
  case "$1" in
    aarch64-linux-gnu) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
    arm-linux-gnueabihf) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
    x86_64-linux-gnu) echo gcc ;;
  esac
}

if [ -z "${NO_INSTALL:-}" ]; then
  NEED=()
  for t in "${TARGETS[@]}"; do
    read -r -a pkgs <<<"$(apt_packages_of "$(gcc_prefix_of "$(triple_of "$t")")")"
    NEED+=("${pkgs[@]}")
  done
  if [ ${#NEED[@]} -gt 0 ] && ! dpkg -s "${NEED[@]}" >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${NEED[@]}"
  fi
  for t in "${TARGETS[@]}"; do
    triple=$(triple_of "$t")
    if ! rustup target add "$triple"; then
      # No prebuilt std for this target here (ARMv6): build std from source on nightly.
      echo "note: no prebuilt std for $triple; building it with nightly -Z build-std"
      rustup component add rust-src --toolchain nightly
    fi
  done
fi

for t in "${TARGETS[@]}"; do
  triple=$(triple_of "$t")
  prefix=$(gcc_prefix_of "$triple")
  upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
  lower=$(echo "$triple" | tr '-' '_')
  echo "== building $triple ($PROFILE, features: ${FEATURES:-none})"
  cargo=(cargo)
  cflags=""
  if [ "$triple" = arm-unknown-linux-gnueabihf ]; then
    # Debian's armhf compiler defaults to ARMv7 Thumb-2: ask for ARMv6 code explicitly.
    cflags="-march=armv6 -marm -mfpu=vfp -mfloat-abi=hard"
    if ! rustup target list --installed | grep -qx "$triple"; then
      cargo=(cargo +nightly -Z build-std=std)
    fi
  fi
  # Linker for rustc, compiler and archiver for C code in dependencies (ring, aws-lc-sys).
  env "CARGO_TARGET_${upper}_LINKER=$prefix-gcc" "CC_${lower}=$prefix-gcc" "AR_${lower}=$prefix-ar" \
    "CFLAGS_${lower}=$cflags" \
    "${cargo[@]}" build --locked --profile "$PROFILE" --target "$triple" "${FEATURE_ARGS[@]}" \
    -p entroshard --bin entroshard
  dir=$PROFILE; [ "$PROFILE" = dev ] && dir=debug
  bin=${CARGO_TARGET_DIR:-target}/$triple/$dir/entroshard
  file "$bin" 2>/dev/null || true
  echo "size $triple (features: ${FEATURES:-none}) $(stat -c %s "$bin") bytes ($(awk -v b="$(stat -c %s "$bin")" 'BEGIN {printf "%.1f", b/1048576}') MiB)"
done
