#!/bin/sh
# Cost of one metadata transaction (issue 13) over 30 and 3000 files: wall time, fsyncs,
# journal bytes, peak memory. Figures go to docs/performance.md, "Metadata transactions".
#
#   scripts/perf_metadata.sh            # N = 30 and 3000, 5 runs each
#   RUNS=10 SIZES="30 300 3000" scripts/perf_metadata.sh
#
# Runs on the disk under target/perf (not a tmpfs: fsync costs what it costs). Needs strace.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZES=${SIZES:-"30 3000"}
command -v strace >/dev/null || { echo "perf_metadata.sh: needs strace" >&2; exit 2; }
cargo build -q --release --example metadata_txn
bin=target/release/examples/metadata_txn
work=target/perf/metadata
printf '| files | transaction (median of %s) | fsync+fdatasync | record bytes | event bytes | peak RSS |\n' "$RUNS"
printf '|---|---|---|---|---|---|\n'
for n in $SIZES; do
    times=""
    for i in $(seq "$RUNS"); do
        rm -rf "$work"; mkdir -p "$work"
        out=$("$bin" "$n" "$work")
        times="$times $(echo "$out" | awk '/^transaction_ms/ {print $2}')"
    done
    median=$(echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    rm -rf "$work"; mkdir -p "$work"
    syncs=$(strace -f -c -e trace=fsync,fdatasync "$bin" "$n" "$work" 2>&1 >/dev/null \
        | awk '$NF == "fsync" || $NF == "fdatasync" {s += $4} END {print s}')
    rm -rf "$work"; mkdir -p "$work"
    out=$("$bin" "$n" "$work")
    rec=$(echo "$out" | awk '/^record_bytes/ {print $2}')
    ev=$(echo "$out" | awk '/^event_bytes/ {print $2}')
    rss=$(echo "$out" | awk '/^peak_rss_kib/ {print $2}')
    printf '| %s | %s ms | %s | %s | %s | %s KiB |\n' "$n" "$median" "$syncs" "$rec" "$ev" "$rss"
done
rm -rf "$work"
