#!/usr/bin/env bash
# Build the real, unmodified kube-apiserver and etcd from the official Go modules pinned in go/go.mod.
#
#   tools/kube_sandbox/build.sh          # builds into tools/kube_sandbox/bin/ when missing or out of date
#   tools/kube_sandbox/build.sh --force  # rebuilds even when the stamp matches
#
# Idempotent: a stamp (hash of go.mod, go.sum, this script and the Go version) sits next to the binaries; when
# both binaries exist and the stamp matches, the script exits at once. Go's own build cache makes a rebuild after
# a small change cheap. Only the Go module proxy is contacted (for `go mod download`), never a binary download.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOD="$HERE/go"
BIN="$HERE/bin"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
FORCE="${1:-}"

# shellcheck source=../go_build.sh
source "$HERE/../go_build.sh"

stamp() {
    {
        "$GO" env GOVERSION
        cat "$MOD/go.mod" "$MOD/go.sum" "$SELF"
    } | sha256sum | cut -d' ' -f1
}

up_to_date() {
    [[ -x "$BIN/kube-apiserver" && -x "$BIN/etcd" && -f "$BIN/.stamp" ]] &&
        [[ "$(cat "$BIN/.stamp")" == "$(stamp)" ]]
}

exit_if_current

cd "$MOD"
K8S_VERSION="$("$GO" list -m -f '{{.Version}}' k8s.io/kubernetes)"
K8S_MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
echo "build.sh: building kube-apiserver $K8S_VERSION and etcd into $BIN (a first build takes minutes)" >&2

# -p 2: this is a 2-core machine; more parallel compiles only add memory pressure.
# CGO_ENABLED=0: Kubernetes' own release builds of kube-apiserver are static, and no C toolchain is needed.
# The -X flags are what Kubernetes' hack/lib/version.sh sets, so /version reports the real release rather
# than v0.0.0-master; they change no behaviour.
export CGO_ENABLED=0
"$GO" mod download
LDFLAGS="-s -w"
LDFLAGS+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
LDFLAGS+=" -X k8s.io/component-base/version.gitMajor=1"
LDFLAGS+=" -X k8s.io/component-base/version.gitMinor=$K8S_MINOR"
LDFLAGS+=" -X k8s.io/component-base/version.gitTreeState=clean"
"$GO" build -p 2 -trimpath -ldflags "$LDFLAGS" -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
"$GO" build -p 2 -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
mv -f "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
mv -f "$BIN/etcd.tmp" "$BIN/etcd"
stamp >"$BIN/.stamp"
echo "build.sh: done: $("$BIN/kube-apiserver" --version), etcd $("$BIN/etcd" --version | head -1)" >&2
