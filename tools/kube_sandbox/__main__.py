"""Command line for the Kubernetes sandbox.

    python -m tools.kube_sandbox build [--force]
    python -m tools.kube_sandbox up --clusters 2 [--dir DIR] [--timeout S]
    python -m tools.kube_sandbox up --names eks-us-east-1,rke2-dc1 [--dir DIR] [--seed-demo]
    python -m tools.kube_sandbox demo [--dir DIR]      # the three demo clusters, seeded

`up` and `demo` run in the foreground until SIGINT/SIGTERM, then stop every process they started. Once all
clusters are ready (and seeded) they write DIR/sandbox.json (servers, kubeconfig paths, pids) atomically, so
a script can start them in the background and wait for that file. Without --dir a temporary directory is
used and removed on exit; with --dir keys, ports and etcd data are kept for the next run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tools.kube_sandbox.sandbox import Sandbox, SandboxError, default_names, ensure_built


class _StopRequested(BaseException):
    """Raised from a signal handler so a start in progress unwinds (and cleans up) like Ctrl-C."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.kube_sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build kube-apiserver and etcd if missing or out of date")
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")

    for name, help_text in (
        ("up", "start clusters and keep them running until interrupted"),
        ("demo", "start the three demo clusters, seeded, until interrupted"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dir", type=Path, default=None, help="state directory (kept); default: a temp dir")
        p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
        if name == "up":
            group = p.add_mutually_exclusive_group()
            group.add_argument("--clusters", type=int, default=2, help="number of clusters (named kube-N)")
            group.add_argument(
                "--names", type=lambda s: [n for n in s.split(",") if n], help="comma-separated cluster names"
            )
            p.add_argument(
                "--seed-demo",
                action="store_true",
                help="create the demo objects in clusters named like the demo ones",
            )
    return parser.parse_args(argv)


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def _run(args: argparse.Namespace) -> int:
    from tools.kube_sandbox.demo import DEMO_CLUSTER_NAMES, seed_demo

    if args.command == "demo":
        names, seed = list(DEMO_CLUSTER_NAMES), True
    else:
        names, seed = args.names or default_names(args.clusters), args.seed_demo

    # The first build takes minutes: show its progress instead of collecting it.
    ensure_built(capture=False)
    sandbox = Sandbox(args.dir, names)
    # SIGTERM must unwind exactly like Ctrl-C, including during start(), so nothing is left running.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        sandbox.start(timeout=args.timeout, build=False, write_state=False)
        if seed:
            seeded = seed_demo(sandbox.clusters)
            names_seeded = ", ".join(seeded) or "(no cluster has a demo name)"
            print(f"seeded demo objects in: {names_seeded}", flush=True)
        sandbox.write_state()  # last: a script waiting for this file may use the clusters at once
        for c in sandbox.clusters:
            print(
                f"{c.name}: {c.server}  admin={c.kubeconfig_path('admin')}  "
                f"restricted={c.kubeconfig_path('restricted')}",
                flush=True,
            )
        print(
            f"ready: {len(sandbox.clusters)} cluster(s) in {sandbox.startup_seconds:.1f} s; "
            f"state in {sandbox.state_file}; Ctrl-C to stop",
            flush=True,
        )
        idle = threading.Event()  # never set: the wait below only ends by a signal or a dead process
        while True:
            for c in sandbox.clusters:
                c.check_alive()  # a crashed server ends the run loudly rather than leaving a half sandbox
            idle.wait(timeout=2.0)
    except _StopRequested as stop:
        print(f"{stop}: stopping", file=sys.stderr, flush=True)
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping", file=sys.stderr, flush=True)
        return 0
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C must not interrupt the cleanup itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        began = time.monotonic()
        sandbox.stop()
        print(f"stopped in {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.command == "build":
        try:
            ensure_built(force=args.force, capture=False)
        except SandboxError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
