#!/usr/bin/env bash
# Regenerate every figure of docs/performance.md and print them as markdown tables.
#
#   scripts/perf.sh                 # everything (about 3-5 minutes on 2 cores)
#   RUNS=10 scripts/perf.sh         # fewer runs per command in the comparison
#
# What it measures, on the same edit of the same manifest (the kubeadm kube-apiserver fixture,
# inserting `- --profiling=false` after the last flag, checked byte for byte to be the same
# result for all three):
#   1. `kharden apply --no-gate` (release binary, fresh copy of the manifest each run, one
#      persistent state dir) vs Ansible's `lineinfile` (`backup: yes`, local connection) vs
#      `sed -i` (no fsync, no journal: the unsafe floor), side by side in one hyperfine run;
#   2. the fsyncs of one `apply --no-gate` (strace), of two transactions in one process, of
#      `recover` and of `journal log`, and redb's cost per commit in both concurrency modes;
#   3. `recover` and `journal log --limit 20` on journals of 1k, 10k and 100k transactions
#      (built with examples/make_journal.rs, not with 100k CLI runs);
#   4. journal bytes per transaction, peak RSS, binary size.
#
# It installs nothing. It needs hyperfine, strace, GNU time (/usr/bin/time) and python3, and
# for the Ansible column ansible-playbook (on PATH, or in target/contrib-venv, the venv that
# contrib/ci-check.sh makes); without it that column is skipped with a message.
#
# The report is printed on stdout and kept in target/perf/report.md; the raw hyperfine JSON
# and strace outputs are kept in target/perf/.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
RUNS=${RUNS:-20}
HIST_RUNS=${HIST_RUNS:-20}
SIZES=${SIZES:-"1000 10000 100000"}
OUT=$ROOT_DIR/target/perf
log() { printf '%s\n' "perf.sh: $*" >&2; }

# ---- tools ------------------------------------------------------------------------------
missing=0
need() { # need CMD HOW-TO-INSTALL
    if ! command -v "$1" >/dev/null 2>&1; then
        log "missing: $1 (install: $2)"
        missing=1
    fi
}
need hyperfine "apt-get install hyperfine"
need strace "apt-get install strace"
need python3 "apt-get install python3"
need strip "apt-get install binutils"
if [ ! -x /usr/bin/time ]; then
    log "missing: /usr/bin/time (install: apt-get install time)"
    missing=1
fi
[ "$missing" = 0 ] || { log "install the tools above, then run again"; exit 1; }

ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-}
if [ -z "$ANSIBLE_PLAYBOOK" ]; then
    if command -v ansible-playbook >/dev/null 2>&1; then
        ANSIBLE_PLAYBOOK=$(command -v ansible-playbook)
    elif [ -x "$ROOT_DIR/target/contrib-venv/bin/ansible-playbook" ]; then
        ANSIBLE_PLAYBOOK=$ROOT_DIR/target/contrib-venv/bin/ansible-playbook
    fi
fi
if [ -z "$ANSIBLE_PLAYBOOK" ]; then
    log "ansible-playbook not found: the lineinfile column is SKIPPED"
    log "  (install: python3 -m venv target/contrib-venv && target/contrib-venv/bin/pip install ansible-core)"
fi

# ---- build ------------------------------------------------------------------------------
log "building the release binary and examples/make_journal.rs"
cargo build --release -q -p kharden --bin kharden --example make_journal
KH_SRC=$ROOT_DIR/target/release/kharden
MAKE_JOURNAL=$ROOT_DIR/target/release/examples/make_journal

# Work on a disk (under target/), not a tmpfs: fsync must cost what it costs.
rm -rf "$OUT"
mkdir -p "$OUT"
W=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$W"' EXIT
KH=$W/kharden
cp "$KH_SRC" "$KH"
NODE=$W/node
MANIFESTS=$NODE/etc/kubernetes/manifests
M=$MANIFESTS/kube-apiserver.yaml
REF=$W/kube-apiserver.yaml
mkdir -p "$MANIFESTS"
cp tests/fixtures/kube-apiserver.yaml "$REF"
export KHARDEN_ROOT=$NODE KHARDEN_STATE_DIR=$W/state

# ---- 1. the same edit, three ways ---------------------------------------------------------
SED_EXPR='/^    - --tls-private-key-file=/a\    - --profiling=false'
cat >"$W/lineinfile.yml" <<'EOF'
- hosts: localhost
  gather_facts: false
  tasks:
    - name: --profiling=false on the kube-apiserver
      ansible.builtin.lineinfile:
        path: "{{ target }}"
        regexp: '^\s*- --profiling='
        line: '    - --profiling=false'
        insertafter: '^    - --tls-private-key-file='
        backup: true
EOF
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False \
    ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False
