#!/usr/bin/env bash
# The HTTP benchmark: `verge serve`, a native hyper server and `wasmtime serve`, all
# answering "hello" (5 bytes) on loopback, measured alternately with wrk in one run.
# Also: process start to first response, the in-process criterion benchmark, and
# (unless SKIP_PROXY=1 / SKIP_STATE=1 / SKIP_CACHE=1 / SKIP_NODE=1) bench/proxy.sh,
# bench/state.sh, bench/cache.sh and bench/node.sh.
#
#   bash bench/run.sh                 # 3 rounds of 10 s per server and connection count
#   ROUNDS=1 DURATION=3 bash bench/run.sh
#
# Installs wrk (apt) and wasmtime-cli 48.0.8 (cargo install, ~15 min once) when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
TOOLS="${VERGE_BENCH_TOOLS:-$HOME/.cache/verge-bench}"
WASMTIME_VERSION=48.0.8
WASMTIME="$TOOLS/wasmtime-$WASMTIME_VERSION/bin/wasmtime"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null
if [ ! -x "$WASMTIME" ]; then
    echo "installing wasmtime-cli $WASMTIME_VERSION into $TOOLS (once; slow)" >&2
    cargo install --locked "wasmtime-cli@$WASMTIME_VERSION" --root "$TOOLS/wasmtime-$WASMTIME_VERSION"
fi

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"

python3 bench/http_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --native "$CARGO_TARGET_DIR/release/native-hello" \
    --wasmtime "$WASMTIME" \
    --startup "$CARGO_TARGET_DIR/release/startup-time" \
    --component "$GUESTS/raw-hello.wasm" \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}"

if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    cargo bench -p verge-bench --bench handle -- --noplot
    cargo bench -p verge-bench --bench routing -- --noplot
fi

if [ "${SKIP_PROXY:-0}" != 1 ]; then
    bash bench/proxy.sh
fi

if [ "${SKIP_STATE:-0}" != 1 ]; then
    bash bench/state.sh
fi

if [ "${SKIP_CACHE:-0}" != 1 ]; then
    bash bench/cache.sh
fi

if [ "${SKIP_NODE:-0}" != 1 ]; then
    bash bench/node.sh
fi
