#!/usr/bin/env bash
# Check contrib/: the Ansible playbooks against a simulated control-plane node and a simulated
# worker, and the Kubernetes Job manifests. Called from .ci/run; takes a minute or two.
#
#   contrib/ci-check.sh
#
# - Builds the release binary (or uses $KHARDEN_BIN), and the test node's binary for the worker
#   (or uses $KHARDEN_TESTNODE_BIN).
# - Uses ansible-playbook from target/contrib-venv, creating that venv with
#   `pip install ansible-core` when it is not there yet (pip reaches PyPI).
# - The node is a temp dir with copies of tests/fixtures/*.yaml under etc/kubernetes/manifests,
#   its own state dir, and `--no-gate` (there is no kubelet to restart anything).
# Checks, each printed as "ok: ..." (the first failure stops the script, exit 1):
#   1. check mode: Ansible reports a change, and nothing is written or journaled;
#   2. a real run: Ansible reports a change, and `kharden harden --dry-run` then plans nothing
#      (no automatable control, file or flag, left failing);
#   3. a second real run changes nothing (idempotent);
#   4. a rollback (an audit script that fails) fails the play with kharden's exit code 4, and
#      the node's files are back to what they were;
#   5. the Job manifest has the fields a control-plane run needs (and passes kubeconform when
#      that is installed);
#   6. the worker play: its rollout discipline, then for real on a simulated worker
#      (`kharden-testnode worker`): check mode, a fixing run through gated kubelet restarts, an
#      idempotent second run, a configuration the kubelet refuses rolled back (exit 3);
#   7. the worker Job manifest.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
VENV=$ROOT_DIR/target/contrib-venv
PASSED=0
ok() {
    echo "ok: $*"
    PASSED=$((PASSED + 1))
}
die() {
    echo "FAILED: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

# ---- tools -----------------------------------------------------------------------------
if [ -n "${KHARDEN_BIN:-}" ]; then
    KH=$KHARDEN_BIN
else
    cargo build --release -q -p kharden --bin kharden
    KH=$ROOT_DIR/target/release/kharden
fi
[ -x "$KH" ] || die "no kharden binary at $KH"

if [ ! -x "$VENV/bin/ansible-playbook" ]; then
    echo "installing ansible-core into $VENV (pip)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check ansible-core pyyaml
fi
PLAYBOOK=$VENV/bin/ansible-playbook
PY=$VENV/bin/python
"$PLAYBOOK" --version | sed -n 1p

W=$(mktemp -d "${TMPDIR:-/tmp}/kharden-ci-check.XXXXXX")
trap 'rm -rf "$W"' EXIT
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False \
    ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False ANSIBLE_LOCAL_TEMP=$W/ansible-tmp \
    ANSIBLE_HOME=$W/ansible-home

new_node() { # new_node DIR: a simulated control-plane node
    mkdir -p "$1/etc/kubernetes/manifests"
    cp tests/fixtures/*.yaml "$1/etc/kubernetes/manifests/"
}
digest() { # every file of a node's manifests directory, hashed
    (cd "$1/etc/kubernetes/manifests" && sha256sum -- * .[!.]* 2>/dev/null || true) | sort
}
txns() { # number of transactions in a state dir's journal
    "$KH" --state-dir "$1" -o json journal log --limit 1000000 |
        "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["transactions"]))'
}
play() { # play NODE LOGFILE [ansible-playbook args...]: run the playbook on NODE, status in $rc
    local node=$1 logf=$2
    shift 2
    local extra
    extra=$(printf '{"kharden_hosts": "localhost", "kharden_path": "%s", "ansible_python_interpreter": "%s", "kharden_extra_args": ["--no-gate", "--root", "%s", "--state-dir", "%s"]' \
        "$KH" "$PY" "$node" "$node/var/lib/kharden")
    set +e
    "$PLAYBOOK" -i localhost, -c local contrib/ansible/harden.yml -e "$extra}" "$@" >"$logf" 2>&1
    rc=$?
    set -e
}
recap() { # recap LOGFILE FIELD: a number of the PLAY RECAP line
    sed -n "s/^localhost *:.* $2=\([0-9]*\).*/\1/p" "$1" | tail -1
}

# ---- 1. check mode ----------------------------------------------------------------------
NODE=$W/node
new_node "$NODE"
before=$(digest "$NODE")
play "$NODE" "$W/check.log" --check
[ "$rc" = 0 ] || { cat "$W/check.log"; die "check mode: ansible-playbook exited $rc"; }
[ "$(recap "$W/check.log" changed)" = 1 ] || { cat "$W/check.log"; die "check mode: no change was predicted"; }
[ "$(digest "$NODE")" = "$before" ] || die "check mode changed a manifest"
[ ! -e "$NODE/var/lib/kharden/journal.redb" ] || [ "$(txns "$NODE/var/lib/kharden")" = 0 ] ||
    die "check mode journaled a transaction"
ok "check mode predicts a change, writes and journals nothing"

# ---- 2. real run ------------------------------------------------------------------------
play "$NODE" "$W/run.log"
[ "$rc" = 0 ] || { cat "$W/run.log"; die "real run: ansible-playbook exited $rc"; }
[ "$(recap "$W/run.log" changed)" = 1 ] || { cat "$W/run.log"; die "real run: not reported as changed"; }
[ "$(digest "$NODE")" != "$before" ] || die "real run changed no manifest"
n=$(txns "$NODE/var/lib/kharden")
[ "$n" -gt 0 ] || die "real run journaled nothing"
# What harden would still do (files and flags): nothing, and nothing it can fix still fails.
"$KH" --root "$NODE" --state-dir "$NODE/var/lib/kharden" -o json harden --dry-run --no-gate >"$W/plan.json"
failing=$("$PY" - "$W/plan.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
print(" ".join([c for s in doc["steps"] for c in s["controls"]] + doc["still_failing"]))
EOF
)
[ -z "$failing" ] || die "automatable controls still failing after the run: $failing"
ok "a real run reports changed, commits $n transactions, and leaves no automatable control failing"

# ---- 3. idempotent ----------------------------------------------------------------------
after=$(digest "$NODE")
play "$NODE" "$W/again.log"
[ "$rc" = 0 ] || { cat "$W/again.log"; die "second run: ansible-playbook exited $rc"; }
[ "$(recap "$W/again.log" changed)" = 0 ] || { cat "$W/again.log"; die "second run reported a change"; }
[ "$(digest "$NODE")" = "$after" ] || die "second run changed a manifest"
[ "$(txns "$NODE/var/lib/kharden")" = "$n" ] || die "second run journaled a transaction"
ok "a second run changes nothing"

# ---- 4. a rollback stops the rollout ------------------------------------------------------
NODE2=$W/node2
new_node "$NODE2"
before2=$(digest "$NODE2")
# One control through harden, then an apply that must never run: an audit script that always
# fails makes kharden roll back the first transaction (exit 4).
extra=$(printf '{"kharden_hosts": "localhost", "kharden_path": "%s", "ansible_python_interpreter": "%s", "kharden_only": ["1.2.17"], "kharden_apply": [{"manifest": "%s/etc/kubernetes/manifests/kube-scheduler.yaml", "changes": ["--set", "profiling=false"]}], "kharden_extra_args": ["--no-gate", "--audit-script", "/bin/false", "--root", "%s", "--state-dir", "%s"]}' \
    "$KH" "$PY" "$NODE2" "$NODE2" "$NODE2/var/lib/kharden")
set +e
"$PLAYBOOK" -i localhost, -c local contrib/ansible/harden.yml -e "$extra" >"$W/rollback.log" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] || { cat "$W/rollback.log"; die "a rolled-back change did not fail the play"; }
grep -q "exited 4: rolled back: the audit failed" "$W/rollback.log" ||
    { cat "$W/rollback.log"; die "the failure does not name kharden's exit code 4"; }
