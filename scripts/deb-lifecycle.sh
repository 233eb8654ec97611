#!/usr/bin/env bash
# Checks the packages' life cycle on this (Debian, root) machine with the amd64 .debs from
# scripts/build-debs.sh: install, `peer init` into the packaged template, upgrade (a rebuilt
# package with a higher revision), remove, purge. Asserts that the identity and share store
# survive upgrade and remove, and that purge deletes them. Leaves the system user behind (as
# Debian policy asks) and nothing else. Needs: root, dpkg; it installs and purges packages.
# Usage: scripts/deb-lifecycle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${CARGO_TARGET_DIR:-$PWD/target}/debian
V=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="entroshard"))')
BASE=("$OUT/entroshard_${V}-1_amd64.deb" "$OUT/entroshard-peer_${V}-1_amd64.deb")
for f in "${BASE[@]}"; do [ -f "$f" ] || { echo "missing $f: run scripts/build-debs.sh amd64" >&2; exit 2; }; done
fail() { echo "FAIL: $*" >&2; exit 1; }
STATE=/var/lib/entroshard/peer

echo "== install"
dpkg -i "${BASE[@]}"
getent passwd entroshard >/dev/null || fail "no entroshard user"
[ "$(stat -c '%U:%G %a' /etc/entroshard/peer.toml)" = "root:entroshard 640" ] || fail "config owner/mode: $(stat -c '%U:%G %a' /etc/entroshard/peer.toml)"
grep -qv '^\s*#' /etc/entroshard/peer.toml && grep -v '^\s*#' /etc/entroshard/peer.toml | grep -q . && fail "the packaged config holds settings"
[ -e "$STATE" ] && fail "install created $STATE"

echo "== peer init fills the template"
entroshard peer init --data-dir "$STATE" --config /etc/entroshard/peer.toml --low-memory --no-hardware \
  --simulated-source biased:0.6:1 --region lab --operator ci \
  --coordinator /ip4/127.0.0.1/tcp/7400/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN >/dev/null
grep -q '^region = "lab"' /etc/entroshard/peer.toml || fail "template not filled"
grep -q '^# entroshard peer configuration' /etc/entroshard/peer.toml || fail "template comments lost"
entroshard peer init --data-dir "$STATE" --config /etc/entroshard/peer.toml --region x --operator y \
  --coordinator /ip4/127.0.0.1/tcp/7400/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN 2>/dev/null \
  && fail "a second init overwrote the config"
echo "share store placeholder" >"$STATE/shares.redb"
ID_SUM=$(sha256sum "$STATE/identity.key" "$STATE/shares.redb" /etc/entroshard/peer.toml)

echo "== upgrade to a higher revision"
cargo deb --no-build --no-strip -p entroshard --deb-revision 2 --output "$OUT" >/dev/null
cargo deb --no-build --no-strip -p entroshard --variant peer --deb-revision 2 --output "$OUT" >/dev/null
dpkg -i "$OUT/entroshard_${V}-2_amd64.deb" "$OUT/entroshard-peer_${V}-2_amd64.deb"
[ "$(dpkg-query -W -f '${Version}' entroshard-peer)" = "${V}-2" ] || fail "the upgrade did not happen"
[ "$(sha256sum "$STATE/identity.key" "$STATE/shares.redb" /etc/entroshard/peer.toml)" = "$ID_SUM" ] \
  || fail "the upgrade changed the identity, the store or the config"

echo "== remove keeps the state"
dpkg -r entroshard-peer entroshard
[ -f "$STATE/identity.key" ] && [ -f "$STATE/shares.redb" ] || fail "remove deleted the state"

echo "== purge deletes it"
dpkg -P entroshard-peer entroshard
[ -e "$STATE" ] && fail "purge left $STATE"
[ -e /etc/entroshard/peer.toml ] && fail "purge left the config"
rm -f "$OUT/entroshard_${V}-2_amd64.deb" "$OUT/entroshard-peer_${V}-2_amd64.deb"
echo "deb life cycle: install, init, upgrade, remove, purge all as expected"
