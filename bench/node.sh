#!/usr/bin/env bash
# The edge-node benchmark (issue 8): deploy latency with compile, routing overhead
# with 1,000 services, memory per service, first request to an unloaded service.
#
#   bash bench/node.sh                                  # 1,000 services, 3 rounds of 10 s
#   SERVICES=200 ROUNDS=1 DURATION=3 bash bench/node.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"

cd bench
python3 node_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --hello "$GUESTS/hello.wasm" \
    --services "${SERVICES:-1000}" --deploys "${DEPLOYS:-20}" \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}"
