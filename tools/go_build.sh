# Shared by the scripts that build real programs from their Go modules (tools/kube_sandbox/build.sh,
# tools/external_dns/build.sh); sourced, not run. The caller sets BIN and FORCE and defines `up_to_date`.

# The machine's Go lives in /usr/local/go; a developer's PATH may not include it.
GO="$(command -v go || true)"
if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
fi
if [[ -z "$GO" ]]; then
    echo "build.sh: no 'go' on PATH and none at /usr/local/go/bin/go; install Go >= 1.26" >&2
    exit 2
fi

# Exit at once when the binaries are current. Several callers (make test, the Python launcher, a second
# terminal) may race: one builds under the lock, the others wait and then find the stamp current.
exit_if_current() {
    if [[ "$FORCE" != "--force" ]] && up_to_date; then
        exit 0
    fi
    mkdir -p "$BIN"
    exec 9>"$BIN/.lock"
    flock 9
    if [[ "$FORCE" != "--force" ]] && up_to_date; then
        exit 0
    fi
}
