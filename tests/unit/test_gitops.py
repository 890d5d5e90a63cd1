"""clusters.gitops: which GitOps tool applies an object, who owns an annotation, who wrote last, and the
Kustomize patch offered instead of a write-back the tool would revert. Metadata as the API server returns
it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from clusters.endpoints import ingress_endpoints, service_endpoints
from clusters.gitops import (
    ARGOCD,
    FLUX,
    GitOpsInfo,
    detect_gitops,
    kustomize_patch,
    last_change,
    managed_fields_owner,
)

A = "external-dns.alpha.kubernetes.io/"
G = "external-dns.kubernetes.io/"


def entry(manager: str, time: str, *annotation_keys: str, operation: str = "Update", **extra: Any) -> dict:
    """One managedFields entry owning the given annotation keys (and, as real entries do, a spec field)."""
    fields: dict[str, Any] = {"f:spec": {"f:type": {}}}
    if annotation_keys:
        fields["f:metadata"] = {"f:annotations": {".": {}, **{f"f:{k}": {} for k in annotation_keys}}}
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def meta(
    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None, managed: Any = ()
) -> dict:
    return {
        "name": "web",
        "namespace": "shop",
        "resourceVersion": "4711",
        "annotations": annotations or {},
        "labels": labels or {},
        "managedFields": list(managed),
    }


# ------------------------------------------------------------------------------------------ detect_gitops


def test_argocd_tracking_annotation_names_the_application() -> None:
    info = detect_gitops(meta({"argocd.argoproj.io/tracking-id": "shop:/Service:shop/web"}))
    assert info == GitOpsInfo(
        ARGOCD, "annotation argocd.argoproj.io/tracking-id=shop:/Service:shop/web", "Application shop"
    )


def test_argocd_instance_label_and_controller_manager_are_evidence_together() -> None:
    info = detect_gitops(
        meta(
            labels={"argocd.argoproj.io/instance": "shop", "app.kubernetes.io/instance": "shop"},
            managed=[entry("argocd-controller", "2026-11-30T14:02:11Z", G + "hostname", operation="Apply")],
        )
    )
    assert info is not None
    assert (info.tool, info.source, info.managers) == (ARGOCD, "Application shop", ("argocd-controller",))
    assert info.evidence == (
        "label argocd.argoproj.io/instance=shop and label app.kubernetes.io/instance=shop "
        "and managedFields manager argocd-controller"
    )


def test_argocd_client_side_apply_manager_alone_is_enough() -> None:
    info = detect_gitops(meta(managed=[entry("argocd-application-controller", "2026-11-30T14:02:11Z")]))
    assert info is not None
    assert (info.tool, info.managers) == (ARGOCD, ("argocd-application-controller",))
    assert info.evidence == "managedFields manager argocd-application-controller"


def test_helm_instance_label_alone_is_not_argocd() -> None:
    # Every Helm chart sets app.kubernetes.io/instance, whoever installs it (helm, a CI job, a person).
    assert detect_gitops(meta(labels={"app.kubernetes.io/instance": "shop"})) is None
    assert detect_gitops(meta(managed=[entry("kubectl-client-side-apply", "2026-11-30T14:02:11Z")])) is None
    assert detect_gitops({}) is None


def test_flux_kustomization_labels_and_manager() -> None:
    info = detect_gitops(
        meta(
            labels={
                "kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            },
            managed=[
                entry("kustomize-controller", "2026-11-30T14:02:11Z", A + "hostname", operation="Apply")
            ],
        )
    )
    assert info is not None
    assert (info.tool, info.source, info.managers) == (
        FLUX,
        "Kustomization flux-system/apps",
        ("kustomize-controller",),
    )
    assert info.evidence == (
        "label kustomize.toolkit.fluxcd.io/name=apps and label kustomize.toolkit.fluxcd.io/namespace="
        "flux-system and managedFields manager kustomize-controller"
    )
    assert info.as_dict() == {
        "tool": "Flux",
        "evidence": info.evidence,
        "source": "Kustomization flux-system/apps",
        "managers": ["kustomize-controller"],
    }


def test_flux_helm_release_labels() -> None:
    info = detect_gitops(
        meta(labels={"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": "shop"})
    )
    assert info is not None
    assert (info.tool, info.source) == (FLUX, "HelmRelease shop/web")
    flux_helm = detect_gitops(meta(managed=[entry("helm-controller", "2026-11-30T14:02:11Z")]))
    assert flux_helm is not None and flux_helm.tool == FLUX


def test_both_tools_marked_the_one_whose_manager_writes_wins() -> None:
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps", "argocd.argoproj.io/instance": "shop"}
    flux_writes = meta(labels=labels, managed=[entry("kustomize-controller", "2026-11-30T14:02:11Z")])
    argo_writes = meta(labels=labels, managed=[entry("argocd-controller", "2026-11-30T14:02:11Z")])
    nobody = meta(labels=labels)
    assert detect_gitops(flux_writes).tool == FLUX  # type: ignore[union-attr]
    assert detect_gitops(argo_writes).tool == ARGOCD  # type: ignore[union-attr]
    assert detect_gitops(nobody).tool == ARGOCD  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------- managed_fields_owner


def test_owner_of_an_annotation_is_the_manager_whose_entry_lists_it() -> None:
    m = meta(
        managed=[
            entry("kubectl-create", "2026-11-30T14:00:00Z", G + "hostname"),
            entry("kustomize-controller", "2026-11-30T14:05:00Z", G + "aws-weight", operation="Apply"),
            {"manager": "status-writer", "operation": "Update", "subresource": "status", "fieldsV1": {}},
        ]
    )
    assert managed_fields_owner(m, G + "aws-weight") == "kustomize-controller"
    assert managed_fields_owner(m, G + "hostname") == "kubectl-create"
    assert managed_fields_owner(m, G + "ttl") is None
    assert managed_fields_owner({}, G + "ttl") is None


def test_co_owned_annotation_names_the_newest_applier() -> None:
    m = meta(
        managed=[
            entry("kustomize-controller", "2026-11-30T14:09:00Z", G + "aws-weight", operation="Apply"),
            entry("dnsportal", "2026-11-30T14:01:00Z", G + "aws-weight"),
        ]
    )
    assert managed_fields_owner(m, G + "aws-weight") == "kustomize-controller"


# ------------------------------------------------------------------------------------------- last_change


def test_last_change_is_the_newest_entry_not_the_last_listed() -> None:
    # The API server sorts entries by operation, then time, then manager: the list order is not history.
    m = meta(
        managed=[
            entry("kubectl-edit", "2026-11-30T14:02:11Z", G + "hostname"),
            entry("argocd-controller", "2026-11-30T13:00:00Z", operation="Apply"),
            entry("kubectl-create", "2026-11-30T12:00:00Z"),
        ]
    )
    last = last_change(m)
    assert last is not None
    assert str(last) == "kubectl-edit at 2026-11-30T14:02:11Z"


def test_last_change_in_one_second_names_every_candidate() -> None:
    m = meta(
        managed=[
            entry("kubectl-edit", "2026-11-30T14:02:11Z"),
            entry("helm", "2026-11-30T14:02:11Z"),
            entry("kubectl-create", "2026-11-30T14:00:00Z"),
        ]
    )
    assert str(last_change(m)) == "helm or kubectl-edit at 2026-11-30T14:02:11Z"
    assert last_change(meta()) is None


# ----------------------------------------------------------------------------------------- kustomize_patch


def test_kustomize_patch_sets_and_removes_with_quoted_strings() -> None:
    text = kustomize_patch(
        "Service",
        "shop",
        "web",
        {G + "set-identifier": "eks-us-east-1", G + "aws-weight": "80", A + "aws-weight": None},
    )
    lines = text.splitlines()
    assert lines[0] == (
        "# web-service-dns.yaml: add it to `patches:` in the kustomization.yaml that builds Service shop/web:"
    )
    assert lines[1:3] == ["#   patches:", "#     - path: web-service-dns.yaml"]
    assert f"    {G}aws-weight: '80'" in lines  # a string, as annotations must be; 80 would not apply
    assert f"    {A}aws-weight: null" in lines  # null removes the key in a strategic-merge patch
    assert yaml.safe_load(text) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "annotations": {
                A + "aws-weight": None,
                G + "aws-weight": "80",
                G + "set-identifier": "eks-us-east-1",
            },
        },
    }


def test_kustomize_patch_for_an_ingress_and_yaml_lookalike_values() -> None:
    doc = yaml.safe_load(kustomize_patch("Ingress", "shop", "web", {G + "alias": "true", G + "ttl": "60"}))
    assert doc["apiVersion"] == "networking.k8s.io/v1" and doc["kind"] == "Ingress"
    assert doc["metadata"]["annotations"] == {G + "alias": "true", G + "ttl": "60"}


def test_kustomize_patch_refuses_what_cannot_be_a_patch() -> None:
    with pytest.raises(ValueError, match="not Deployment"):
        kustomize_patch("Deployment", "shop", "web", {G + "ttl": "60"})
    with pytest.raises(ValueError, match="no annotation changes"):
        kustomize_patch("Service", "shop", "web", {})
    with pytest.raises(ValueError, match="is not a string"):
        kustomize_patch("Service", "shop", "web", {G + "aws-weight": 80})  # type: ignore[dict-item]


# ------------------------------------------------------------------ what discovery keeps of each object


def test_endpoint_results_carry_the_external_dns_annotations_and_gitops() -> None:
    annotations = {
        A + "hostname": "web.example.com",
        G + "aws-weight": "80",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "argocd.argoproj.io/tracking-id": "shop:/Service:shop/web",
    }
    service = {
        "kind": "Service",
        "metadata": {**meta(annotations), "uid": "uid-web"},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
    }
    result = service_endpoints(service)
    assert result.endpoints
    assert result.annotations == ((A + "hostname", "web.example.com"), (G + "aws-weight", "80"))
    assert result.gitops is not None and result.gitops.tool == ARGOCD


def test_skipped_objects_keep_their_annotations_and_gitops_too() -> None:
    # A controller annotation naming another controller skips the object; the editor still shows it.
    ingress = {
        "kind": "Ingress",
        "metadata": meta(
            {G + "controller": "someone-else", G + "hostname": "web.example.com"},
            labels={"kustomize.toolkit.fluxcd.io/name": "apps"},
        ),
        "spec": {},
    }
    result = ingress_endpoints(ingress)
    assert result.skipped_reason
    assert dict(result.annotations) == {G + "controller": "someone-else", G + "hostname": "web.example.com"}
    assert result.gitops is not None and result.gitops.tool == FLUX
