#!/usr/bin/env bash
# Hole-punch outcomes by the holder's NAT, from a NAT_MESH_DUMP directory of tests/it/nat_mesh.rs
# (run with NAT_MESH_FETCH_LOG including libp2p_dcutr=debug and peer=info). Counts, per
# requester process and holder, whether DCUtR tried (the requester's "hole-punch as dialer")
# and whether it ended in a direct connection (its "hole punched: direct connection"), split
# into new processes per fetch (fetch-*.log) and the warm process (fetch-repeated-*.log).
#   scripts/testbed/punch-figures.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DUMP_DIR}
declare -A home
for f in "$dir"/es-h[0-9]-p[0-9]-*.log; do
  ns=$(basename "$f" | sed -E 's/^(es-h[0-9]-p[0-9]).*/\1/')
  id=$(grep -o 'p2p-circuit/p2p/12D3KooW[A-Za-z0-9]*' "$f" | sort | uniq -c | sort -rn | head -1 | sed 's#.*/##')
  case $ns in es-h2-*) home[$id]=symmetric-like ;; es-h3-*) home[$id]=same-home ;; *) home[$id]=endpoint-independent ;; esac
done
for kind in cold warm; do
  if [ $kind = cold ]; then files=("$dir"/fetch-[0-9]*.log); else files=("$dir"/fetch-repeated-*.log); fi
  for f in "${files[@]}"; do
    [ -e "$f" ] || continue
    for id in $(grep -o 'hole-punch as dialer target=[^ ]*' "$f" | sed 's/.*=//' | sort -u); do
      ok=0; grep -q "hole punched: direct connection peer=$id" "$f" && ok=1
      echo "$kind ${home[$id]:-other} $ok"
    done
  done
done | sort | uniq -c | awk '{k=$2" "$3; t[k]+=$1; if ($4==1) s[k]+=$1} END {for (k in t) printf "%s: %d of %d punched\n", k, s[k], t[k]}' | sort
