"""How fast the Kubernetes sandbox (real kube-apiserver + etcd) starts, restarts and stops.

    .venv/bin/python bench/kube_sandbox.py [--quick]

Prints `name: value unit` lines, the headline last: `clusters_ready_2`, the seconds from starting two clusters
(binaries already built) until both answer /readyz and have their RBAC in place. Target: at most 20 s on the
2-core machine. `--quick` does one round and skips the apiserver restart; the full run does three rounds and
reports the median (and the worst round).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from tools.kube_sandbox import Sandbox, assert_no_processes, ensure_built  # noqa: E402


def _round(directory: Path, *, restart: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    sandbox = Sandbox(directory, 2)
    try:
        sandbox.start(build=False, timeout=120)
        assert sandbox.startup_seconds is not None
        figures["clusters_ready_2"] = sandbox.startup_seconds
        if restart:
            cluster = sandbox.clusters[0]
            began = time.monotonic()
            cluster.stop_apiserver()
            figures["apiserver_stop"] = time.monotonic() - began
            began = time.monotonic()
            cluster.start_apiserver(wait=True)
            figures["apiserver_restart_ready"] = time.monotonic() - began
        pids = sandbox.pids()
        began = time.monotonic()
    finally:
        sandbox.stop()
    figures["sandbox_stop_2"] = time.monotonic() - began
    assert_no_processes(pids)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round, no restart figures")
    args = parser.parse_args()

    began = time.monotonic()
    ensure_built()  # a no-op when built; the first build takes minutes and is not what this measures
    build_check = time.monotonic() - began

    rounds = 1 if args.quick else 3
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
        for i in range(rounds):
            # A fresh directory per round: a first start (new keys, empty etcd), as in a test session.
            results.append(_round(Path(tmp) / f"round-{i}", restart=not args.quick))

    print(f"build_check: {build_check * 1000:.0f} ms")
    names = [n for n in results[0] if n != "clusters_ready_2"]
    for name in names:
        print(f"{name}: {statistics.median(r[name] for r in results):.2f} s")
    ready = [r["clusters_ready_2"] for r in results]
    if rounds > 1:
        print(f"clusters_ready_2_worst: {max(ready):.2f} s")
    print(f"clusters_ready_2: {statistics.median(ready):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
