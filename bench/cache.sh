#!/usr/bin/env bash
# The edge-cache benchmark (issue 7): examples/cached-api answered from the HTTP
# cache (no guest run) vs the same app with the cache off and vs the SDK hello, in one
# run; and how long a purge through the admin API takes.
#
#   bash bench/cache.sh                     # 3 rounds of 10 s
#   ROUNDS=1 DURATION=3 bash bench/cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"
"$CARGO_TARGET_DIR/release/verge" build examples/cached-api >/dev/null

cd bench
python3 cache_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --hello "$GUESTS/hello.wasm" \
    --app ../examples/cached-api \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}"
