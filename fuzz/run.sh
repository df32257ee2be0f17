#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 60) each, starting from its seeds
# (seeds/TARGET) in a scratch corpus, and prints the executions per target. A crash
# stops the run: the input is saved under artifacts/TARGET/ and printed here.
# Usage: bash fuzz/run.sh [TARGET...]   (all targets when none is named)
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
target_dir="${FUZZ_TARGET_DIR:-/var/tmp/verge-fuzz-target}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "error: fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cargo +nightly fuzz build --target-dir "$target_dir"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

printf '%-14s %12s %10s %8s\n' target executions exec/s corpus
for target in "${targets[@]}"; do
    corpus=$(mktemp -d)
    log=$(mktemp)
    if ! cargo +nightly fuzz run --target-dir "$target_dir" "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "error: fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        echo "reproduce: cargo +nightly fuzz run $target fuzz/artifacts/$target/<file>" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    size=$(find "$corpus" -type f | wc -l)
    printf '%-14s %12s %10s %8s\n' "$target" "$runs" "$speed" "$size"
    rm -rf "$corpus" "$log"
done
