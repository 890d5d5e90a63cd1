"""The `watch` process: a Kubernetes watch per cluster and kind, applied to endpoint rows as events arrive.

One leader at a time across replicas: a Redis key with an expiry, renewed while the leader lives. A standby
polls for it and takes over when the leader stops renewing (killed, partitioned), within LOCK_TTL_S plus one
poll. Each cluster starts with a full list (its rows replaced atomically), then watches every kind from the
list's resourceVersion; a dropped watch resumes from the last resourceVersion seen, a 410 Gone relists.
A cluster that cannot be reached is marked stale and keeps its endpoints, and is retried with backoff.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections, connection, transaction
from redis import Redis, RedisError

from clusters import discovery
from clusters.discovery import ClusterState, Gone
from clusters.models import Cluster
from dnsportal import metrics

log = logging.getLogger(__name__)

LOCK_KEY = "dnsportal:watch:leader"
# A list the services push to when a cluster is registered or changed: the leader, blocked on it between its
# rounds, reloads at once instead of at its next periodic reload (which stays, for anything not pushed).
POKE_KEY = "dnsportal:watch:poke"
# What of a cluster row the watch depends on (`_fingerprint`): a save of other fields (the watch's own
# fresh/stale marks, check results) does not wake it.
WATCHED_FIELDS = frozenset({"enabled", "source_options", "context", "fingerprint", "kubeconfig_encrypted"})
LOCK_TTL_S = 15
RENEW_EVERY_S = 5
STANDBY_POLL_S = 2
RELOAD_EVERY_S = 5
BACKOFF_MAX_S = 30

# Renew only our own lock: a leader that lost it (expired while paused) must not extend someone else's.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leadership:
    def __init__(self, redis: Redis, *, ttl_s: int = LOCK_TTL_S) -> None:
        self.redis = redis
        self.ttl_ms = ttl_s * 1000
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        # Ours already (a round that ended on an outage left it): lead again at once, not after its expiry.
        return bool(self.redis.eval(_ACQUIRE, 1, LOCK_KEY, self.identity, self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.redis.eval(_RENEW, 1, LOCK_KEY, self.identity, self.ttl_ms))

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, LOCK_KEY, self.identity)

    def holder(self) -> str | None:
        value = self.redis.get(LOCK_KEY)
        return value.decode() if value else None


def _fingerprint(cluster: Cluster) -> tuple:
    """What, when it changes, means the cluster's watches must start over."""
    return (
        cluster.fingerprint,
        cluster.enabled,
        repr(sorted(cluster.source_options.items())),
        cluster.context,
    )


