#!/usr/bin/env bash
# Generate target/assets/ (man page and shell completions) from the release binary, for
# `cargo deb` (see [package.metadata.deb] in Cargo.toml and docs/packaging.md).
#
#   packaging/build-assets.sh            # builds the release binary (the product: no demo) first
#   KHARDEN_BIN=path packaging/build-assets.sh
#
# Uses `kharden man` and `kharden completions SHELL`, which print to stdout.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
if [ -z "${KHARDEN_BIN:-}" ]; then
    cargo build --release -q -p kharden --bin kharden --no-default-features
    KHARDEN_BIN=$ROOT_DIR/target/release/kharden
fi
OUT=$ROOT_DIR/target/assets
mkdir -p "$OUT"
"$KHARDEN_BIN" man >"$OUT/kharden.1"
"$KHARDEN_BIN" completions bash >"$OUT/kharden.bash"
"$KHARDEN_BIN" completions zsh >"$OUT/_kharden"
"$KHARDEN_BIN" completions fish >"$OUT/kharden.fish"
for f in kharden.1 kharden.bash _kharden kharden.fish; do
    [ -s "$OUT/$f" ] || { echo "build-assets: $OUT/$f is empty" >&2; exit 1; }
done
gzip -9nf "$OUT/kharden.1" # Debian policy: man pages compressed (-n: reproducible)
ls -l "$OUT"
