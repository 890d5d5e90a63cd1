#!/usr/bin/env bash
# Install the test OpenID provider (panva's `oidc-provider`, exact versions in package-lock.json) from the npm
# registry into tools/oidc_provider/node_modules/, for tests/fixtures/oidc.py.
#
#   tools/oidc_provider/install.sh          # installs when missing or when package-lock.json changed
#   tools/oidc_provider/install.sh --force  # installs again even when the stamp matches
#
# `npm ci` installs exactly the lock file (5 to 15 s, 9 MB); a stamp (the lock file, this script and the Node
# version) makes a second call return at once. Several callers may race (make test, the fixture): one installs
# under the lock, the others wait and then find the stamp current.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
FORCE="${1:-}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install.sh: no 'node' or 'npm' on PATH; scripts/bootstrap.sh installs Debian's nodejs and npm" >&2
    exit 2
fi
# oidc-provider 8 supports Node.js 18 (Debian 12's nodejs) and later; 9 wants 22, which Debian 12 lacks.
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [[ "$NODE_MAJOR" -lt 18 ]]; then
    echo "install.sh: Node.js $(node --version) is too old for oidc-provider 8; it needs Node.js 18 or later" >&2
    exit 2
fi

stamp() {
    { node --version; cat "$HERE/package.json" "$HERE/package-lock.json" "$SELF"; } | sha256sum | cut -d' ' -f1
}

up_to_date() {
    [[ -d "$HERE/node_modules/oidc-provider" && -f "$HERE/node_modules/.dnsportal-stamp" ]] &&
        [[ "$(cat "$HERE/node_modules/.dnsportal-stamp")" == "$(stamp)" ]]
}

if [[ "$FORCE" != "--force" ]] && up_to_date; then
    exit 0
fi
exec 9>"$HERE/.install.lock"
flock 9
if [[ "$FORCE" != "--force" ]] && up_to_date; then
    exit 0
fi

echo "install.sh: installing oidc-provider from package-lock.json into $HERE/node_modules" >&2
cd "$HERE"
npm ci --no-audit --no-fund --loglevel=error
stamp >"$HERE/node_modules/.dnsportal-stamp"
