"""Discovery: read a cluster's Services and Ingresses (and the Nodes, Pods, EndpointSlices they need), and the
Gateway API routes (with Gateways and Namespaces) and DNSEndpoints its sources name where their CRDs are
installed (`clusters.kinds`), turn them into endpoints with the pure core (`clusters.sources`) and store the
rows.

Two ways in, one way to store:
- `sync_cluster`: a full list of every kind (paginated), then the cluster's rows are replaced in one
  transaction (the periodic resync job, and the watch process when it starts or after 410 Gone);
- `ClusterState.apply_event`: one watch event changes one object (or the Services that depend on a Node, Pod
  or EndpointSlice), and only that object's rows are rewritten.

An unreachable cluster is not an empty cluster: when listing fails, nothing is deleted; the cluster is marked
stale (and its endpoints stay as they were) until a list succeeds again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from kubernetes import client as k8s
from kubernetes.watch.watch import iter_resp_lines

from clusters.discovery_rows import (
    OBJECT_FIELDS,
    endpoint_fields,
    object_fields,
    write_endpoints,
)
from clusters.endpoints import (
    Inventory,
    ObjectResult,
    inventory_kinds,
    object_key,
    service_selects,
    slice_service,
)
from clusters.kinds import CustomKind, kind_status, resolve_custom_kinds
from clusters.kube import ClusterClient, describe_error
from clusters.models import Cluster, DiscoveredObject
from clusters.source_crd import observed_generation_status
from clusters.source_gateway import ROUTE_KINDS, GatewayIndex, gateway_routes
from clusters.source_istio import IstioIndex
from clusters.source_options import SourceOptions
from clusters.sources import endpoints_for, read_kinds
from dnsportal.audit import audit_record
from dnsportal.bulk import copy_insert

log = logging.getLogger(__name__)

PAGE_SIZE = 500
SOURCE_KINDS = ("Service", "Ingress")
INVENTORY_KINDS = ("Node", "Pod", "EndpointSlice")

# (API class, list across namespaces, list in one namespace or None for cluster-scoped kinds)
_LISTERS: dict[str, tuple[type, str, str | None]] = {
    "Service": (k8s.CoreV1Api, "list_service_for_all_namespaces", "list_namespaced_service"),
    "Ingress": (k8s.NetworkingV1Api, "list_ingress_for_all_namespaces", "list_namespaced_ingress"),
    "Node": (k8s.CoreV1Api, "list_node", None),
    "Namespace": (k8s.CoreV1Api, "list_namespace", None),
    "Pod": (k8s.CoreV1Api, "list_pod_for_all_namespaces", "list_namespaced_pod"),
    "EndpointSlice": (
        k8s.DiscoveryV1Api,
        "list_endpoint_slice_for_all_namespaces",
        "list_namespaced_endpoint_slice",
    ),
}


class Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): relist."""


def _lister(cc: ClusterClient, kind: str, namespace: str, custom: CustomKind | None) -> Callable[..., Any]:
    if custom is not None:
        objects = k8s.CustomObjectsApi(cc.api)
        c = custom
        if namespace:
            return lambda **kw: objects.list_namespaced_custom_object(
                c.group, c.version, namespace, c.plural, **kw
            )
        return lambda **kw: objects.list_cluster_custom_object(c.group, c.version, c.plural, **kw)
    api_class, all_ns, one_ns = _LISTERS[kind]
    api = api_class(cc.api)
    if namespace and one_ns:
        method = getattr(api, one_ns)
        return lambda **kw: method(namespace, **kw)
    return getattr(api, all_ns)


def list_kind(
    cc: ClusterClient, kind: str, namespace: str = "", *, custom: CustomKind | None = None
) -> tuple[list[dict], str]:
    """Every object of `kind` as plain dicts (the API's JSON, camelCase), and the list's resourceVersion.

    Pages of 500 with `continue` tokens; the raw JSON is parsed directly (the client's model classes would
    cost more than the rest of discovery together).
    """
    lister = _lister(cc, kind, namespace, custom)
    items: list[dict] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        response = lister(**kwargs)
        page = json.loads(response.data)
        for item in page.get("items") or []:
            item.setdefault("kind", kind)
            items.append(item)
        meta = page.get("metadata") or {}
        token = meta.get("continue")
        if not token:
            return items, meta.get("resourceVersion", "")