ANSIBLE_CMD="$ANSIBLE_PLAYBOOK -i localhost, -c local -e ansible_python_interpreter={{ansible_playbook_python}} -e target=$M $W/lineinfile.yml"

# Check that all three make the same bytes.
cp "$REF" "$M"; "$KH" -q apply "$M" --set profiling=false --no-gate >/dev/null; cp "$M" "$W/by-kharden"
cp "$REF" "$M"; sed -i "$SED_EXPR" "$M"; cp "$M" "$W/by-sed"
cmp "$W/by-kharden" "$W/by-sed" || { log "sed's edit differs from kharden's"; exit 1; }
if [ -n "$ANSIBLE_PLAYBOOK" ]; then
    cp "$REF" "$M"; $ANSIBLE_CMD >"$W/ansible.out" 2>&1 || { cat "$W/ansible.out" >&2; exit 1; }
    cp "$M" "$W/by-ansible"
    cmp "$W/by-kharden" "$W/by-ansible" || { log "lineinfile's edit differs from kharden's"; exit 1; }
    # lineinfile's backup lands beside the file: in a manifests directory, kubelet would run it.
    ANSIBLE_BACKUP=$(find "$MANIFESTS" -name 'kube-apiserver.yaml.*~' -printf '%f\n' | head -1)
fi
rm -f "$MANIFESTS"/kube-apiserver.yaml.*~
log "all three make the same $(wc -c <"$W/by-kharden")-byte file"

log "comparison: $RUNS runs of each"
# -N: no shell between hyperfine and the command (a shell's start would dwarf sed's time).
args=(--style basic -N --warmup 2 --runs "$RUNS" --export-json "$OUT/compare.json"
    --prepare "cp $REF $M"
    --command-name "kharden apply --no-gate" "$KH -q apply $M --set profiling=false --no-gate"
    --prepare "cp $REF $M"
    --command-name "sed -i" "sed -i '$SED_EXPR' $M")
if [ -n "$ANSIBLE_PLAYBOOK" ]; then
    args+=(--prepare "sh -c 'cp $REF $M && rm -f $MANIFESTS/kube-apiserver.yaml.*~'"
        --command-name "ansible lineinfile (backup: yes)" "$ANSIBLE_CMD")
fi
hyperfine "${args[@]}" >"$OUT/compare.txt" 2>&1 || { cat "$OUT/compare.txt" >&2; exit 1; }
rm -f "$MANIFESTS"/kube-apiserver.yaml.*~
txn_count() {
    "$KH" -o json journal log --limit 1000000 |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["transactions"]))'
}
STATE_TXNS=$(txn_count)

# ---- 2. fsyncs --------------------------------------------------------------------------
log "fsyncs (strace)"
count_syncs() { # count_syncs OUTFILE CMD...
    local out=$1; shift
    strace -f -c -o "$out" -e trace=fsync,fdatasync "$@" >/dev/null 2>&1 || true
    awk '$NF=="fsync"||$NF=="fdatasync"{n+=$(NF-1)} END{print n+0}' "$out"
}
cp "$REF" "$M"
strace -f -y -o "$OUT/apply.strace" -e trace=fsync,fdatasync,renameat,renameat2,rename \
    "$KH" -q apply "$M" --set profiling=false --no-gate >/dev/null
cp "$REF" "$M"
SYNC_APPLY=$(count_syncs "$OUT/apply.count" "$KH" -q apply "$M" --set profiling=false --no-gate)
cp "$REF" "$M"
before=$(txn_count)
SYNC_TWO=$(count_syncs "$OUT/harden2.count" "$KH" -q harden --no-gate --only 1.2.17,1.2.18)
TWO_TXNS=$(($(txn_count) - before))
SYNC_RECOVER=$(count_syncs "$OUT/recover.count" "$KH" -q recover)
SYNC_LOG=$(count_syncs "$OUT/log.count" "$KH" -q journal log --limit 20)
probe() { # probe MODE N -> fdatasyncs of a process making N immediate commits (second open)
    rm -f "$W/probe.redb"
    "$MAKE_JOURNAL" --redb-commits "$1" "$W/probe.redb" 0 # create
    "$MAKE_JOURNAL" --redb-commits "$1" "$W/probe.redb" 0 # the first reopen costs one more
    count_syncs "$OUT/probe-$1-$2.count" "$MAKE_JOURNAL" --redb-commits "$1" "$W/probe.redb" "$2"
}
PROBE_EX_1=$(probe exclusive 1); PROBE_EX_101=$(probe exclusive 101)
PROBE_SW_1=$(probe single 1); PROBE_SW_101=$(probe single 101)
PROBE_SW_0=$(probe single 0)
# The floor: redb's fsyncs for a process making 2 immediate commits (kharden's prepare and
# commit), in steady state (the third such process in a row), per concurrency mode and close
# strategy, and whether a read-only open (`journal log`) works afterwards.
floor() { # floor MODE OPTS... -> "fsyncs|read-only result"
    local mode=$1; shift
    rm -f "$W/floor.redb"
    "$MAKE_JOURNAL" --redb-commits "$mode" "$W/floor.redb" 1 >/dev/null
    "$MAKE_JOURNAL" --redb-commits "$mode" "$W/floor.redb" 2 "$@" >/dev/null
    "$MAKE_JOURNAL" --redb-commits "$mode" "$W/floor.redb" 2 "$@" >/dev/null
    local n
    n=$(count_syncs "$OUT/floor.count" "$MAKE_JOURNAL" --redb-commits "$mode" "$W/floor.redb" 2 "$@")
    printf '%s|%s' "$n" "$("$MAKE_JOURNAL" --redb-commits "$mode" "$W/floor.redb" 0 ro-only)"
}
FLOOR=""
for mode in single exclusive; do
    for opts in "" "no-close" "no-close qr-last"; do
        # shellcheck disable=SC2086 # opts is a list of words
        FLOOR+="$mode|${opts:-close}|$(floor "$mode" $opts);"
    done
