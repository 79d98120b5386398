#!/usr/bin/env bash
# Run each fuzz target for N seconds (default 60), one at a time, with one job.
# Skips (exit 0) when cargo-fuzz or a nightly toolchain is missing.
#   fuzz/run.sh 600          # ten minutes per target
#   fuzz/run.sh 60 edit      # only the `edit` target
set -euo pipefail
secs="${1:-60}"
shift || true
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! command -v cargo-fuzz >/dev/null 2>&1 && ! cargo fuzz --help >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz): skipped"
    exit 0
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: no nightly toolchain (rustup toolchain install nightly): skipped"
    exit 0
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(edit inspect kubelet_config_edit kubelet_env_edit)
fi

# Seeds: our own fixtures and generated variants, plus the shared corpus when present.
"$here/make_seeds.sh"

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzz/run.sh: $t for ${secs}s"
    # Safe Rust on top of saphyr-parser and serde_yaml: no sanitizer, for throughput (debug
    # assertions stay on, which also enables the editor's extra read-back check).
    cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
        -jobs=1 -workers=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 || status=$?
    if [ -f fuzz-0.log ]; then
        tail -n 25 fuzz-0.log
        mv fuzz-0.log "fuzz-$t.log"
    fi
    if [ "${status:-0}" -ne 0 ]; then
        echo "fuzz/run.sh: $t found a problem (see artifacts/$t and fuzz-$t.log)"
        exit "$status"
    fi
done
