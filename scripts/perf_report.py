#!/usr/bin/env python3
"""Print the markdown tables of docs/performance.md from what scripts/perf.sh measured.

Reads target/perf/ (hyperfine JSON, strace outputs, history.tsv) and the environment variables
perf.sh exports. Not meant to be run alone.
"""

import datetime
import json
import os
import platform
import re
import subprocess

OUT = os.environ["OUT"]
env = os.environ.get


def ms(s):
    return f"{s * 1000:.1f} ms" if s >= 0.001 else f"{s * 1e6:.0f} µs"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def kib(v):
    return f"{int(v) / 1024:.1f} MiB" if v else "n/a"


print("### Machine\n")
print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
print(f"- CPU: {cpu_model()}, nproc {os.cpu_count()}")
print(f"- kernel: {platform.release()}; work dir on {env('FS_TYPE')}")
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
print(f"- load average at the end (1, 5, 15 min): {load}")
print(f"- {sh('rustc --version')}; {sh('hyperfine --version')}; {sh('strace -V | head -1')}")
if env("ANSIBLE_PLAYBOOK"):
    ver = sh(f"{env('ANSIBLE_PLAYBOOK')} --version | head -1")
    print(f"- {ver}")
print()

# ---- 1 ---------------------------------------------------------------------------------
with open(f"{OUT}/compare.json") as f:
    res = json.load(f)["results"]
