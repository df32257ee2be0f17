#!/usr/bin/env bash
# Installs componentize-js (npm; the StarlingMonkey engine Fastly's JS SDK uses) for
# the tests that run JavaScript components nobody here wrote, and puts the tools the
# JavaScript app template pins into npm's cache. Idempotent. Installs into
# $VERGE_TOOLS/componentize-js/node_modules.
set -euo pipefail
VERSION=0.23.0
TOOLS="${VERGE_TOOLS:-$HOME/.cache/verge-tools}"
DIR="$TOOLS/componentize-js"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
# The tools `verge init --lang js` pins (templates/js), into npm's cache, so that
# `verge build` installs them without the network (the tests build offline).
TEMPLATE="$(cd "$(dirname "$0")/.." && pwd)/templates/js"
WARM="$(mktemp -d)"
trap 'rm -rf "$WARM"' EXIT
sed 's/{{name}}/verge-js-cache/' "$TEMPLATE/package.json.tmpl" > "$WARM/package.json"
sed 's/{{name}}/verge-js-cache/' "$TEMPLATE/package-lock.json.tmpl" > "$WARM/package-lock.json"
(cd "$WARM" && npm ci --silent --no-audit --no-fund --prefer-offline)
# TypeScript, for the test that checks sdk/js/index.d.ts against the JavaScript apps.
TS_VERSION=5.9.3
if ! grep -qs "\"version\": \"$TS_VERSION\"" "$TOOLS/typescript/node_modules/typescript/package.json"; then
    mkdir -p "$TOOLS/typescript"
    (cd "$TOOLS/typescript" && npm install --silent --no-audit --no-fund --no-save "typescript@$TS_VERSION")
fi
if grep -qs "\"version\": \"$VERSION\"" "$DIR/node_modules/@bytecodealliance/componentize-js/package.json"; then
    exit 0
fi
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"name":"verge-componentize-js","private":true,"type":"module"}' > package.json
# componentize-js 0.23 needs preview2-shim 0.17.x at build time.
npm install --silent --no-audit --no-fund \
    "@bytecodealliance/componentize-js@$VERSION" "@bytecodealliance/preview2-shim@0.17"
