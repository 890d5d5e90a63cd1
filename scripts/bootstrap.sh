#!/usr/bin/env bash
# Install what a fresh Debian machine lacks for `make up` / `make test`, and nothing when all is there.
#   - Debian packages: only the missing ones, with apt-get (root, or sudo).
#   - .venv/ with the exact pins of pyproject.toml, reinstalled only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server postgresql chromium fonts-dejavu-core pdns-server pdns-backend-sqlite3 pdns-backend-geoip geoip-database ca-certificates)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node.js and npm run the test OpenID provider (tools/oidc_provider/). Machines that have them from elsewhere (a
# NodeSource nodejs bundles npm) keep them: Debian's are installed only when there is no `node` or `npm` at all.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "bootstrap: installing Debian packages: nodejs npm"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.dnsportal-deps-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing Python packages pinned in pyproject.toml"
  .venv/bin/python -m pip install -q --upgrade pip
  # Every pin, runtime and dev, straight from pyproject.toml (one list, no second file to keep in step).
  mapfile -t deps < <(.venv/bin/python -c 'import tomllib
d = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(d["dependencies"] + [x for v in d["optional-dependencies"].values() for x in v]))')
  .venv/bin/python -m pip install -q "${deps[@]}"
  # The project itself, editable and without its dependencies again: its console script `dnsportal` (the CLI).
  .venv/bin/python -m pip install -q --no-deps -e .
  rm -f .venv/.dnsportal-deps-*
  touch "$stamp"
fi
# The repository root on the venv's path, so workers and tools import `dnsportal`, `tools`, `tests` anywhere.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$site/dnsportal-root.pth"
