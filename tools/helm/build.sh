#!/usr/bin/env bash
# Build Helm from its Go module, to render and lint the chart in deploy/helm/dnsportal
# (tests/integration/test_helm_chart.py). No binary is downloaded: the module comes from the Go module proxy.
#
#   tools/helm/build.sh          # builds tools/helm/bin/helm when missing or out of date
#   tools/helm/build.sh --force  # rebuilds even when the stamp matches
#
# `go mod download` fetches the module; it is built in a writable copy of its directory (its own go.mod
# applies there) with Go's build cache; a stamp (version, Go version, this script) makes a second call return
# at once.
set -euo pipefail

VERSION="v3.22.0"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$HERE/bin"
SRC="$HERE/src"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
FORCE="${1:-}"

# shellcheck source=../go_build.sh
source "$HERE/../go_build.sh"
export GOTOOLCHAIN=local # the machine's Go

stamp() {
    { echo "$VERSION"; "$GO" env GOVERSION; cat "$SELF"; } | sha256sum | cut -d' ' -f1
}

up_to_date() {
    [[ -x "$BIN/helm" && -f "$BIN/.stamp" ]] && [[ "$(cat "$BIN/.stamp")" == "$(stamp)" ]]
}

exit_if_current

echo "build.sh: building Helm $VERSION into $BIN (a first build takes minutes)" >&2
DIR="$("$GO" mod download -json "helm.sh/helm/v3@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$DIR" || ! -d "$DIR" ]]; then
    echo "build.sh: go mod download of helm.sh/helm/v3@$VERSION gave no directory" >&2
    exit 1
fi
rm -rf "$SRC"
cp -r "$DIR" "$SRC"
chmod -R u+w "$SRC"
cd "$SRC"
export CGO_ENABLED=0
# No `go mod download` of the whole graph: `go build` fetches only the modules it compiles.
# The -X flags are what Helm's Makefile sets: `helm version` reports the release, and the Kubernetes version
# that `helm template` and `helm lint` assume is the one of the client-go it was built with (1.(minor of v0.N)),
# not the code's fallback of 1.20.
K8S_MINOR="$(sed -n 's/^\tk8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' go.mod)"
if [[ -z "$K8S_MINOR" ]]; then
    echo "build.sh: no k8s.io/client-go version in helm's go.mod" >&2
    exit 1
fi
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
    LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$K8S_MINOR"
done
"$GO" build -p 2 -trimpath -ldflags "$LDFLAGS" -o "$BIN/helm.tmp" ./cmd/helm
mv -f "$BIN/helm.tmp" "$BIN/helm"
cd "$HERE"
rm -rf "$SRC" # the module cache keeps the source; the copy was only for building
stamp >"$BIN/.stamp"
echo "build.sh: done: $("$BIN/helm" version --short 2>&1 | head -1)" >&2