def watch_kind(
    cc: ClusterClient,
    kind: str,
    namespace: str,
    resource_version: str,
    *,
    timeout_seconds: int = 240,
    track: Callable[[Any], None] | None = None,
    custom: CustomKind | None = None,
) -> Iterator[dict]:
    """Watch events of `kind` from `resource_version` as plain dicts; BOOKMARKs included; raises Gone on 410.

    `track` receives the open HTTP response, so another thread can close it to end the watch at once.
    """
    lister = _lister(cc, kind, namespace, custom)
    response = lister(
        watch=True,
        resource_version=resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=timeout_seconds,
        _preload_content=False,
        _request_timeout=(cc.timeout[0], timeout_seconds + 30),
    )
    if track is not None:
        track(response)
    try:
        for line in iter_resp_lines(response):
            if not line:
                continue
            event = json.loads(line)
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                if status.get("code") == 410:
                    raise Gone(status.get("message", "resourceVersion too old"))
                raise k8s.exceptions.ApiException(
                    status=status.get("code", 500), reason=status.get("message")
                )
            obj = event.get("object") or {}
            obj.setdefault("kind", kind)
            yield event
    finally:
        response.close()
        response.release_conn()


@dataclass
class ClusterState:
    """What discovery knows of one cluster: its objects, its inventory, and the resourceVersion per kind."""

    cluster_id: int
    cluster_name: str
    options: SourceOptions
    sources: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (kind, ns, name) -> object
    inventory: Inventory = field(default_factory=Inventory)
    versions: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # The custom kinds the sources need and where the cluster serves them (None: CRD not installed).
    custom: dict[str, CustomKind | None] = field(default_factory=dict)
    gateways: dict[tuple[str, str], dict] = field(default_factory=dict)
    namespace_labels: dict[str, dict] = field(default_factory=dict)
    istio_gateways: dict[tuple[str, str], dict] = field(default_factory=dict)

    @property
    def source_kinds(self) -> frozenset[str]:
        """The kinds that publish: the sources' kinds the cluster serves (Istio's Gateway as IstioGateway)."""
        kinds = set(read_kinds(self.options))
        if "istio-gateway" in self.options.source:
            kinds.add("IstioGateway")
        return frozenset(k for k in kinds if k not in self.custom or self.custom[k])

    def compute(self, kind: str, obj: dict) -> ObjectResult:
        index = GatewayIndex(self.gateways, self.namespace_labels)
        istio = None
        if self.istio_gateways:  # Istio Gateways' targets come from Services and Ingresses
            istio = IstioIndex(
                self.istio_gateways,
                tuple(o for key, o in self.sources.items() if key[0] == "Service"),
                {key[1:]: o for key, o in self.sources.items() if key[0] == "Ingress"},
            )
        return endpoints_for(
            obj,
            self.options,
            inventory=self.inventory,
            gateways=index,
            istio=istio,
            kind="Gateway" if kind == "IstioGateway" else kind,
            cluster=self.cluster_name,
        )

    def _istio_dependents(self, kind: str) -> list[tuple[str, str, str]]:
        # Services and Ingresses give Istio Gateways their targets, which give VirtualServices theirs.
        wanted = {"IstioGateway", "VirtualService"} if kind in ("Service", "Ingress") else {"VirtualService"}
        return [key for key in self.sources if key[0] in wanted]

    def dependents(self, kind: str, obj: dict) -> list[tuple[str, str, str]]:
        """Objects whose endpoints change when this Node, Pod, EndpointSlice, Gateway or Namespace changes."""
        out = []
        if kind == "Gateway":
            routes = [o for key, o in self.sources.items() if key[0] in ROUTE_KINDS]
            return [(o.get("kind") or "", *object_key(o)) for o in routes if gateway_routes(obj, [o])]
        if kind == "Namespace":  # allowedRoutes namespace selectors read Namespace labels
            return [key for key in self.sources if key[0] in ROUTE_KINDS]
        if kind == "EndpointSlice":
            owner = slice_service(obj)
            if owner and ("Service", *owner) in self.sources:
                out.append(("Service", *owner))
            return out
        for key, svc in self.sources.items():
            if key[0] != "Service" or kind not in inventory_kinds(svc, self.options):
                continue
            if kind == "Node" or service_selects(svc, obj):
                out.append(key)
        return out

    def apply_event(self, kind: str, event_type: str, obj: dict) -> list[ObjectResult | tuple[str, str, str]]:
        """Update the caches for one watch event; returns what to store: results, or keys of gone objects."""
        with self.lock:
            ns, name = object_key(obj)
            if kind == "IstioGateway":
                if event_type == "DELETED":
                    self.istio_gateways.pop((ns, name), None)
                else:
                    self.istio_gateways[(ns, name)] = obj
            if kind in self.source_kinds:
                key = (kind, ns, name)
                if event_type == "DELETED":
                    self.sources.pop(key, None)
                    # stored under the kind the object names (Istio's Gateway is a Gateway)
                    out: list = [("Gateway", ns, name) if kind == "IstioGateway" else key]
                else:
                    self.sources[key] = obj
                    out = [self.compute(kind, obj)]
                istio = {"istio-gateway", "istio-virtualservice"} & set(self.options.source)
                if istio and kind in ("Service", "Ingress", "IstioGateway"):
                    out += [self.compute(k[0], self.sources[k]) for k in self._istio_dependents(kind)]
                return out
            if kind == "IstioGateway":  # read only for VirtualServices
                return [self.compute(k[0], self.sources[k]) for k in self._istio_dependents(kind)]
            if kind in ("Gateway", "Namespace"):
                if kind == "Gateway" and event_type == "DELETED":
                    self.gateways.pop((ns, name), None)
                elif kind == "Gateway":
                    self.gateways[(ns, name)] = obj
                elif event_type == "DELETED":
                    self.namespace_labels.pop(name, None)
                else:
                    self.namespace_labels[name] = (obj.get("metadata") or {}).get("labels") or {}
                affected = self.dependents(kind, obj)
            elif event_type == "DELETED":
                affected = self.dependents(kind, obj)
                self.inventory.delete(obj, kind=kind)
            else:
                self.inventory.upsert(obj, kind=kind)
                affected = self.dependents(kind, obj)
            return [self.compute(key[0], self.sources[key]) for key in affected if key in self.sources]


