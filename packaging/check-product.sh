#!/usr/bin/env bash
# Check that a kharden binary is the product, not the demo build (issue 12, docs/packaging.md):
# no `demo` command, no test node inside, and invoked under a component's name it is still
# kharden (the demo build dispatches such names to its fake components).
#
#   packaging/check-product.sh target/release/kharden
set -euo pipefail
BIN=${1:?usage: check-product.sh BINARY}
fail() { echo "FAILED: $BIN: $*" >&2; exit 1; }

[ -x "$BIN" ] || fail "not an executable"
set +e
out=$("$BIN" demo 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] || fail "\`kharden demo\` exited $rc (want 2, an unknown subcommand): $out"
grep -q "unrecognized subcommand 'demo'" <<<"$out" || fail "\`kharden demo\` did not say it has no such command: $out"
if "$BIN" --help | grep -qE '^\s+demo\b'; then
    fail "--help lists a demo command"
fi
# The test node's sources leave their paths in a binary that links them (panic locations).
if grep -aq 'crates/testnode/src' "$BIN"; then
    fail "the test node is linked in (crates/testnode/src found in the binary)"
fi
# Under a fake component's name the demo build would run that fake; the product stays kharden.
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
ln -s "$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" "$d/kube-apiserver"
"$d/kube-apiserver" --version | grep -q '^kharden ' || fail "invoked as kube-apiserver it is not kharden"
echo "ok: $BIN is the product (no demo command, no test node)"
