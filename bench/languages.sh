#!/usr/bin/env bash
# The languages benchmark (issue 9): the hello app of each `verge init` template —
# Rust (the SDK), JavaScript (componentize-js) and Python (componentize-py) — built,
# compiled and served by one release verge, measured alternately in one run.
#
#   bash bench/languages.sh                    # 3 rounds of 5 s per language and -c
#   ROUNDS=1 DURATION=3 bash bench/languages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bash scripts/install-guest-toolchain.sh >/dev/null
bash scripts/install-componentize-js.sh >/dev/null
bash scripts/install-componentize-py.sh >/dev/null

cargo build --release -p verge-cli
TOOLS="${VERGE_TOOLS:-$HOME/.cache/verge-tools}"
PIP_FIND_LINKS="$TOOLS/wheels" python3 bench/languages_bench.py \
    --verge "$CARGO_TARGET_DIR/release/verge" \
    --rounds "${ROUNDS:-3}" --duration "${DURATION:-5}"
