"""Thin jobs of the clusters app: load, call the core, store."""

from __future__ import annotations

import json
import logging

from clusters import services
from clusters.checks import CheckResult, run_check
from clusters.kube import ClusterClient, EksCredentials, describe_error
from clusters.kubeconfig import KubeconfigError
from clusters.models import Cluster, ConnectionTest
from clusters.source_options import SourceOptions
from dnsportal import crypto
from dnsportal.logging import register_secret
from dnsportal.queue import enqueue, register_job
from dnsportal.scheduler import periodic

log = logging.getLogger(__name__)


@register_job(queue="discovery")
def cluster_check(*, cluster_id: int) -> None:
    cluster = Cluster.objects.filter(id=cluster_id).first()
    if cluster is None:
        log.info("cluster %s is gone; nothing to check", cluster_id)
        return
    try:
        cc = services.client_for(cluster)
    except KubeconfigError as exc:
        result = CheckResult(
            health=Cluster.Health.UNREACHABLE, error=f"The stored kubeconfig is not valid: {exc}"
        )
    else:
        with cc:
            result = run_check(cc, SourceOptions.from_mapping(cluster.source_options))
    services.cluster_record_check(cluster_id=cluster.id, result=result)
    log.info("cluster %s: %s %s", cluster.name, result.health, result.error)


@register_job(queue="discovery")
def clusters_check_all() -> None:
    for cluster_id in Cluster.objects.filter(enabled=True).values_list("id", flat=True):
        enqueue("cluster_check", cluster_id=cluster_id)


periodic("clusters_check_all", every=300)


@register_job(queue="discovery")
def connection_test_run(*, test_id: int) -> None:
    test = ConnectionTest.objects.filter(id=test_id, status=ConnectionTest.Status.PENDING).first()
    if test is None:
        return
    data = json.loads(crypto.decrypt(test.kubeconfig_encrypted))
    register_secret(data.get("aws_secret_access_key"))
    creds = services.Credentials(**data)
    try:
        access = services.validate_credentials(creds)
        eks = None
        if creds.is_eks:
            eks = EksCredentials(
                cluster_name=creds.eks_cluster_name,
                region=creds.eks_region,
                access_key_id=creds.aws_access_key_id,
                secret_access_key=creds.aws_secret_access_key,
            )
        with ClusterClient(access, eks=eks) as cc:
            result = run_check(cc)
    except KubeconfigError as exc:
        result = CheckResult(health=Cluster.Health.UNREACHABLE, error=str(exc))
    except Exception as exc:  # e.g. EKS signing failed: still a result the form can show
        result = CheckResult(health=Cluster.Health.UNREACHABLE, error=describe_error(exc, "the API server"))
    # The kubeconfig was needed only for this test: drop it now.
    ConnectionTest.objects.filter(id=test.id).update(
        status=ConnectionTest.Status.DONE, kubeconfig_encrypted="", result=result.__dict__
    )


@register_job(queue="discovery")
def cluster_resync(*, cluster_id: int) -> None:
    """Relist one cluster and replace its endpoints (a watch can miss nothing that this does not repair)."""
    from clusters import discovery
    from clusters.watch import endpoints_changed

    state, changed = discovery.sync_cluster(cluster_id)
    if state is not None and changed:
        endpoints_changed(cluster_id, changed)


@register_job(queue="discovery")
def clusters_resync_all() -> None:
    for cluster_id in Cluster.objects.filter(enabled=True).values_list("id", flat=True):
        enqueue("cluster_resync", cluster_id=cluster_id)


periodic("clusters_resync_all", every=300)


# The write-back of traffic-policy proposals registers its job with this module.
from clusters import writeback_jobs  # noqa: E402, F401
