#!/usr/bin/env bash
# Build the real, unmodified ExternalDNS from its Go module, as a test oracle (issue "The real ExternalDNS as
# the oracle"). Nothing of its source is kept in this repository: the module comes from the Go module proxy.
#
#   tools/external_dns/build.sh          # builds tools/external_dns/bin/external-dns when missing or out of date
#   tools/external_dns/build.sh --force  # rebuilds even when the stamp matches
#
# The pinned release: v0.21.0. Newer ones do not build from the module proxy here: v0.22.0 and v0.23.0 need
# github.com/openshift/api@v0.0.0-20260819011109-af5c920502e2, which the proxy refuses (403 "This module
# version is not available"; v0.23.0 also needs Go 1.27). v0.21.0 reads the `external-dns.alpha.kubernetes.io/`
# prefix; v0.22's `external-dns.kubernetes.io/` is covered by passing the prefix flag.
#
# `go mod download` fetches the module; it is built in a writable copy of its directory (its own go.mod
# applies there) with Go's build cache: about 9 minutes cold on 2 cores, a ~195 MB binary; a stamp (version,
# Go version, this script) makes a second call return at once.
set -euo pipefail

VERSION="v0.21.0"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$HERE/bin"
SRC="$HERE/src"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
FORCE="${1:-}"

# shellcheck source=../go_build.sh
source "$HERE/../go_build.sh"
export GOTOOLCHAIN=local  # the machine's Go; v0.21.0 needs no newer one

stamp() {
    { echo "$VERSION"; "$GO" env GOVERSION; cat "$SELF"; } | sha256sum | cut -d' ' -f1
}

up_to_date() {
    [[ -x "$BIN/external-dns" && -f "$BIN/.stamp" ]] && [[ "$(cat "$BIN/.stamp")" == "$(stamp)" ]]
}

exit_if_current

echo "build.sh: building ExternalDNS $VERSION into $BIN (a first build takes minutes)" >&2
DIR="$("$GO" mod download -json "sigs.k8s.io/external-dns@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$DIR" || ! -d "$DIR" ]]; then
    echo "build.sh: go mod download of sigs.k8s.io/external-dns@$VERSION gave no directory" >&2
    exit 1
fi
rm -rf "$SRC"
cp -r "$DIR" "$SRC"
chmod -R u+w "$SRC"
cd "$SRC"
export CGO_ENABLED=0
# No `go mod download` of the whole graph: modules the build does not need (k8s.io/kubectl@v0.18.4 through
# github.com/datawire/ambassador wants vbom.ml/util, which the proxy refuses) would fail it; `go build`
# fetches only what it compiles.
# The -X flag is what ExternalDNS's Makefile sets, so `--version` reports the release; it changes no behaviour.
"$GO" build -p 2 -trimpath -ldflags "-s -w -X sigs.k8s.io/external-dns/pkg/apis/externaldns.Version=$VERSION" \
    -o "$BIN/external-dns.tmp" .
mv -f "$BIN/external-dns.tmp" "$BIN/external-dns"
cd "$HERE"
rm -rf "$SRC"  # the module cache keeps the source; the copy was only for building
stamp >"$BIN/.stamp"
echo "build.sh: done: $("$BIN/external-dns" --version 2>&1 | head -1)" >&2
