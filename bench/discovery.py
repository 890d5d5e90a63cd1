"""Discovery speed against real kube-apiservers, with real PostgreSQL and Redis.

Prints, one figure a line (headline last):
  services                       how many Services the two clusters hold
  initial_sync_seconds           both clusters listed, computed and stored (in parallel, as the watch does)
  annotation_to_row_p50_seconds  an annotation patch until the endpoint row shows it (watch path)
  annotation_to_row_p95_seconds  the same, 95th percentile (targets: sync <= 10 s, p95 <= 1 s)

Usage: .venv/bin/python bench/discovery.py [--quick]   (--quick: 200 Services, 10 patches)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import start_portal  # noqa: E402

PREFIX = "external-dns.alpha.kubernetes.io/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    total, patches = (200, 10) if args.quick else (5000, 50)

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-"))
    tmp.chmod(0o755)
    pg, redis = start_portal(tmp)

    from kubernetes import client as k8s

    from tools.kube_sandbox import Sandbox
    from tools.kube_sandbox.objects import api_client, set_service_load_balancer

    sandbox = Sandbox(tmp / "kube", ["bench-a", "bench-b"])
    sandbox.start()
    try:
        return run(sandbox, total, patches, k8s, api_client, set_service_load_balancer)
    finally:
        sandbox.stop()
        redis.stop()
        pg.stop()


def run(sandbox, total, patches, k8s, api_client, set_lb) -> int:
    import yaml

    from clusters import discovery
    from clusters.services import Credentials, cluster_register
    from clusters.watch import ClusterWatcher
    from records.models import Endpoint

    per_cluster = total // 2
    apis = {c.name: api_client(c.kubeconfig("admin")) for c in sandbox.clusters}

    def create(cluster_name: str, i: int) -> None:
        api = apis[cluster_name]
        name = f"svc-{i}"
        k8s.CoreV1Api(api).create_namespaced_service(
            "default",
            {
                "metadata": {
                    "name": name,
                    "annotations": {f"{PREFIX}hostname": f"{name}.{cluster_name}.example.com"},
                },
                "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
            },
        )
        set_lb(
            api, "default", name, ips=[f"203.0.{113 if cluster_name.endswith('a') else 114}.{i % 250 + 1}"]
        )

    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda job: create(*job), [(c.name, i) for c in sandbox.clusters for i in range(per_cluster)]
            )
        )

    clusters = [
        cluster_register(
            actor=None,
            name=c.name,
            creds=Credentials(kubeconfig=yaml.safe_dump(c.kubeconfig("restricted")), context=""),
        )
        for c in sandbox.clusters
    ]
    start = time.perf_counter()
    threads = [threading.Thread(target=discovery.sync_cluster, args=(c.id,)) for c in clusters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sync_seconds = time.perf_counter() - start
    stored = Endpoint.objects.count()
    assert stored == per_cluster * 2, f"expected {per_cluster * 2} endpoints, stored {stored}"

    watcher = ClusterWatcher(clusters[0], lambda *_: None)
    watcher.start()
    api = apis[clusters[0].name]

    def patch_and_wait(service: str, name: str, timeout: float) -> float:
        """Set the Service's hostname; seconds until its endpoint row is stored."""
        t0 = time.perf_counter()
        k8s.CoreV1Api(api).patch_namespaced_service(
            service, "default", {"metadata": {"annotations": {f"{PREFIX}hostname": name}}}
        )
        deadline = t0 + timeout
        while not Endpoint.objects.filter(dns_name=name).exists():
            if time.perf_counter() > deadline:
                raise SystemExit(f"the patch of {service} did not reach the database within {timeout:.0f} s")
            time.sleep(0.002)
        return time.perf_counter() - t0

    delays = []
    try:
        # Not timed: the watcher's own first list, then its watches (a Service beyond the measured ones).
        patch_and_wait(f"svc-{per_cluster - 1}", "warm-up.example.com", 30)
        for i in range(patches):
            delays.append(patch_and_wait(f"svc-{i}", f"lat-{i}.example.com", 10))
    finally:
        watcher.stop()
        watcher.join(10)
    delays.sort()
    p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
    print(f"services: {total} count")
    print(f"initial_sync_seconds: {sync_seconds:.2f} s")
    print(f"annotation_to_row_p50_seconds: {statistics.median(delays):.3f} s")
    print(f"annotation_to_row_p95_seconds: {p95:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
