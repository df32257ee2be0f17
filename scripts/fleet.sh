#!/usr/bin/env bash
# A local fleet in one command: `scripts/fleet.sh up` starts a 3-server NATS cluster
# with JetStream on loopback and three nodes (pop-a, pop-b, pop-c) in the background
# (`verge fleet dev`, the harness the fleet's tests use) and prints their addresses;
# `scripts/fleet.sh down` stops them all. State and logs live in .verge/fleet-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${VERGE_FLEET_DIR:-.verge/fleet-dev}"
RUN=".verge/fleet-dev.run"
PID="$RUN/pid"
LOG="$RUN/log"
VERGE="${VERGE:-}"

case "${1:-}" in
up)
    if [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; then
        echo "a fleet is running already (pid $(cat "$PID")); its addresses:" >&2
        grep -E '^(pop-|export )' "$LOG"
        exit 0
    fi
    bash scripts/install-nats-server.sh
    if [ -z "$VERGE" ]; then
        # The profile `make serve` builds (release without debug line tables).
        cargo build -q --profile serve -p verge-cli
        VERGE="${CARGO_TARGET_DIR:-target}/serve/verge"
    fi
    mkdir -p "$RUN"
    NO_COLOR=1 setsid "$VERGE" fleet dev --dir "$DIR" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PID"
    for _ in $(seq 1 600); do
        if grep -q '^Fleet ready' "$LOG"; then
            grep -E '^(pop-|export )' "$LOG"
            exit 0
        fi
        if ! kill -0 "$(cat "$PID")" 2>/dev/null; then
            echo "the fleet did not start:" >&2
            cat "$LOG" >&2
            rm -f "$PID"
            exit 1
        fi
        sleep 0.1
    done
    echo "the fleet was not ready after 60 s; see $LOG" >&2
    exit 1
    ;;
down)
    if [ ! -f "$PID" ] || ! kill -0 "$(cat "$PID")" 2>/dev/null; then
        echo "no fleet is running" >&2
        rm -f "$PID"
        exit 0
    fi
    kill -TERM "$(cat "$PID")"
    for _ in $(seq 1 300); do
        kill -0 "$(cat "$PID")" 2>/dev/null || { rm -f "$PID"; echo "stopped"; exit 0; }
        sleep 0.1
    done
    echo "the fleet did not stop within 30 s; killing it" >&2
    kill -KILL -- "-$(cat "$PID")" 2>/dev/null || true
    rm -f "$PID"
    ;;
*)
    echo "usage: scripts/fleet.sh up|down" >&2
    exit 2
    ;;
esac