def needed_inventory(options: SourceOptions, services: Iterable[dict]) -> set[str]:
    kinds: set[str] = set()
    for svc in services:
        kinds |= inventory_kinds(svc, options)
    return kinds


def full_list(cc: ClusterClient, state: ClusterState) -> list[ObjectResult]:
    """List every kind and rebuild the state; returns one result per object a source reads.

    Checks first which custom kinds (routes, Gateways, DNSEndpoints) the cluster serves: one whose CRD is
    not installed is neither listed nor watched.
    """
    namespace = state.options.namespace
    objects: dict[str, list[dict]] = {}
    versions: dict[str, str] = {}
    custom = resolve_custom_kinds(cc, state.options)
    kinds = [k for k in SOURCE_KINDS if k in read_kinds(state.options)]
    kinds += [k for k, c in custom.items() if c is not None]
    if custom.get("Gateway"):
        kinds.append("Namespace")
    for kind in kinds:
        ns = "" if kind in ("Namespace", "Gateway") else namespace  # --gateway-namespace is a filter
        objects[kind], versions[kind] = list_kind(cc, kind, ns, custom=custom.get(kind))
    # Nodes, Pods and EndpointSlices are read (and watched) for every cluster: a Service can become NodePort
    # or headless at any time, and the watch must already be there when it does.
    for kind in INVENTORY_KINDS:
        objects[kind], versions[kind] = list_kind(cc, kind, "" if kind == "Node" else namespace)
    with state.lock:
        state.inventory = Inventory()
        for kind in INVENTORY_KINDS:
            for obj in objects[kind]:
                state.inventory.upsert(obj, kind=kind)
        state.custom = custom
        state.gateways = {object_key(o): o for o in objects.get("Gateway", [])}
        state.istio_gateways = {object_key(o): o for o in objects.get("IstioGateway", [])}
        state.namespace_labels = {
            (o.get("metadata") or {}).get("name") or "": (o.get("metadata") or {}).get("labels") or {}
            for o in objects.get("Namespace", [])
        }
        sources = state.source_kinds
        state.sources = {(k, *object_key(o)): o for k in objects if k in sources for o in objects[k]}
        state.versions = versions
        results = [state.compute(kind, obj) for (kind, _ns, _name), obj in state.sources.items()]
    crd = custom.get(state.options.crd_source_kind)
    if crd is not None and "crd" in state.options.source:
        for obj in objects.get(state.options.crd_source_kind, []):
            write_observed_generation(cc, crd, obj)
    return results


