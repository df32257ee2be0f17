#!/usr/bin/env bash
# The long soak (issue 20): tests/soak.rs for 30 minutes with a deploy a minute and
# a sample every 10 s (CI runs the same test for 2 minutes), built in release. Writes
# the samples to bench/soak-samples.csv and the chart to bench/soak.svg.
#
#   bash bench/soak.sh                      # 30 minutes
#   SOAK_SECONDS=300 bash bench/soak.sh     # 5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
make guest-toolchain >/dev/null

log=$(mktemp)
VERGE_SOAK_SECONDS="${SOAK_SECONDS:-1800}" \
VERGE_SOAK_DEPLOY_SECONDS="${SOAK_DEPLOY_SECONDS:-60}" \
VERGE_SOAK_SAMPLE_SECONDS="${SOAK_SAMPLE_SECONDS:-10}" \
    cargo test --release -p verge-cli --test soak -- --nocapture 2>&1 | tee "$log"
grep '^sample,' "$log" | cut -d, -f2- > bench/soak-samples.csv
python3 bench/soak_chart.py bench/soak-samples.csv bench/soak.svg
grep -E '^(good requests|restarted after|[0-9]+ acknowledged)' "$log"
echo "samples: bench/soak-samples.csv, chart: bench/soak.svg"