grep -q "TASK \[kharden apply\]" "$W/rollback.log" &&
    { cat "$W/rollback.log"; die "the play went on after the rollback"; }
[ "$(digest "$NODE2")" = "$before2" ] || die "the rolled-back node's manifests differ from before"
"$KH" --state-dir "$NODE2/var/lib/kharden" -o json journal log |
    "$PY" -c 'import json,sys; s=[t["state"] for t in json.load(sys.stdin)["transactions"]]; sys.exit(0 if s == ["rolled-back"] else "journal states: %s" % s)' ||
    die "the journal does not show one rolled-back transaction"
ok "a rollback (exit 4) fails the play before its next task and leaves the files as they were"

# ---- 5. the Job manifest ----------------------------------------------------------------
"$PY" - contrib/kubernetes/harden-job.yaml <<'EOF' || die "contrib/kubernetes/harden-job.yaml"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert len(docs) == 1, f"{len(docs)} documents"
job = docs[0]
assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job", "not a batch/v1 Job"
spec = job["spec"]
assert spec["backoffLimit"] == 0, "backoffLimit must be 0"
pod = spec["template"]["spec"]
assert pod["restartPolicy"] == "Never", "restartPolicy must be Never"
assert pod["hostPID"] is True, "hostPID must be true"
assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}, pod["nodeSelector"]
tol = {(t["key"], t.get("effect"), t.get("operator")) for t in pod["tolerations"]}
assert ("node-role.kubernetes.io/control-plane", "NoSchedule", "Exists") in tol, tol
(c,) = pod["containers"]
assert c["securityContext"]["privileged"] is True, "not privileged"
# The host's own kharden in the host's namespaces (the boot-time recover must read what it
# journals): nsenter into PID 1's mount and pid namespaces, no --root, no kharden in the image.
cmd, args = c["command"], c.get("args", [])
assert cmd[:3] == ["nsenter", "--target", "1"] and "--mount" in cmd and "--pid" in cmd, cmd
assert args[:2] == ["kharden", "harden"], args
assert "--root" not in cmd + args and "--state-dir" not in cmd + args, cmd + args
EOF
if command -v kubeconform >/dev/null 2>&1; then
    kubeconform -strict -summary contrib/kubernetes/harden-job.yaml || die "kubeconform"
    ok "the Job manifest runs the host's kharden in the host's namespaces, and passes kubeconform"
