#!/usr/bin/env bash
# Installs a Rust toolchain that can build wasm32-wasip1 guests. Idempotent.
#
# - With rustup's wasm32-wasip1 target already installed, there is nothing to do.
# - Otherwise installs Debian's rustc-web, cargo-web, rust-web-src, wasi-libc and lld,
#   with which `verge build` builds the standard library from source (-Zbuild-std).
#   (On a machine that can download rustup targets, `rustup target add wasm32-wasip1`
#   is the simpler route.)
set -euo pipefail

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    echo "guest toolchain: rustup target wasm32-wasip1 is installed"
    exit 0
fi

packages=(rustc-web cargo-web rust-web-src wasi-libc lld)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "guest toolchain: Debian packages present (${packages[*]})"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no rustup wasm32-wasip1 target and no apt-get; run: rustup target add wasm32-wasip1" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "guest toolchain: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
echo "guest toolchain: installed"
