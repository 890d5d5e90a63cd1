"""Writes of the clusters app: one function per intent, one transaction, the audit row inside."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from clusters.checks import CheckResult
from clusters.kube import ClusterClient, EksCredentials
from clusters.kubeconfig import (
    ClusterAccess,
    KubeconfigError,
    Problem,
    fingerprint,
    parse_kubeconfig,
    to_kubeconfig,
)
from clusters.models import Cluster, ClusterCheck, ConnectionTest
from dnsportal import crypto, queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError


@dataclass(frozen=True)
class Credentials:
    """What a register/edit form hands over: the kubeconfig and, for EKS, the AWS key pair."""

    kubeconfig: str
    context: str
    allow_insecure: bool = False
    aws_access_key_id: str = ""
    aws_secret_access_key: str = ""
    eks_cluster_name: str = ""
    eks_region: str = ""

    @property
    def is_eks(self) -> bool:
        return bool(self.aws_access_key_id)


def validate_credentials(creds: Credentials) -> ClusterAccess:
    """Parse and validate (raises KubeconfigError); an EKS exec user is accepted only with AWS keys, and then
    needs the EKS cluster name and region, from the form or from the exec's own arguments."""
    access = parse_kubeconfig(
        creds.kubeconfig,
        context=creds.context or None,
        allow_insecure=creds.allow_insecure,
        allow_eks_exec=creds.is_eks,
    )
    if access.needs_eks_token:
        missing = [
            what
            for what, given, found in (
                ("cluster name", creds.eks_cluster_name, access.eks_cluster_name),
                ("region", creds.eks_region, access.eks_region),
            )
            if not (given or found)
        ]
        if missing:
            problem = (
                f"the EKS {' and '.join(missing)} could not be read from the kubeconfig; enter them below."
            )
            raise KubeconfigError([Problem("eks", problem)])
    return access


def _apply_credentials(cluster: Cluster, creds: Credentials, access: ClusterAccess) -> None:
    # Only the chosen context's cluster and user are kept: other contexts' credentials are not ours to hold.
    cluster.kubeconfig = yaml.safe_dump(to_kubeconfig(access), sort_keys=False)
    cluster.context = access.context
    cluster.server = access.server
    cluster.fingerprint = fingerprint(access)
    cluster.allow_insecure = access.insecure_skip_tls_verify
    if access.needs_eks_token:
        cluster.auth_kind = Cluster.AuthKind.EKS
        cluster.eks_cluster_name = creds.eks_cluster_name or access.eks_cluster_name or ""
        cluster.eks_region = creds.eks_region or access.eks_region or ""
        cluster.aws_credentials = {
            "access_key_id": creds.aws_access_key_id,
            "secret_access_key": creds.aws_secret_access_key,
        }
    else:
        cluster.auth_kind = Cluster.AuthKind.KUBECONFIG
        cluster.eks_cluster_name = cluster.eks_region = ""
        cluster.aws_credentials = {}


@transaction.atomic
def cluster_register(
    *,
    actor: Any,
    name: str,
    display_name: str = "",
    description: str = "",
    labels: dict | None = None,
    creds: Credentials,
    is_demo: bool = False,
    source_options: Any = None,
) -> Cluster:
    """Register a cluster (its source options, a SourceOptions, from the start when given: the watch's first
    list already applies them, no resync after it)."""
    if Cluster.objects.filter(name=name).exists():
        raise PortalError(f"A cluster called {name!r} is already registered.")
    access = validate_credentials(creds)
    if access.insecure_skip_tls_verify and not getattr(actor, "is_authenticated", False):
        raise PortalError("Only an admin can accept a cluster without TLS verification.")
    cluster = Cluster(
        name=name,
        display_name=display_name,
        description=description,
        labels=labels or {},
        is_demo=is_demo,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        source_options=source_options.changed() if source_options is not None else {},
    )
    _apply_credentials(cluster, creds, access)
    cluster.full_clean(exclude=["kubeconfig_encrypted", "aws_credentials_encrypted"])
    cluster.save()
    audit_record(actor=actor, action="cluster.register", obj=cluster, after=cluster.audit_view())
    queue.enqueue("cluster_check", actor=actor, cluster_id=cluster.id)
    return cluster


@transaction.atomic
def cluster_update(
    *,
    actor: Any,
    cluster_id: int,
    display_name: str,
    description: str,
    labels: dict,
    creds: Credentials | None = None,
    write_back_prefix: str | None = None,
) -> Cluster:
    cluster = Cluster.objects.select_for_update().get(id=cluster_id)
    before = cluster.audit_view()
    cluster.display_name, cluster.description, cluster.labels = display_name, description, labels
    if write_back_prefix is not None:
        cluster.write_back_prefix = write_back_prefix
    if creds is not None:
        _apply_credentials(cluster, creds, validate_credentials(creds))
        cluster.health = Cluster.Health.UNKNOWN
    cluster.save()
    audit_record(actor=actor, action="cluster.update", obj=cluster, before=before, after=cluster.audit_view())
    if creds is not None:
        queue.enqueue("cluster_check", actor=actor, cluster_id=cluster.id)
    return cluster


