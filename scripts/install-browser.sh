#!/usr/bin/env bash
# Installs Debian's Chromium and chromedriver (the same version, from the same
# package source) for the console's browser tests (tests/console.rs). Idempotent;
# prints nothing but errors.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
