#!/usr/bin/env bash
# Installs componentize-py (PyPI; it ships its own CPython and Wasm tooling) into a
# virtualenv, for the tests that run Python components nobody here wrote, and keeps
# its wheel in $VERGE_TOOLS/wheels, from which the tests' `verge build` installs the
# pinned version of a Python app offline (PIP_NO_INDEX + PIP_FIND_LINKS). Idempotent.
# Prints nothing but errors; the binary is at $VERGE_TOOLS/componentize-py/bin/.
set -euo pipefail
VERSION=0.25.1
TOOLS="${VERGE_TOOLS:-$HOME/.cache/verge-tools}"
VENV="$TOOLS/componentize-py"
WHEELS="$TOOLS/wheels"
if [ -x "$VENV/bin/componentize-py" ] && "$VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$VERSION" \
    && ls "$WHEELS"/componentize_py-"$VERSION"-*.whl >/dev/null 2>&1; then
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
mkdir -p "$WHEELS"
"$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$WHEELS" "componentize-py==$VERSION"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$WHEELS" \
    "componentize-py==$VERSION"
