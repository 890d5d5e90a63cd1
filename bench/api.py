"""Benchmark: listing endpoints over the REST API at 10,000 endpoints, page after page.

Starts PostgreSQL and Redis on loopback (bench/portal.py), stores 10,000 endpoints of 5 clusters (500 Services
each publishing 4 names) as discovery stores them, makes an admin's API token, then walks every page of
`GET /api/v1/endpoints/` (100 a page, following the cursor) and a filtered list (one cluster), three times.
Each request goes through Django's whole stack in this process (middleware, token authentication, the
Redis rate count, the view, JSON rendering): the server's time, without the network. Also counts the SQL
queries of each page: the same number on every page, whatever the page or its size.

Target: p95 at most 100 ms a page. Prints `name: value unit` lines, the headline (p95) last; exits 0.

    .venv/bin/python bench/api.py            # 10,000 endpoints
    .venv/bin/python bench/api.py --quick    # 1,000, for CI
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.portal import start_portal

CLUSTERS = 5
NAMES_PER_OBJECT = 4
PAGE = 100
ROUNDS = 3


def seed(n: int) -> None:
    """`n` endpoints as discovery stores them: clusters, their Services, one endpoint per name."""
    from clusters.models import Cluster, DiscoveredObject
    from records.models import Endpoint

    clusters = Cluster.objects.bulk_create(
        [Cluster(name=f"bench-{i}", server=f"https://10.0.0.{i + 1}:6443") for i in range(CLUSTERS)]
    )
    per_cluster = n // CLUSTERS
    objects = DiscoveredObject.objects.bulk_create(
        [
            DiscoveredObject(cluster=c, kind="Service", namespace="shop", name=f"svc-{j}")
            for c in clusters
            for j in range(per_cluster // NAMES_PER_OBJECT)
        ],
        batch_size=2000,
    )
    rows = []
    for k, obj in enumerate(objects):
        for m in range(NAMES_PER_OBJECT):
            j = k % (per_cluster // NAMES_PER_OBJECT)
            private = (j + m) % 10 == 0
            target = f"10.1.{j % 250}.{m + 1}" if private else f"198.51.{j % 250}.{m + 1}"
            rows.append(
                Endpoint(
                    cluster=obj.cluster,
                    source=obj,
                    dns_name=f"app{j}-{m}.bench.example.com",
                    record_type="A",
                    set_identifier=obj.cluster.name if m == 0 else "",
                    targets=[target],
                    ttl=60,
                    properties={"aws/weight": "50"} if m == 0 else {},
                    labels={"resource": f"service/shop/{obj.name}"},
                    resource=f"service/shop/{obj.name}",
                    private_targets=[target] if private else [],
                    has_private_target=private,
                )
            )
    Endpoint.objects.bulk_create(rows, batch_size=2000)


def walk(client, headers: dict, url: str) -> tuple[list[float], list[int], int]:
    """Every page of a list: the time of each request (ms), the queries of each, the rows seen."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, seen = [], [], 0
    while url:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        body = response.json()
        queries.append(len(captured))
        seen += len(body["results"])
        url = body["next"]
    return times, queries, seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 endpoints instead of 10,000")
    args = ap.parse_args()
    n = 1000 if args.quick else 10_000
    os.environ["DNSPORTAL_API_TOKEN_RATE"] = "1000000"  # measure the rate count, never trip it
    with tempfile.TemporaryDirectory(prefix="dnsportal-bench-api-") as tmp:
        path = Path(tmp)
        path.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach its data dir inside
        pg, redis = start_portal(path)
        try:
            return run(n)
        finally:
            redis.stop()
            pg.stop()


def run(n: int) -> int:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from api.tokens import token_create
    from dnsportal.roles import ensure_roles

    started = time.perf_counter()
    seed(n)
    print(f"endpoints: {n} count")
    print(f"seed_seconds: {time.perf_counter() - started:.1f} s")
    ensure_roles()
    admin = User.objects.create_user("bench-admin")
    admin.groups.add(Group.objects.get(name="viewer"))
    headers = {"Authorization": f"Bearer {token_create(actor=admin, name='bench', expires_in_days=7).key}"}
    client = Client(HTTP_HOST="127.0.0.1")
    client.get(f"/api/v1/endpoints/?page_size={PAGE}", headers=headers)  # warm up; records the token's use

    times, queries = [], []
    for _ in range(ROUNDS):
        t, q, seen = walk(client, headers, f"/api/v1/endpoints/?page_size={PAGE}")
        assert seen == n, (seen, n)
        times += t
        queries += q
        t, q, _ = walk(client, headers, f"/api/v1/endpoints/?page_size={PAGE}&cluster=bench-1&private=false")
        times += t
        queries += q
    small = walk(client, headers, "/api/v1/endpoints/?page_size=10&cluster=bench-2")[1]
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"pages: {len(times)} count")
    print(f"page_size: {PAGE} rows")
    print(f"endpoints_list_p50_ms: {statistics.median(times):.1f} ms")
    print(f"endpoints_list_max_ms: {times[-1]:.1f} ms")
    print(f"queries_per_page_min: {min(queries)} queries")
    print(f"queries_per_page_max: {max(queries)} queries")
    print(f"queries_per_page_of_10: {max(small)} queries")
    print(f"endpoints_list_p95_ms: {p95:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