def write_observed_generation(cc: ClusterClient, crd: CustomKind, obj: dict) -> None:
    """Set a DNSEndpoint's status.observedGeneration to its generation, as ExternalDNS's crd source does.

    A PUT of the status subresource carrying the object's resourceVersion: a newer object wins (409) and its
    own event writes again. Failures are logged, never fatal, as in ExternalDNS.
    """
    status = observed_generation_status(obj)
    if status is None:
        return
    ns, name = object_key(obj)
    body = {**obj, "status": status}
    try:
        k8s.CustomObjectsApi(cc.api).replace_namespaced_custom_object_status(
            crd.group, crd.version, ns, crd.plural, name, body
        )
    except Exception as exc:
        log.warning("could not update observedGeneration of %s %s/%s: %s", obj.get("kind"), ns, name, exc)


def store_object(cluster_id: int, result: ObjectResult) -> set[str]:
    """Write one object's row and its endpoints; returns the DNS names whose desired state changed."""
    now = timezone.now()
    with transaction.atomic():
        source, _created = DiscoveredObject.objects.update_or_create(
            cluster_id=cluster_id,
            kind=result.kind,
            namespace=result.namespace,
            name=result.name,
            defaults={**object_fields(result), "last_seen": now},
        )
        existing = {
            (e.source_id, e.dns_name, e.record_type, e.set_identifier): e for e in source.endpoints.all()
        }
        wanted = {
            (source.id, ep.dns_name, ep.record_type, ep.set_identifier): endpoint_fields(ep)
            for ep in result.endpoints
        }
        changed = write_endpoints(cluster_id, existing, wanted, now)
    _reverts_seen(cluster_id, [result])
    return changed


def _reverts_seen(cluster_id: int, results: list[ObjectResult]) -> None:
    """A policy written back, then reverted in the cluster (a GitOps sync), is said on its proposal."""
    from records.proposals import reverts_seen

    reverts_seen(cluster_id, results)


def delete_object(cluster_id: int, key: tuple[str, str, str]) -> set[str]:
    """The object is gone from the cluster (a watch DELETED event): its endpoints go too."""
    kind, namespace, name = key
    with transaction.atomic():
        source = DiscoveredObject.objects.filter(
            cluster_id=cluster_id, kind=kind, namespace=namespace, name=name
        ).first()
        if source is None:
            return set()
        names = set(source.endpoints.values_list("dns_name", flat=True))
        source.delete()
    return names


def replace_cluster(cluster_id: int, results: list[ObjectResult], listed_at: Any = None) -> set[str]:
    """Replace a cluster's objects and endpoints with a full list's results, atomically.

    `listed_at` is when the list began: an object the watch wrote after it (the periodic resync runs in a
    worker while the watch process goes on) is newer than the list, or the watch is about to make it so; its
    row and endpoints are kept as the watch left them, and it is not deleted for missing from the list.

    Rows that did not change keep their ids and first_seen; the work is a handful of bulk statements whatever
    the number of objects (5,000 Services are one read, a few bulk writes).
    """
    from records.models import Endpoint

    now = timezone.now()
    changed: set[str] = set()
    with transaction.atomic():
        Cluster.objects.select_for_update().filter(id=cluster_id).first()  # one writer per cluster at a time
        old_sources = {
            (s.kind, s.namespace, s.name): s for s in DiscoveredObject.objects.filter(cluster_id=cluster_id)
        }
        watched = {k for k, s in old_sources.items() if listed_at is not None and s.last_seen > listed_at}
        if watched:
            log.info(
                "cluster %s: %d object(s) the watch wrote during the list kept", cluster_id, len(watched)
            )
            results = [r for r in results if (r.kind, r.namespace, r.name) not in watched]
            old_sources = {k: s for k, s in old_sources.items() if k not in watched}
        new_keys = {(r.kind, r.namespace, r.name) for r in results}
        gone = [s.id for k, s in old_sources.items() if k not in new_keys]
        if gone:
            changed |= set(Endpoint.objects.filter(source_id__in=gone).values_list("dns_name", flat=True))
            DiscoveredObject.objects.filter(id__in=gone).delete()
        to_create, to_update, seen = [], [], []
        for result in results:
            key = (result.kind, result.namespace, result.name)
            fields = object_fields(result)
            row = old_sources.get(key)
            if row is None:
                to_create.append((cluster_id, *key, now, now, *(fields[f] for f in OBJECT_FIELDS)))
                continue
            seen.append(row.id)
            if any(getattr(row, f) != v for f, v in fields.items()):
                for f, v in fields.items():
                    setattr(row, f, v)
                to_update.append(row)
        if to_create:
            columns = ("cluster", "kind", "namespace", "name", "first_seen", "last_seen", *OBJECT_FIELDS)
            copy_insert(DiscoveredObject, columns, to_create)
        # Only the objects that changed are rewritten (a bulk update is a CASE per row and column: 26 s for a
        # resync of 10,000 unchanged objects); every listed one was seen now, in one statement.
        DiscoveredObject.objects.bulk_update(to_update, list(OBJECT_FIELDS), batch_size=1000)
        DiscoveredObject.objects.filter(id__in=seen).update(last_seen=now)
        # the keys and ids only: model instances (with their JSON columns) cost a second per 10,000 objects
        rows = DiscoveredObject.objects.filter(cluster_id=cluster_id).values_list(
            "kind", "namespace", "name", "id"
        )
        source_ids = {(kind, ns, name): sid for kind, ns, name, sid in rows}
        kept = {source_ids[k] for k in watched if k in source_ids}
        existing = {
            (e.source_id, e.dns_name, e.record_type, e.set_identifier): e
            for e in Endpoint.objects.filter(cluster_id=cluster_id).exclude(source_id__in=kept)
        }
        wanted: dict[tuple, dict[str, Any]] = {}
        for result in results:
            sid = source_ids[(result.kind, result.namespace, result.name)]
            for ep in result.endpoints:
                wanted[(sid, ep.dns_name, ep.record_type, ep.set_identifier)] = endpoint_fields(ep)
        changed |= write_endpoints(cluster_id, existing, wanted, now)
        Endpoint.objects.filter(cluster_id=cluster_id).update(last_seen=now)
    _reverts_seen(cluster_id, results)
    return changed