@transaction.atomic
def cluster_set_enabled(*, actor: Any, cluster_id: int, enabled: bool) -> Cluster:
    cluster = Cluster.objects.select_for_update().get(id=cluster_id)
    if cluster.enabled == enabled:
        return cluster
    cluster.enabled = enabled
    cluster.save(update_fields=["enabled", "updated_at"])
    audit_record(
        actor=actor,
        action="cluster.enable" if enabled else "cluster.disable",
        obj=cluster,
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )
    return cluster


@transaction.atomic
def cluster_delete(*, actor: Any, cluster_id: int, confirm_name: str) -> None:
    """Forget a cluster. DNS records are not touched here: what its endpoints published is removed by the
    next reconcile of each zone, as a change set that goes through the normal review."""
    cluster = Cluster.objects.select_for_update().get(id=cluster_id)
    if confirm_name != cluster.name:
        raise PortalError(f"Type the cluster's name, {cluster.name}, to confirm the deletion.")
    before = cluster.audit_view()
    audit_record(actor=actor, action="cluster.delete", obj=cluster, before=before, after=None)
    cluster.delete()


@transaction.atomic
def cluster_check_request(*, actor: Any, cluster_id: int) -> None:
    cluster = Cluster.objects.get(id=cluster_id)
    queue.enqueue("cluster_check", actor=actor, cluster_id=cluster.id)


def client_for(cluster: Cluster) -> ClusterClient:
    """The cluster's own ApiClient (the caller closes it)."""
    creds = Credentials(
        kubeconfig=cluster.kubeconfig,
        context=cluster.context,
        allow_insecure=cluster.allow_insecure,
        aws_access_key_id="x" if cluster.auth_kind == Cluster.AuthKind.EKS else "",
    )
    access = validate_credentials(creds)
    eks = None
    if cluster.auth_kind == Cluster.AuthKind.EKS:
        aws = cluster.aws_credentials
        eks = EksCredentials(
            cluster_name=cluster.eks_cluster_name,
            region=cluster.eks_region,
            access_key_id=aws["access_key_id"],
            secret_access_key=aws["secret_access_key"],
        )
    return ClusterClient(access, eks=eks)


@transaction.atomic
def cluster_record_check(*, cluster_id: int, result: CheckResult) -> ClusterCheck:
    """Store a check's result on the cluster and in its history. An unreachable cluster is marked, never
    deleted, and keeps what it last knew (version, node count) for the operator to see."""
    cluster = Cluster.objects.select_for_update().get(id=cluster_id)
    before = {"health": cluster.health}
    cluster.health = result.health
    cluster.last_checked_at = timezone.now()
    cluster.last_error = result.error
    if result.health != Cluster.Health.UNREACHABLE:
        cluster.server_version = result.server_version
        cluster.distribution = result.distribution
        cluster.node_count = result.node_count
        cluster.missing_permissions = result.missing_permissions
        if result.custom_kinds is not None:
            cluster.custom_kinds = result.custom_kinds
    cluster.save()
    check = ClusterCheck.objects.create(
        cluster=cluster,
        health=result.health,
        duration_ms=result.duration_ms,
        server_version=result.server_version,
        distribution=result.distribution,
        node_count=result.node_count,
        missing_permissions=result.missing_permissions,
        error=result.error,
    )
    if before["health"] != result.health:
        audit_record(
            actor=None,
            action="cluster.health",
            obj=cluster,
            before=before,
            after={"health": result.health, "error": result.error},
        )
    return check


@transaction.atomic
def connection_test_create(*, actor: Any, creds: Credentials) -> ConnectionTest:
    validate_credentials(creds)
    test = ConnectionTest.objects.create(
        created_by=actor,
        kubeconfig_encrypted=crypto.encrypt(json.dumps(creds.__dict__)),
        context=creds.context,
        allow_insecure=creds.allow_insecure,
    )
    queue.enqueue("connection_test_run", actor=actor, test_id=test.id)
    return test


@transaction.atomic
def cluster_set_source_options(*, actor: Any, cluster_id: int, options: Any) -> Cluster:
    """Store a cluster's source options (a SourceOptions); the watch restarts it and a resync applies them."""
    cluster = Cluster.objects.select_for_update().get(id=cluster_id)
    before = cluster.source_options
    after = options.changed()
    if before == after:
        return cluster
    cluster.source_options = after
    cluster.save(update_fields=["source_options", "updated_at"])
    audit_record(actor=actor, action="cluster.source_options", obj=cluster, before=before, after=after)
    queue.enqueue("cluster_resync", actor=actor, cluster_id=cluster.id)
    return cluster