by = {r["command"]: r for r in res}
sed = by["sed -i"]["median"]
kh = by["kharden apply --no-gate"]["median"]
print(f"### The same edit three ways ({env('RUNS')} runs each, one hyperfine run)\n")
print("| command | mean ± σ | median | min | max | CPU (user + sys, mean) | median / sed | median / kharden |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in res:
    print(
        f"| {r['command']} | {ms(r['mean'])} ± {ms(r['stddev'] or 0)} | {ms(r['median'])} "
        f"| {ms(r['min'])} | {ms(r['max'])} | {ms(r['user'] + r['system'])} "
        f"| {r['median'] / sed:.1f}× "
        f"| {r['median'] / kh:.2f}× |"
    )
print()
print(
    f"The state directory was kept across runs (it held {env('STATE_TXNS')} transactions at "
    "the end). Every run started from a fresh copy of the fixture."
)
if env("ANSIBLE_BACKUP"):
    print(
        f"lineinfile's `backup: yes` left `{env('ANSIBLE_BACKUP')}` beside the manifest; in "
        "`/etc/kubernetes/manifests` kubelet would start it as a second kube-apiserver pod."
    )
if not env("ANSIBLE_PLAYBOOK"):
    print("Ansible: SKIPPED (ansible-playbook not found).")
print()

# ---- 2 ---------------------------------------------------------------------------------
EXPECTED = "JJJJTDJJJJJJ"
WHAT = [
    "redb open: header rewritten with its recovery-required flag set",
    "still in the open, before any commit: the file grows back (ftruncate) to the length its "
    "region layout needs; the clean close of the last process had trimmed it",
    "prepare commit: data pages (SingleWriter syncs pages, then the header that points to them)",
    "prepare commit: header. `Prepared` is durable before the manifest is touched (invariant 3)",
    "the manifest's contents, durable before the rename",
    "the rename, durable (the directory entry)",
    "commit of `Committed`: data pages",
    "commit of `Committed`: header. Success is reported only after this one",
    "clean close: allocator state written",
    "clean close: header",
    "clean close: file trimmed to its used length",
    "clean close: recovery-required flag cleared, so the next open needs no repair scan",
]
calls = []
with open(f"{OUT}/apply.strace") as f:
    for line in f:
        m = re.search(r"\b(fsync|fdatasync)\(\d+<([^>]*)>", line)
        if m:
            calls.append((m.group(1), m.group(2)))


def kind(path):
    base = os.path.basename(path)
    if base == "journal.redb":
        return "J"
    if base.startswith("."):
        return "T"
    return "D"


def label(path):
    k = kind(path)
    return {
        "J": "`journal.redb`",
        "T": "`.kube-apiserver.yaml.kharden-N` (temp file)",
        "D": "manifests directory",
    }[k]


seq = "".join(kind(p) for _, p in calls)
print("### fsyncs of one `kharden apply --no-gate` (strace -f)\n")
print("| fsync # | call | file | what for |")
print("|---:|---|---|---|")
for i, (call, path) in enumerate(calls):
    what = WHAT[i] if seq == EXPECTED else "(not attributed: the sequence differs from the one documented)"
    print(f"| {i + 1} | {call} | {label(path)} | {what} |")
print()
per_txn = int(env("SYNC_TWO")) - int(env("SYNC_APPLY"))
two = int(env("TWO_TXNS"))
print("| what | fsync + fdatasync calls |")
print("|---|---:|")
print(f"| one process, one transaction (`apply --no-gate`) | {env('SYNC_APPLY')} |")
print(f"| one process, {two} transactions (`harden --no-gate --only 1.2.17,1.2.18`) | {env('SYNC_TWO')} |")
if two == 2:
    print(f"| so: each transaction (prepare, file, commit) | {per_txn} |")
    print(f"| so: each process (open, growth back at open, close) | {int(env('SYNC_APPLY')) - per_txn} |")
print(f"| `recover` with nothing open | {env('SYNC_RECOVER')} |")
print(f"| `journal log --limit 20` (read-only) | {env('SYNC_LOG')} |")
ex = (int(env("PROBE_EX_101")) - int(env("PROBE_EX_1"))) / 100
sw = (int(env("PROBE_SW_101")) - int(env("PROBE_SW_1"))) / 100
print(f"| redb alone, per `Durability::Immediate` commit, ExclusiveWriter | {ex:g} |")
print(f"| redb alone, per `Durability::Immediate` commit, SingleWriter (kharden's mode) | {sw:g} |")
print(f"| redb alone, open + close with no commit, SingleWriter | {env('PROBE_SW_0')} |")
print()
print("The floor: redb's fsyncs for one process making 2 immediate commits (steady state), plus")
print("the 2 of the file, by concurrency mode and close strategy:")
print()
print("| mode | close | redb fsyncs | + file = per `apply` | read-only open afterwards (`journal log`) |")
print("|---|---|---:|---:|---|")
for row in env("FLOOR").strip(";").split(";"):
    mode, how, n, ro = row.split("|", 3)
    how = {"close": "clean close", "no-close": "no close (next open repairs)",
           "no-close qr-last": "no close, last commit quick-repair"}.get(how, how)
    print(f"| {mode} | {how} | {n} | {int(n) + 2} | {ro.removeprefix('read-only open: ')} |")
print()

# ---- 3 ---------------------------------------------------------------------------------
with open(f"{OUT}/history.json") as f:
    hres = {r["command"]: r for r in json.load(f)["results"]}
rows = []
with open(f"{OUT}/history.tsv") as f:
    for line in f:
        n, size, _built = line.rstrip("\n").split("\t", 2)
        rows.append((int(n), int(size)))
print(f"### History: `recover` and `journal log --limit 20` ({env('HIST_RUNS')} runs each, warm page cache)\n")
print("| transactions | journal size | bytes / transaction | `recover` median (mean ± σ) | `journal log --limit 20` median (mean ± σ) |")
print("|---:|---:|---:|---:|---:|")
for n, size in rows:
    r, lg = hres[f"recover {n}"], hres[f"log {n}"]
    print(
        f"| {n:,} | {size / 1048576:.1f} MiB | {size // n} "
        f"| {ms(r['median'])} ({ms(r['mean'])} ± {ms(r['stddev'] or 0)}) "
        f"| {ms(lg['median'])} ({ms(lg['mean'])} ± {ms(lg['stddev'] or 0)}) |"
    )
print()

# ---- 4 ---------------------------------------------------------------------------------
big = int(env("BIG"))
print("### Memory and size\n")
print("| what | figure |")
print("|---|---:|")
print(f"| peak RSS, `kharden apply --no-gate` | {kib(env('RSS_APPLY'))} |")
print(f"| peak RSS, `kharden recover` on the {big:,}-transaction journal | {kib(env('RSS_RECOVER'))} |")
print(f"| peak RSS, `kharden journal log --limit 20` on the {big:,}-transaction journal | {kib(env('RSS_LOG'))} |")
print(f"| peak RSS, `sed -i` | {kib(env('RSS_SED'))} |")
if env("RSS_ANSIBLE"):
    print(f"| peak RSS, `ansible-playbook` lineinfile (largest process) | {kib(env('RSS_ANSIBLE'))} |")
print(f"| release binary `target/release/kharden` | {int(env('BIN_SIZE')) / 1048576:.1f} MiB |")
print(f"| the same, stripped | {int(env('BIN_STRIPPED')) / 1048576:.1f} MiB |")