def cluster_names(cluster_id: int) -> set[str]:
    """Every DNS name the cluster's endpoint rows publish."""
    from records.models import Endpoint

    return set(Endpoint.objects.filter(cluster_id=cluster_id).values_list("dns_name", flat=True).distinct())


def mark_fresh(cluster_id: int, *, kinds: dict[str, str] | None = None) -> None:
    """A list or watch succeeded: the cluster's endpoints are current again (and, after a full list, which
    custom kinds it serves)."""
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().filter(id=cluster_id).first()
        if cluster is None:
            return
        was_stale = cluster.is_stale
        cluster.is_stale, cluster.stale_since = False, None
        cluster.last_sync_at, cluster.last_sync_error = timezone.now(), ""
        fields = ["is_stale", "stale_since", "last_sync_at", "last_sync_error"]
        if kinds is not None:
            cluster.custom_kinds = kinds
            fields.append("custom_kinds")
        cluster.save(update_fields=fields)
        if was_stale:
            audit_record(
                actor=None,
                action="cluster.fresh",
                obj=cluster,
                before={"is_stale": True},
                after={"is_stale": False},
            )


def mark_stale(cluster_id: int, error: str) -> None:
    """Listing or watching failed: freeze the cluster's endpoints (never delete them) and say why."""
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().filter(id=cluster_id).first()
        if cluster is None:
            return
        was_stale = cluster.is_stale
        cluster.is_stale = True
        cluster.stale_since = cluster.stale_since or timezone.now()
        cluster.last_sync_error = error
        cluster.save(update_fields=["is_stale", "stale_since", "last_sync_error"])
        if not was_stale:
            audit_record(
                actor=None,
                action="cluster.stale",
                obj=cluster,
                before={"is_stale": False},
                after={"is_stale": True, "error": error},
            )


def state_for(cluster: Cluster) -> ClusterState:
    return ClusterState(cluster.id, cluster.name, SourceOptions.from_mapping(cluster.source_options))


def sync_cluster(cluster_id: int, state: ClusterState | None = None) -> tuple[ClusterState | None, set[str]]:
    """Full relist of one cluster into its rows. On failure the cluster is marked stale and its rows kept."""
    from clusters.services import client_for

    cluster = Cluster.objects.filter(id=cluster_id).first()
    if cluster is None or not cluster.enabled:
        return None, set()
    state = state or state_for(cluster)
    listed_at = timezone.now()
    try:
        with client_for(cluster) as cc:
            results = full_list(cc, state)
    except Exception as exc:
        error = describe_error(exc, cluster.server)
        log.warning("cluster %s: list failed, endpoints frozen: %s", cluster.name, error)
        mark_stale(cluster.id, error)
        return None, set()
    changed = replace_cluster(cluster.id, results, listed_at=listed_at)
    mark_fresh(cluster.id, kinds=kind_status(state.custom))
    errors = sum(1 for r in results if r.errors)
    log.info(
        "cluster %s: %d objects, %d with errors, %d names changed",
        cluster.name,
        len(results),
        errors,
        len(changed),
    )
    return state, changed