else
    ok "the Job manifest runs the host's kharden in the host's namespaces (kubeconform not installed: schema not checked)"
fi

# ---- 6. the worker play ------------------------------------------------------------------
"$PLAYBOOK" -i localhost, --syntax-check contrib/ansible/harden-workers.yml >"$W/workers-syntax.log" 2>&1 ||
    { cat "$W/workers-syntax.log"; die "contrib/ansible/harden-workers.yml: syntax"; }
"$PY" - contrib/ansible/harden-workers.yml <<'EOF2' || die "contrib/ansible/harden-workers.yml"
import sys, yaml
(play,) = yaml.safe_load(open(sys.argv[1]))
assert play["any_errors_fatal"] is True, "the first rollback must stop the rollout"
assert play["max_fail_percentage"] == 0, "max_fail_percentage must be 0"
assert "kharden_batch" in str(play["serial"]), "a few nodes at a time"
cmds = [t["ansible.builtin.command"]["argv"] for t in play["tasks"] if "ansible.builtin.command" in t]
assert any("'harden'" in c for c in cmds) and any("'kubelet', 'set'" in c for c in cmds), cmds
assert all("--dry-run" in c for c in cmds), "check mode must run kharden --dry-run"
EOF2
# A node without a kubelet: the play runs, harden plans nothing (a real worker is exercised by
# the Rust end-to-end tests, tests/kubelet_e2e.rs, on the simulated worker).
NODE3=$W/node3
mkdir -p "$NODE3"
extra=$(printf '{"kharden_hosts": "localhost", "kharden_path": "%s", "ansible_python_interpreter": "%s", "kharden_extra_args": ["--root", "%s", "--state-dir", "%s"]}' \
    "$KH" "$PY" "$NODE3" "$NODE3/var/lib/kharden")
