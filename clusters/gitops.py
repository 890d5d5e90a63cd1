"""Who manages an object's annotations: a GitOps tool, and which field manager owns which annotation.

An annotation the portal writes back to a Service or Ingress that Argo CD or Flux applies from Git is reverted
at the tool's next sync (Argo CD with self-heal, Flux's kustomize-controller on every interval). The editor
therefore says so before anyone approves a write-back, and offers the change as a Kustomize patch to commit
instead. Everything here reads the object's `metadata` as the API server returns it (camelCase JSON):

- markers the tools put on what they apply: Argo CD's `argocd.argoproj.io/tracking-id` annotation (annotation
  tracking, the default since Argo CD 3.0) or `argocd.argoproj.io/instance` label (a common custom
  `application.instanceLabelKey`); Flux's `kustomize.toolkit.fluxcd.io/name`/`namespace` and
  `helm.toolkit.fluxcd.io/name`/`namespace` labels;
- the field managers in `metadata.managedFields`: `argocd-controller` (Argo CD's server-side apply
  manager), `argocd-application-controller` (its client-side apply), `kustomize-controller` and
  `helm-controller` (Flux).

`app.kubernetes.io/instance` alone is not evidence: Helm charts set it on everything they render, whoever
installs them. It is named in the evidence when another Argo CD marker is there (label tracking, Argo CD's
default before 3.0, uses that very label).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

ARGOCD = "Argo CD"
FLUX = "Flux"

ARGOCD_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGOCD_INSTANCE_LABEL = "argocd.argoproj.io/instance"
HELM_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KUSTOMIZE_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_KUSTOMIZE_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HELM_NAME = "helm.toolkit.fluxcd.io/name"
FLUX_HELM_NAMESPACE = "helm.toolkit.fluxcd.io/namespace"

ARGOCD_MANAGERS = ("argocd-controller", "argocd-application-controller")
FLUX_MANAGERS = ("kustomize-controller", "helm-controller")

_API_VERSIONS = {"Service": "v1", "Ingress": "networking.k8s.io/v1"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class GitOpsInfo:
    """The GitOps tool that applies an object, what says so, and where in the tool it comes from."""

    tool: str  # ARGOCD or FLUX
    evidence: str  # "annotation argocd.argoproj.io/tracking-id=shop:/Service:shop/web and managedFields ..."
    source: str = ""  # "Application shop", "Kustomization flux-system/apps", "HelmRelease shop/web"
    managers: tuple[str, ...] = ()  # the tool's field managers found in managedFields

    def as_dict(self) -> dict[str, Any]:
        """The JSON stored on the discovered object's row."""
        return {
            "tool": self.tool,
            "evidence": self.evidence,
            "source": self.source,
            "managers": list(self.managers),
        }


def _entries(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in metadata.get("managedFields") or [] if isinstance(e, Mapping)]


def _managers_present(metadata: Mapping[str, Any], wanted: tuple[str, ...]) -> tuple[str, ...]:
    found = {str(e.get("manager") or "") for e in _entries(metadata)}
    return tuple(m for m in wanted if m in found)


def _argocd(metadata: Mapping[str, Any]) -> GitOpsInfo | None:
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    evidence: list[str] = []
    source = ""
    tracking = annotations.get(ARGOCD_TRACKING_ID)
    if tracking:
        evidence.append(f"annotation {ARGOCD_TRACKING_ID}={tracking}")
        # "<app>:<group>/<kind>:<namespace>/<name>"; the app may be "<app namespace>_<app>" (apps in any ns)
        source = f"Application {str(tracking).split(':', 1)[0]}"
    instance = labels.get(ARGOCD_INSTANCE_LABEL)
    if instance:
        evidence.append(f"label {ARGOCD_INSTANCE_LABEL}={instance}")
        source = source or f"Application {instance}"
    managers = _managers_present(metadata, ARGOCD_MANAGERS)
    if not evidence and not managers:
        return None
    helm_instance = labels.get(HELM_INSTANCE_LABEL)
    if helm_instance:
        evidence.append(f"label {HELM_INSTANCE_LABEL}={helm_instance}")
        source = source or f"Application {helm_instance}"
    if managers:
        evidence.append(f"managedFields manager {' and '.join(managers)}")
    return GitOpsInfo(ARGOCD, " and ".join(evidence), source, managers)


