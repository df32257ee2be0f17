#!/usr/bin/env bash
# How fast the console's pages load from a node on loopback (issue 21's target:
# under 200 ms), in Debian's headless Chromium: see bench/src/bin/console-load.rs.
#
#   bash bench/console.sh              # 20 loads of each page
#   ROUNDS=5 bash bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bash scripts/install-browser.sh
cargo build --release -p verge-cli -p verge-bench --bin verge --bin console-load
"$CARGO_TARGET_DIR/release/console-load" --verge "$CARGO_TARGET_DIR/release/verge" --rounds "${ROUNDS:-20}"
