#!/usr/bin/env bash
# The proxy benchmark: examples/geo-router proxying to a native origin vs the origin
# direct, origin connections per 10k proxied requests, µs per subrequest.
#
#   bash bench/proxy.sh                     # 3 rounds of 10 s
#   ROUNDS=1 DURATION=3 bash bench/proxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"
"$CARGO_TARGET_DIR/release/verge" build examples/geo-router >/dev/null

cd bench
python3 proxy_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --native "$CARGO_TARGET_DIR/release/native-hello" \
    --geo-router ../examples/geo-router/geo-router.wasm \
    --outbound "$GUESTS/outbound.wasm" \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}"
