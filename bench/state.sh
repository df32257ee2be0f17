#!/usr/bin/env bash
# The state benchmark (issue 6): examples/url-shortener redirecting from its KV store
# vs the SDK hello in the same run; KV lookup and durable insert latency in-process;
# examples/image-resize turning a 1 MP JPEG into 300 px.
#
#   bash bench/state.sh                     # 3 rounds of 10 s
#   ROUNDS=1 DURATION=3 bash bench/state.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"
for app in url-shortener image-resize; do
    "$CARGO_TARGET_DIR/release/verge" build "examples/$app" >/dev/null
done

echo "## KV in-process (redb file on /var/tmp, fsync per insert)"
"$CARGO_TARGET_DIR/release/kv-latency" /var/tmp 2000
echo

cd bench
python3 state_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --hello "$GUESTS/hello.wasm" \
    --shortener ../examples/url-shortener \
    --resizer ../examples/image-resize/image-resize.wasm \
    --make-jpeg "$CARGO_TARGET_DIR/release/make-jpeg" \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}"