set +e
"$PLAYBOOK" -i localhost, -c local contrib/ansible/harden-workers.yml -e "$extra" --check >"$W/workers.log" 2>&1
rc=$?
set -e
[ "$rc" = 0 ] || { cat "$W/workers.log"; die "the worker play on an empty node: exit $rc"; }
[ "$(recap "$W/workers.log" changed)" = 0 ] || { cat "$W/workers.log"; die "the worker play planned a change on an empty node"; }
ok "the worker play: a few nodes at a time, stops at the first rollback, check mode is --dry-run"

# ---- 6b. the worker play on a simulated worker, for real ----------------------------------
# `kharden-testnode worker` serves a kubeadm worker node: the service-manager emulator runs
# kubelet.service, whose kubelet emulator loads its configuration as the kubelet does and exits
# on what the kubelet refuses. The play drives the product binary through real gated restarts.
if [ -n "${KHARDEN_TESTNODE_BIN:-}" ]; then
    TN=$KHARDEN_TESTNODE_BIN
else
    cargo build -q -p kharden-testnode --bin kharden-testnode
    TN=$ROOT_DIR/target/debug/kharden-testnode
fi
WNODE=$W/worker
"$TN" worker --root "$WNODE" --config-dir /etc/kubernetes/kubelet.conf.d >"$W/worker.json" 2>"$W/worker.err" &
WORKER_PID=$!
# The worker stops its kubelet and pods on SIGTERM; then the temp dir goes.
trap 'kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 600); do
    [ -s "$W/worker.json" ] && break
    kill -0 "$WORKER_PID" 2>/dev/null || break
    sleep 0.1
done
[ -s "$W/worker.json" ] || { cat "$W/worker.err"; die "the simulated worker did not start"; }
wfield() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$W/worker.json" "$1"; }
SYSTEMCTL=$(wfield systemctl)
HEALTHZ_PORT=$(wfield healthz_port)
WSTATE=$WNODE/var/lib/kharden
wargs=(--root "$WNODE" --state-dir "$WSTATE" --systemctl "$SYSTEMCTL")
wplay() { # wplay LOGFILE EXTRA_JSON [ansible-playbook args...]: the worker play, status in $rc
    local logf=$1 more=$2
    shift 2
    local extra
    extra=$(printf '{"kharden_hosts": "localhost", "kharden_path": "%s", "ansible_python_interpreter": "%s", "kharden_extra_args": ["--root", "%s", "--state-dir", "%s", "--systemctl", "%s", "--stable-for", "1"]%s}' \
        "$KH" "$PY" "$WNODE" "$WSTATE" "$SYSTEMCTL" "$more")
    set +e
    "$PLAYBOOK" -i localhost, -c local contrib/ansible/harden-workers.yml -e "$extra" "$@" >"$logf" 2>&1
    rc=$?
    set -e
}
kubelet_files() { # the kubelet's configuration files, hashed
    (cd "$WNODE" && find var/lib/kubelet etc/kubernetes/kubelet.conf.d etc/default -type f -print0 2>/dev/null |
        xargs -0 sha256sum) | sort
}
healthy() { # the kubelet answers /healthz with 200 ok
    "$PY" -c 'import sys,urllib.request; r=urllib.request.urlopen("http://127.0.0.1:%s/healthz" % sys.argv[1], timeout=5); sys.exit(0 if r.status == 200 and r.read() == b"ok" else 1)' "$HEALTHZ_PORT"
}
wbefore=$(kubelet_files)
wplay "$W/w-check.log" "" --check
[ "$rc" = 0 ] || { cat "$W/w-check.log"; die "worker check mode: exit $rc"; }
[ "$(recap "$W/w-check.log" changed)" -ge 1 ] || { cat "$W/w-check.log"; die "worker check mode predicted no change"; }
[ "$(kubelet_files)" = "$wbefore" ] || die "worker check mode changed a kubelet file"
[ ! -e "$WSTATE/journal.redb" ] || [ "$(txns "$WSTATE")" = 0 ] || die "worker check mode journaled a transaction"
wplay "$W/w-run.log" ""
[ "$rc" = 0 ] || { cat "$W/w-run.log"; die "worker real run: exit $rc"; }
[ "$(recap "$W/w-run.log" changed)" -ge 1 ] || { cat "$W/w-run.log"; die "worker real run: not reported as changed"; }
[ "$(kubelet_files)" != "$wbefore" ] || die "worker real run changed no kubelet file"
healthy || die "the kubelet is not healthy after the worker play"
"$KH" -o json harden --dry-run "${wargs[@]}" >"$W/w-plan.json"
wfailing=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join([c for s in d["steps"] for c in s["controls"]] + d["still_failing"]))' "$W/w-plan.json")
[ -z "$wfailing" ] || die "automatable worker controls still failing after the play: $wfailing"
wn=$(txns "$WSTATE")
wplay "$W/w-again.log" ""
[ "$rc" = 0 ] || { cat "$W/w-again.log"; die "worker second run: exit $rc"; }
[ "$(recap "$W/w-again.log" changed)" = 0 ] || { cat "$W/w-again.log"; die "worker second run reported a change"; }
[ "$(txns "$WSTATE")" = "$wn" ] || die "worker second run journaled a transaction"
# A setting the kubelet refuses (a misspelt cipher suite): kharden rolls it back (exit 3), the
# play fails naming the code, and the old kubelet is healthy on the files it had.
wafter=$(kubelet_files)
wplay "$W/w-refused.log" ', "kharden_harden": false, "kharden_kubelet_set": ["tlsCipherSuites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265"]'
[ "$rc" != 0 ] || { cat "$W/w-refused.log"; die "a configuration the kubelet refuses did not fail the worker play"; }
grep -q "exited 3: rolled back" "$W/w-refused.log" ||
    { cat "$W/w-refused.log"; die "the worker play's failure does not name kharden's exit code 3"; }