class ClusterWatcher:
    """Keeps one cluster's endpoint rows current: a full list, then a watch thread per kind."""

    def __init__(self, cluster: Cluster, on_change: Callable[[int, set[str]], None]) -> None:
        self.cluster_id = cluster.id
        self.name = cluster.name
        self.fingerprint = _fingerprint(cluster)
        self.on_change = on_change
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"watch-{cluster.name}", daemon=True)
        # Names whose rows changed but whose zones were not told (Redis or PostgreSQL away): told next time.
        self._untold: set[str] = set()
        self._untold_lock = threading.Lock()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _run(self) -> None:
        backoff = 1.0
        metrics.watch_started(self.name)
        first = first_list = True
        try:
            while not self.stop_event.is_set():
                if not first:  # a relist, or another try at an unreachable cluster
                    metrics.watch_reconnected(self.name)
                first = False
                state, changed = discovery.sync_cluster(self.cluster_id)
                if state is None:  # unreachable (marked stale) or gone/disabled
                    if not Cluster.objects.filter(id=self.cluster_id, enabled=True).exists():
                        return
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = 1.0
                if first_list:
                    # What a watch before this one (another leader, killed between writing rows and telling
                    # the zones) left untold cannot be known: the first list tells every name the cluster has.
                    changed |= discovery.cluster_names(self.cluster_id)
                    first_list = False
                try:
                    self._tell(changed)
                except Exception as exc:  # kept untold: each kind's watch tells them before its first event
                    log.warning("cluster %s: could not ask for the reconciles (%s)", self.name, exc)
                relist = self._watch_all(state)
                if not relist:
                    self.stop_event.wait(backoff)
        finally:
            connection.close()

    def _watch_all(self, state: ClusterState) -> bool:
        """Watch every kind until one of them needs a relist (True) or the watcher stops (False)."""
        from clusters.services import client_for

        cluster = Cluster.objects.get(id=self.cluster_id)
        need_relist = threading.Event()
        responses: set = set()
        lock = threading.Lock()
        closing = threading.Event()

        def close(response) -> None:
            with contextlib.suppress(Exception):
                response.shutdown() if hasattr(response, "shutdown") else response.close()

        def track(response) -> None:
            with lock:
                if closing.is_set():
                    # Its request was in flight when the watches were ended: end this one as it arrives,
                    # or its thread would wait out the server-side timeout.
                    close(response)
                    return
                responses.add(response)

        with client_for(cluster) as cc:
            threads = [
                threading.Thread(
                    target=self._watch_kind,
                    args=(cc, state, kind, need_relist, track),
                    name=f"watch-{self.name}-{kind}",
                    daemon=True,
                )
                for kind in sorted(state.versions)  # the kinds the last full list read (CRDs installed)
            ]
            for t in threads:
                t.start()
            while not (self.stop_event.is_set() or need_relist.is_set()):
                self.stop_event.wait(0.5)
            # End the open watches now instead of waiting for their server-side timeout.
            with lock:
                closing.set()
                for response in responses:
                    close(response)
            for t in threads:
                t.join(timeout=5)
        return need_relist.is_set() and not self.stop_event.is_set()

    def _watch_kind(
        self,
        cc,
        state: ClusterState,
        kind: str,
        need_relist: threading.Event,
        track: Callable,
    ) -> None:
        namespace = "" if kind in ("Node", "Namespace", "Gateway") else state.options.namespace
        custom = state.custom.get(kind)
        failures = 0
        opened = False
        try:
            while not (self.stop_event.is_set() or need_relist.is_set()):
                if opened:  # the stream ended (server-side timeout) or dropped: resumed from the last version
                    metrics.watch_reconnected(self.name)
                opened = True
                try:
                    self._tell(set())  # what an earlier failure left untold, before anything new
                    for event in discovery.watch_kind(
                        cc,
                        kind,
                        namespace,
                        state.versions[kind],
                        timeout_seconds=60,
                        track=track,
                        custom=custom,
                    ):
                        if self.stop_event.is_set() or need_relist.is_set():
                            return
                        failures = 0
                        self._apply(state, kind, event)
                        is_crd = custom is not None and kind == state.options.crd_source_kind
                        if is_crd and event.get("type") in ("ADDED", "MODIFIED"):
                            discovery.write_observed_generation(cc, custom, event.get("object") or {})
                except Gone:
                    log.info("cluster %s: %s watch expired (410 Gone); relisting", self.name, kind)
                    need_relist.set()
                    return
                except Exception as exc:
                    if self.stop_event.is_set() or need_relist.is_set():
                        return
                    if isinstance(exc, DatabaseError):
                        # PostgreSQL went away mid-event: the object index may have moved where the rows did
                        # not, so a resumed watch would not see the event again. A relist rewrites the rows.
                        log.warning("cluster %s: %s event not stored (%s); relisting", self.name, kind, exc)
                        need_relist.set()
                        return
                    if custom is not None and getattr(exc, "status", None) == 404:
                        # The CRD was removed: relist, which checks again which kinds the cluster serves.
                        log.info("cluster %s: %s is no longer served; relisting", self.name, kind)
                        need_relist.set()
                        return
                    failures += 1
                    error = discovery.describe_error(exc, cc.access.server)
                    log.warning("cluster %s: %s watch failed (%s)", self.name, kind, error)
                    probe = self._probe(cc)
                    if probe is not None:
                        # An unreachable cluster is not an empty one: freeze its endpoints until it is back,
                        # then relist, so nothing missed while it was away goes unseen.
                        discovery.mark_stale(self.cluster_id, probe)
                        while not (self.stop_event.is_set() or need_relist.is_set()) and self._probe(cc):
                            self.stop_event.wait(min(2**failures, BACKOFF_MAX_S))
                            failures += 1
                        need_relist.set()
                        return
                    # Reachable: a dropped connection; resume from the last resourceVersion seen.
                    self.stop_event.wait(min(0.2 * 2**failures, BACKOFF_MAX_S))
        finally:
            connection.close()

    @staticmethod
    def _probe(cc) -> str | None:
        """None when the API server answers; else why not (a dropped watch stream does not say)."""
        from kubernetes import client as k8s

        try:
            k8s.VersionApi(cc.api).get_code()
        except Exception as exc:
            return discovery.describe_error(exc, cc.access.server)
        return None

    def _apply(self, state: ClusterState, kind: str, event: dict) -> None:
        arrived = time.perf_counter()
        obj = event.get("object") or {}
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if event.get("type") == "BOOKMARK":
            if rv:
                state.versions[kind] = rv
            return
        close_old_connections()
        changed: set[str] = set()
        for item in state.apply_event(kind, event.get("type", ""), obj):
            if isinstance(item, tuple):
                changed |= discovery.delete_object(self.cluster_id, item)
            else:
                changed |= discovery.store_object(self.cluster_id, item)
        if rv:
            state.versions[kind] = rv
        # Event to endpoint rows: store_object/delete_object commit before they return.
        metrics.DISCOVERY_LAG.labels(self.name).observe(time.perf_counter() - arrived)
        self._tell(changed)

    def _tell(self, changed: set[str]) -> None:
        """Tell the zones these names changed (with any left untold before). The rows are written already and
        the stream has moved past the event: if Redis or PostgreSQL is away the names are kept, and told
        before the next event (the failure makes the watch wait and resume)."""
        with self._untold_lock:
            names, self._untold = changed | self._untold, set()
        if not names:
            return
        try:
            self.on_change(self.cluster_id, names)
        except BaseException:
            with self._untold_lock:
                self._untold |= names
            raise


