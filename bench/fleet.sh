#!/usr/bin/env bash
# The fleet benchmark (issues 17, 18): guest KV on a fleet (write and read latency
# against the single node's redb, replication lag at 100 and 1,000 writes/s); deploy,
# activation and purge to every node of 3, 10 and 30 `verge node`s on a 3-server NATS
# cluster (loopback), the request path with and without a fleet, catch-up after a
# pause, idle cost with 1,000 services.
#
#   bash bench/fleet.sh                                   # 3/10/30 nodes, 20 deploys each
#   SIZES=3,10 DEPLOYS=10 ROUNDS=1 DURATION=3 bash bench/fleet.sh
#   CODE=both bash bench/fleet.sh       # deploys with every node compiling, then with shared code
#   STEPS=deploys bash bench/fleet.sh   # only the deploy and activation figures
#   STEPS=kv bash bench/fleet.sh        # only the guest KV figures (bench/src/bin/fleet-kv.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null
bash scripts/install-nats-server.sh

cargo build --release -p verge-cli -p verge-bench --bins
GUESTS="$("$CARGO_TARGET_DIR/release/build-guests")"

echo "## Guest KV on a fleet (3 nodes in-process, 3 nats-servers, R3; redb on /var/tmp)"
"$CARGO_TARGET_DIR/release/fleet-kv" "${KV_OPS:-2000}" "${KV_RATES:-100,1000}" "${KV_SECONDS:-5}"
echo
[ "${STEPS:-all}" = kv ] && exit 0

cd bench
python3 fleet_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --hello "$GUESTS/hello.wasm" \
    --sizes "${SIZES:-3,10,30}" --deploys "${DEPLOYS:-20}" \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-10}" \
    --services "${SERVICES:-1000}" --idle "${IDLE:-30}" \
    --code "${CODE:-shared}" --steps "${STEPS:-all}"
