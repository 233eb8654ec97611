#!/usr/bin/env bash
# The README's test command with N CPU-bound processes (`yes >/dev/null`, default 2) running
# beside it the whole time: what issue 17 asks the suite to survive. Prints the wall time and the
# tests' summed time. Usage: scripts/test-beside-busy.sh [N] [extra cargo test args...]
set -uo pipefail
cd "$(dirname "$0")/.."
busy="${1:-2}"
shift || true
pids=()
for _ in $(seq 1 "$busy"); do
    yes >/dev/null &
    pids+=("$!")
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
log="$(mktemp -t entroshard-busy-XXXXXX.log)"
start=$(date +%s)
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
end=$(date +%s)
summed=$(awk '/finished in/{for(i=1;i<=NF;i++) if($i=="in"){t=$(i+1); sub("s","",t); s+=t}} END{printf "%.0f", s}' "$log")
passed=$(awk '/test result/{for(i=1;i<=NF;i++) if($i=="passed;") p+=$(i-1)} END{print p+0}' "$log")
echo "beside $busy busy processes: exit $rc, $passed passed, wall $((end - start)) s, tests ${summed} s summed (log: $log)"
exit "$rc"
