#!/usr/bin/env bash
# Build and check the static musl binary (docs/packaging.md).
#
#   packaging/check-musl.sh
#
# Needs the Rust target x86_64-unknown-linux-musl (`rustup target add x86_64-unknown-linux-musl`)
# and musl-gcc for the C parts of dependencies (`apt-get install musl-tools`). When the target is
# not installed it prints a SKIPPED line and exits 0: the toolchain cannot always be downloaded
# (offline CI); nothing is installed by this script.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
TARGET=x86_64-unknown-linux-musl

if ! command -v rustup >/dev/null 2>&1; then
    echo "SKIPPED: static musl build: rustup not found, cannot tell whether $TARGET is installed"
    exit 0
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "SKIPPED: static musl build: the Rust target $TARGET is not installed" \
        "(rustup target add $TARGET; needs the network)"
    exit 0
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
    echo "FAILED: musl-gcc not found (apt-get install musl-tools); blake3's C code needs it" >&2
    exit 1
fi
# The product: without the `demo` feature (no demo command, no test node).
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release -p kharden --bin kharden \
    --no-default-features --target "$TARGET"
BIN=target/$TARGET/release/kharden
desc=$(file -b "$BIN" 2>/dev/null || true)
if command -v ldd >/dev/null 2>&1 && ldd "$BIN" 2>&1 | grep -q '=>'; then
    echo "FAILED: $BIN is dynamically linked: $(ldd "$BIN" 2>&1 | tr '\n' ' ')" >&2
    exit 1
fi
"$BIN" --version
bash packaging/check-product.sh "$BIN"
echo "ok: static musl build: $BIN ($(stat -c %s "$BIN") bytes) ${desc:+($desc)}"
