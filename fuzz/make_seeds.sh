#!/usr/bin/env bash
# Write fuzz seeds to fuzz/seeds/<target>/ from the crate's fixtures, the shared corpus
# (../shared/corpus/manifests, when present) and variants of them: CRLF, BOM, no final
# newline, tabs, each with several change specs appended after a NUL byte (see
# fuzz_targets/edit.rs for the layout).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/seeds"
rm -rf "$out"
mkdir -p "$out/edit" "$out/inspect"

srcs=()
for f in "$root"/crates/manifest/tests/fixtures/*.yaml "$root"/crates/manifest/tests/fixtures/refuse/*.yaml; do
    srcs+=("$f")
done
if [ -d "$root/../shared/corpus/manifests" ]; then
    for f in "$root"/../shared/corpus/manifests/*.yaml; do
        srcs+=("$f")
    done
fi

changes=(
    "set v=4"
    "set profiling=false"
    "set anonymous-auth"
    "unset insecure-port"
    "add-item enable-admission-plugins=AlwaysPullImages"
    "remove-item enable-admission-plugins=NodeRestriction"
    "remove-item-or authorization-mode=RBAC=AlwaysAllow"
    "at-least audit-log-maxage=30"
    "set-key feature-gates=RotateKubeletServerCertificate=true"
    "set etcd-servers=on"
    "mount audit:/etc/kubernetes/audit:/etc/kubernetes/audit:ro:DirectoryOrCreate"
)

n=0
for f in "${srcs[@]}"; do
    base="$(basename "$f" .yaml)"
    cp "$f" "$out/inspect/$base"
    # variants
    sed 's/$/\r/' "$f" > "$out/inspect/$base.crlf"
    { printf '\xef\xbb\xbf'; cat "$f"; } > "$out/inspect/$base.bom"
    printf '%s' "$(cat "$f")" > "$out/inspect/$base.noeol"
    sed 's/^\(\s*\)- /\1-\t/' "$f" > "$out/inspect/$base.tabs"
    for v in "$out/inspect/$base" "$out/inspect/$base".crlf "$out/inspect/$base".bom "$out/inspect/$base".noeol "$out/inspect/$base".tabs; do
        # three change specs per variant, rotating through the list
        for k in 0 1 2; do
            i=$(( (n + k * 5) % ${#changes[@]} ))
            { cat "$v"; printf '\0%s' "${changes[$i]}"; } > "$out/edit/$(basename "$v").$k"
        done
        n=$((n + 3))
    done
done
# kubelet-config targets: the crate's fixtures, each with two change lines after a NUL byte
# (see fuzz_targets/kubelet_config_edit.rs and kubelet_env_edit.rs for the layout).
kdir="$root/crates/kubelet-config/tests/fixtures"
mkdir -p "$out/kubelet_config_edit" "$out/kubelet_env_edit"
kchanges=(
    "set readOnlyPort=i:0"
    "set authentication.anonymous.enabled=b:false"
    "set featureGates.RotateKubeletServerCertificate=b:true"
    "set authorization.mode=s:on"
    "unset authentication.x509.clientCAFile"
    "list tlsCipherSuites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384"
    "list clusterDNS="
    "set evictionHard[memory.available]=s:100Mi"
    "set streamingConnectionIdleTimeout=s:4h0m0s"
)
k=0
for f in "$kdir"/*.yaml "$kdir"/*.json "$kdir"/*.conf "$kdir"/refuse/*.yaml; do
    [ -f "$f" ] || continue
    b="$(basename "$f")"
    for i in 0 1 2; do
        j=$(( (k + i * 4) % ${#kchanges[@]} ))
        j2=$(( (j + 1) % ${#kchanges[@]} ))
        { cat "$f"; printf '\0%s\n%s' "${kchanges[$j]}" "${kchanges[$j2]}"; } > "$out/kubelet_config_edit/$b.$i"
    done
    k=$((k + 1))
done
envchanges=(
    "set read-only-port=0"
    "unset anonymous-auth"
    "set feature-gates=RotateKubeletServerCertificate=true"
    "set node-labels=a=b c >KUBELET_EXTRA_ARGS"
    "unset pod-infra-container-image"
    "set v=2 >A"
)
k=0
for f in "$kdir"/env/*; do
    [ -f "$f" ] || continue
    b="$(basename "$f")"
    for i in 0 1 2 3; do
        j=$(( (k + i) % ${#envchanges[@]} ))
        j2=$(( (j + 2) % ${#envchanges[@]} ))
        { cat "$f"; printf '\0%s\n%s' "${envchanges[$j]}" "${envchanges[$j2]}"; } > "$out/kubelet_env_edit/$b.$i"
    done
    k=$((k + 1))
done
echo "fuzz/make_seeds.sh: $(ls "$out/kubelet_config_edit" | wc -l) kubelet_config_edit seeds, $(ls "$out/kubelet_env_edit" | wc -l) kubelet_env_edit seeds"
echo "fuzz/make_seeds.sh: $n edit seeds, $(ls "$out/inspect" | wc -l) inspect seeds"
