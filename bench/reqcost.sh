#!/usr/bin/env bash
# The request-path yardstick (issue 19): CPU and context switches of the server
# process per request, hello and proxied, against native hyper, a native hyper
# reverse proxy and nginx proxy_pass in the same run (bench/reqcost_bench.py).
#
#   bash bench/reqcost.sh                      # 3 rounds of 10 s
#   ROUNDS=1 DURATION=3 bash bench/reqcost.sh
#   ONLY="native hello;verge SDK hello" bash bench/reqcost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x /usr/sbin/nginx ] || { apt-get update -qq && apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; }
bash scripts/install-guest-toolchain.sh >/dev/null

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"
"$CARGO_TARGET_DIR/release/verge" build examples/hello >/dev/null
"$CARGO_TARGET_DIR/release/verge" build examples/geo-router >/dev/null
"$CARGO_TARGET_DIR/release/verge" build examples/cached-api >/dev/null

cd bench
python3 reqcost_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --native "$CARGO_TARGET_DIR/release/native-hello" \
    --native-proxy "$CARGO_TARGET_DIR/release/native-proxy" \
    --raw-hello "$GUESTS/raw-hello.wasm" \
    --hello ../examples/hello/hello.wasm \
    --geo-router ../examples/geo-router/geo-router.wasm \
    --nginx /usr/sbin/nginx \
    --hostile "$GUESTS/hostile.wasm" \
    --cached-api ../examples/cached-api \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}" --only "${ONLY:-}"