def _flux(metadata: Mapping[str, Any]) -> GitOpsInfo | None:
    labels = metadata.get("labels") or {}
    evidence: list[str] = []
    sources: list[str] = []
    for what, name_key, ns_key in (
        ("Kustomization", FLUX_KUSTOMIZE_NAME, FLUX_KUSTOMIZE_NAMESPACE),
        ("HelmRelease", FLUX_HELM_NAME, FLUX_HELM_NAMESPACE),
    ):
        name, namespace = labels.get(name_key), labels.get(ns_key)
        if name:
            evidence.append(f"label {name_key}={name}")
            if namespace:
                evidence.append(f"label {ns_key}={namespace}")
            sources.append(f"{what} {namespace}/{name}" if namespace else f"{what} {name}")
    managers = _managers_present(metadata, FLUX_MANAGERS)
    if not evidence and not managers:
        return None
    if managers:
        evidence.append(f"managedFields manager {' and '.join(managers)}")
    return GitOpsInfo(FLUX, " and ".join(evidence), ", ".join(sources), managers)


def detect_gitops(metadata: Mapping[str, Any]) -> GitOpsInfo | None:
    """The GitOps tool that applies the object with this `metadata`, or None when nothing marks one.

    When markers of both tools are present (Argo CD syncing manifests a Flux build once labelled), the tool
    whose field manager is in managedFields is the one that writes the object now; if both or neither
    are, Argo CD's (the tracking annotation is written only by Argo CD itself).
    """
    argocd, flux = _argocd(metadata), _flux(metadata)
    if argocd and flux and flux.managers and not argocd.managers:
        return flux
    return argocd or flux


def _time(entry: Mapping[str, Any]) -> datetime | None:
    value = entry.get("time")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The API server writes UTC with a "Z"; an entry without a zone is read as UTC, never compared naively.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _owns(entry: Mapping[str, Any], annotation_key: str) -> bool:
    fields = entry.get("fieldsV1") or {}
    annotations = (fields.get("f:metadata") or {}).get("f:annotations") or {}
    return f"f:{annotation_key}" in annotations


def managed_fields_owner(metadata: Mapping[str, Any], annotation_key: str) -> str | None:
    """The field manager that owns `metadata.annotations[annotation_key]`, or None when no entry lists it.

    With Update operations one manager owns a field (the last to change it); server-side appliers may
    co-own it, and then the one whose entry is newest is named.
    """
    owners = [e for e in _entries(metadata) if _owns(e, annotation_key)]
    if not owners:
        return None
    newest = max(owners, key=lambda e: _time(e) or _EPOCH)
    return str(newest.get("manager") or "") or None


@dataclass(frozen=True, slots=True)
class LastChange:
    """Who last wrote an object, as far as managedFields tells: the manager(s) of the newest entry."""

    managers: tuple[str, ...]
    time: str  # RFC 3339 as the API server wrote it, "2026-11-30T14:02:11Z"

    def __str__(self) -> str:
        return f"{' or '.join(self.managers)} at {self.time}" if self.time else " or ".join(self.managers)


def last_change(metadata: Mapping[str, Any]) -> LastChange | None:
    """The newest managedFields entry's manager and time: who changed the object last.

    managedFields times have one-second resolution and the API server sorts entries by operation, time and
    manager name, not by the order of the writes: when several entries share the newest second, every one
    of their managers is named (sorted), since any of them may have been last.
    """
    dated = [(t, e) for e in _entries(metadata) if (t := _time(e)) is not None and e.get("manager")]
    if not dated:
        undated = sorted({str(e.get("manager")) for e in _entries(metadata) if e.get("manager")})
        return LastChange(tuple(undated), "") if undated else None
    newest = max(t for t, _e in dated)
    entries = [e for t, e in dated if t == newest]
    managers = tuple(sorted({str(e["manager"]) for e in entries}))
    return LastChange(managers, str(entries[0]["time"]))


def patch_file_name(kind: str, name: str) -> str:
    """The file name the Kustomize patch is offered under: "web-service-dns.yaml"."""
    return f"{name}-{kind.lower()}-dns.yaml"


def kustomize_patch(kind: str, namespace: str, name: str, changes: Mapping[str, str | None]) -> str:
    """A Kustomize strategic-merge patch that makes the same annotation changes in Git.

    A value of None removes the annotation: `null` in a strategic-merge patch deletes the key. Values are
    always strings (quoted where YAML would read them as numbers or booleans, "80" not 80), as annotations
    must be. The first lines say where the file goes: `patches:` in the kustomization.yaml that builds the
    object.
    """
    api_version = _API_VERSIONS.get(kind)
    if api_version is None:
        raise ValueError(f"annotations are written back to Services and Ingresses, not {kind or 'nothing'}")
    if not changes:
        raise ValueError(f"no annotation changes for {kind} {namespace}/{name}")
    for key, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"annotation `{key}`: {value!r} is not a string; annotation values are strings")
    doc = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(sorted(changes.items()))},
    }
    file_name = patch_file_name(kind, name)
    header = (
        f"# {file_name}: add it to `patches:` in the kustomization.yaml that builds "
        f"{kind} {namespace}/{name}:\n"
        f"#   patches:\n"
        f"#     - path: {file_name}\n"
    )
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    return header + body
