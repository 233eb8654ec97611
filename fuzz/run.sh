#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS seconds each.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Seeds from fuzz/seeds/<target>/ are copied into fuzz/corpus/<target>/ (gitignored) first;
# crashes land in fuzz/artifacts/<target>/, logs in fuzz/artifacts/logs/<target>.log.
# Exits non-zero if any target finds a crash (or fails to build / run).
#
# Environment: CARGO_TARGET_DIR (default: fuzz/target), CARGO_BUILD_JOBS (default: 1),
# FUZZ_SANITIZER (default: address; "none" is several times faster), FUZZ_ARGS (extra
# libFuzzer flags, e.g. "-max_len=8192").
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
secs="$1"
shift
[[ "$secs" =~ ^[0-9]+$ && "$secs" -gt 0 ]] || usage

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! command -v cargo >/dev/null 2>&1 || ! cargo +nightly --version >/dev/null 2>&1; then
    echo "run.sh: no nightly toolchain ('cargo +nightly' is unavailable); cargo-fuzz needs one." >&2
    echo "run.sh: install it with 'rustup toolchain install nightly'. Skipping fuzzing." >&2
    exit 0
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$here")
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "run.sh: no fuzz targets found" >&2; exit 1; }

echo "run.sh: building ${#targets[@]} target(s) (sanitizer: $sanitizer)"
if [[ $# -eq 0 ]]; then
    cargo +nightly fuzz build --fuzz-dir "$here" --sanitizer "$sanitizer"
else
    for t in "${targets[@]}"; do
        cargo +nightly fuzz build --fuzz-dir "$here" --sanitizer "$sanitizer" "$t"
    done
fi

mkdir -p "$here/artifacts/logs"
failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$here/corpus/$t"
    mkdir -p "$corpus" "$here/artifacts/$t"
    if [[ -d "$here/seeds/$t" ]]; then
        cp -n "$here/seeds/$t/"* "$corpus/" 2>/dev/null || true
    fi
    log="$here/artifacts/logs/$t.log"
    echo "run.sh: fuzzing $t for ${secs}s (corpus: corpus/$t, log: artifacts/logs/$t.log)"
    status=0
    cargo +nightly fuzz run --fuzz-dir "$here" --sanitizer "$sanitizer" "$t" "$corpus" -- \
        -max_total_time="$secs" -print_final_stats=1 "${extra_args[@]}" >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
    if [[ $status -ne 0 ]]; then
        failed+=("$t")
        if grep -q '^ *Running `' "$log"; then
            what="CRASH"
            found="$(grep -o "Test unit written to [^ ]*" "$log" | sed 's/.*to //' | tail -n1)"
            [[ -n "$found" ]] && what="CRASH: $found"
        else
            what="BUILD FAILED"
        fi
        summary+=("$(printf '%-20s %s (exit %s), log artifacts/logs/%s.log' "$t" "$what" "$status" "$t")")
        echo "run.sh: $t: $what (exit $status); last lines of its log:" >&2
        tail -n 40 "$log" >&2
    else
        summary+=("$(printf '%-20s ok  %10s execs  %6s exec/s' "$t" "${execs:-?}" "${rate:-?}")")
    fi
done

echo
echo "run.sh: summary (${secs}s per target)"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run.sh: crashes or failures in: ${failed[*]} (crashing inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