[ "$(kubelet_files)" = "$wafter" ] || die "the rolled-back worker's kubelet files differ from before"
healthy || die "the old kubelet is not healthy after the rollback"
"$KH" --state-dir "$WSTATE" -o json journal log --limit 1 |
    "$PY" -c 'import json,sys; s=[t["state"] for t in json.load(sys.stdin)["transactions"]]; sys.exit(0 if s == ["rolled-back"] else "journal states: %s" % s)' ||
    die "the journal does not end with the rolled-back kubelet transaction"
ok "the worker play on a simulated worker: check mode writes nothing, a real run fixes every safe kubelet check through gated restarts (idempotent), a refused configuration is rolled back (exit 3) with the old kubelet healthy"

# ---- 7. the worker Job manifest -----------------------------------------------------------
"$PY" - contrib/kubernetes/harden-worker-job.yaml <<'EOF2' || die "contrib/kubernetes/harden-worker-job.yaml"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = [d["kind"] for d in docs]
assert kinds == ["Job"], kinds
(job,) = docs
spec = job["spec"]
assert spec["backoffLimit"] == 0, "backoffLimit must be 0"
pod = spec["template"]["spec"]
assert pod["hostPID"] is True and pod["hostNetwork"] is True, "hostPID and hostNetwork"
assert pod["nodeSelector"] == {"kubernetes.io/hostname": "NODE_NAME"}, pod["nodeSelector"]
(c,) = pod["containers"]
assert c["securityContext"]["privileged"] is True, "not privileged"
cmd, args = c["command"], c.get("args", [])
assert cmd[:3] == ["nsenter", "--target", "1"], cmd
assert all(ns in cmd for ns in ["--mount", "--pid", "--net"]), cmd
assert args[:2] == ["kharden", "harden"], args
assert "--root" not in cmd + args and "--systemctl" not in cmd + args, cmd + args
EOF2
if command -v kubeconform >/dev/null 2>&1; then
    kubeconform -strict -summary contrib/kubernetes/harden-worker-job.yaml || die "kubeconform (worker Job)"
fi
ok "the worker Job runs the host's kharden (and so its systemctl) through nsenter, one node per Job"

echo "contrib: $PASSED passed, 0 failed"
