#!/usr/bin/env bash
# Installs componentize-py (PyPI; it ships its own CPython and Wasm tooling) into a
# virtualenv, for the tests that run Python components nobody here wrote. Idempotent.
# Prints nothing but errors; the binary is at $VERGE_TOOLS/componentize-py/bin/.
set -euo pipefail
VERSION=0.25.1
TOOLS="${VERGE_TOOLS:-$HOME/.cache/verge-tools}"
VENV="$TOOLS/componentize-py"
if [ -x "$VENV/bin/componentize-py" ] && "$VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$VERSION"; then
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
"$VENV/bin/pip" install -q "componentize-py==$VERSION"
