#!/usr/bin/env bash
# The CRDs the sandbox's first cluster installs, from the official YAML in their projects' Go modules:
# the Gateway API (experimental channel: it also serves the v1alpha2 TLS/TCP/UDP routes ExternalDNS v0.21
# reads), ExternalDNS's DNSEndpoint and Istio's (networking.istio.io Gateway, VirtualService and the rest). Nothing is kept in this repository and nothing is fetched except
# through the Go module proxy (`go mod download`; a module already in the cache costs nothing).
#
#   tools/kube_sandbox/crds.sh    # prints the CRD files' paths, one per line
set -euo pipefail

GATEWAY_API="v1.5.1"
EXTERNAL_DNS="v0.21.0"  # the release tools/external_dns/build.sh builds
ISTIO_API="v1.29.1"     # the istio.io/api ExternalDNS v0.21.0 is built with
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORCE=""
BIN="$HERE/bin"

# shellcheck source=../go_build.sh
source "$HERE/../go_build.sh"
export GOTOOLCHAIN=local

module_dir() {
    local dir
    dir="$("$GO" mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    if [[ -z "$dir" || ! -d "$dir" ]]; then
        echo "crds.sh: go mod download of $1 gave no directory" >&2
        exit 1
    fi
    echo "$dir"
}

GW="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API")"
EDNS="$(module_dir "sigs.k8s.io/external-dns@$EXTERNAL_DNS")"
for name in gatewayclasses gateways httproutes grpcroutes tlsroutes tcproutes udproutes referencegrants; do
    echo "$GW/config/crd/experimental/gateway.networking.k8s.io_$name.yaml"
done
echo "$EDNS/config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml"
echo "$(module_dir "istio.io/api@$ISTIO_API")/kubernetes/customresourcedefinitions.gen.yaml"