class WatchManager:
    """The leader's work: a ClusterWatcher per enabled cluster, restarted when the cluster changes."""

    def __init__(self, on_change: Callable[[int, set[str]], None] | None = None) -> None:
        self.watchers: dict[int, ClusterWatcher] = {}
        self.on_change = on_change or endpoints_changed

    def reload(self) -> None:
        close_old_connections()
        clusters = {c.id: c for c in Cluster.objects.filter(enabled=True)}
        for cluster_id, watcher in list(self.watchers.items()):
            cluster = clusters.get(cluster_id)
            if (
                cluster is None
                or _fingerprint(cluster) != watcher.fingerprint
                or not watcher.thread.is_alive()
            ):
                watcher.stop()
                del self.watchers[cluster_id]
        for cluster_id, cluster in clusters.items():
            if cluster_id not in self.watchers:
                watcher = ClusterWatcher(cluster, self.on_change)
                self.watchers[cluster_id] = watcher
                watcher.start()

    def stop(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        for watcher in self.watchers.values():
            watcher.join(timeout=5)
        self.watchers.clear()


def endpoints_changed(cluster_id: int, names: set[str]) -> None:
    """Desired state changed for these names: the zones holding them need a reconcile (issue "Route53")."""
    from clusters.signals import endpoints_changed as signal_

    signal_.send(sender=Cluster, cluster_id=cluster_id, names=frozenset(names))


def poke() -> None:
    """Wake the leading watch: a cluster was registered or changed, reload the clusters now (its first list
    starts at once instead of within RELOAD_EVERY_S). Best effort: the periodic reload still comes."""
    from dnsportal.queue import rq_connection

    try:
        with rq_connection().pipeline() as pipe:
            pipe.rpush(POKE_KEY, 1).expire(POKE_KEY, 60).execute()  # no leader to take it: gone in a minute
    except RedisError as exc:
        log.warning(
            "could not wake the watch (%s): it reloads within %d s", exc.__class__.__name__, RELOAD_EVERY_S
        )


def cluster_saved(sender, instance: Cluster, created: bool = False, update_fields=None, **kwargs) -> None:
    """post_save/post_delete of a Cluster: wake the watch once the change is committed, when it is one the
    watch depends on."""
    if update_fields is not None and not created and not (set(update_fields) & WATCHED_FIELDS):
        return
    transaction.on_commit(poke)


def run(redis: Redis, *, stop: threading.Event | None = None) -> None:
    """The watch process: wait to be the leader, then keep every cluster watched until stopped."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    leadership = Leadership(redis)
    log.info("watch %s started; waiting to lead", leadership.identity)
    while not stop.is_set():
        try:
            leading = leadership.acquire()
        except RedisError as exc:
            log.warning("watch %s: Redis does not answer (%s); trying again", leadership.identity, exc)
            leading = False
        if not leading:
            stop.wait(STANDBY_POLL_S)
            continue
        log.info("watch %s is the leader", leadership.identity)
        manager = WatchManager()
        last_renew = last_reload = 0.0
        poked = True  # the first round reloads
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - last_renew >= RENEW_EVERY_S:
                    if not leadership.renew():
                        log.warning("watch %s lost the leadership; standing by", leadership.identity)
                        break
                    last_renew = now
                if poked or now - last_reload >= RELOAD_EVERY_S:
                    manager.reload()
                    last_reload = now
                # Half a second at most, like the stop check it replaces; a poke ends it at once.
                poked = redis.blpop([POKE_KEY], timeout=0.5) is not None
                if poked:
                    redis.delete(POKE_KEY)  # one reload covers every poke so far
        except (RedisError, DatabaseError) as exc:
            # Redis or PostgreSQL restarting: stand down (the watchers stop; their rows are safe), then lead
            # again once they answer, from a fresh list of every cluster; exiting would need a supervisor.
            log.warning("watch %s: %s; leading again once it answers", leadership.identity, exc)
            stop.wait(STANDBY_POLL_S)
        finally:
            manager.stop()
            with contextlib.suppress(RedisError):
                leadership.release()
            connection.close()  # the reloads' (the watchers close their own)
    log.info("watch %s stopped", leadership.identity)