done

# ---- 3. history -------------------------------------------------------------------------
# Built on a tmpfs when there is one (fdatasync is free there), then copied to the disk.
BUILD_BASE=/dev/shm
[ -d "$BUILD_BASE" ] && [ -w "$BUILD_BASE" ] || BUILD_BASE=$W
hist_args=(--style basic -N --warmup 3 --runs "$HIST_RUNS" --export-json "$OUT/history.json")
: >"$OUT/history.tsv"
for n in $SIZES; do
    log "journal of $n transactions"
    b=$(mktemp -d "$BUILD_BASE/kharden-perf-journal.XXXXXX")
    built=$("$MAKE_JOURNAL" "$b/state" "$n" 2>/dev/null)
    mkdir -m 0700 -p "$W/h$n/state"
    cp "$b/state/journal.redb" "$W/h$n/state/journal.redb"
    rm -rf "$b"
    size=$(stat -c %s "$W/h$n/state/journal.redb")
    printf '%s\t%s\t%s\n' "$n" "$size" "$built" >>"$OUT/history.tsv"
    hist_args+=(--command-name "recover $n" "$KH -q --state-dir $W/h$n/state --root $NODE recover"
        --command-name "log $n" "$KH -q --state-dir $W/h$n/state journal log --limit 20")
done
log "timing recover and journal log ($HIST_RUNS runs each)"
hyperfine "${hist_args[@]}" >"$OUT/history.txt" 2>&1 || { cat "$OUT/history.txt" >&2; exit 1; }

# ---- 4. memory, sizes ---------------------------------------------------------------------
rss() { # rss CMD... -> peak RSS in KiB
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); print $2}'
}
cp "$REF" "$M"
RSS_APPLY=$(rss "$KH" -q apply "$M" --set profiling=false --no-gate)
BIG=$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -1)
RSS_RECOVER=$(rss "$KH" -q --state-dir "$W/h$BIG/state" --root "$NODE" recover)
RSS_LOG=$(rss "$KH" -q --state-dir "$W/h$BIG/state" journal log --limit 20)
RSS_SED=$(cp "$REF" "$M"; rss sed -i "$SED_EXPR" "$M")
RSS_ANSIBLE=
if [ -n "$ANSIBLE_PLAYBOOK" ]; then
    cp "$REF" "$M"
    RSS_ANSIBLE=$(rss $ANSIBLE_CMD)
    rm -f "$MANIFESTS"/kube-apiserver.yaml.*~
fi
BIN_SIZE=$(stat -c %s "$KH")
strip -o "$W/kharden.stripped" "$KH"
BIN_STRIPPED=$(stat -c %s "$W/kharden.stripped")

# ---- report -------------------------------------------------------------------------------
export OUT RUNS HIST_RUNS ANSIBLE_PLAYBOOK ANSIBLE_BACKUP="${ANSIBLE_BACKUP:-}" STATE_TXNS \
    SYNC_APPLY SYNC_TWO TWO_TXNS SYNC_RECOVER SYNC_LOG PROBE_EX_1 PROBE_EX_101 PROBE_SW_1 \
    PROBE_SW_101 PROBE_SW_0 FLOOR RSS_APPLY RSS_RECOVER RSS_LOG RSS_SED RSS_ANSIBLE BIG BIN_SIZE \
    BIN_STRIPPED FS_TYPE="$(df -T "$W" | awk 'NR==2{print $2}')"
python3 "$ROOT_DIR/scripts/perf_report.py" | tee "$OUT/report.md"
