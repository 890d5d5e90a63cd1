"""The worker class `manage.py rqworker` runs (settings.RQ["WORKER_CLASS"]): RQ's forking worker, whose parent
keeps what is expensive to build so that every job's process is born with it.

Why a process per job still (RQ's `Worker`, not `SimpleWorker`): the parent kills a job that hangs past its
timeout, and a job that bloats (a plan of a 20,000-record zone) gives its memory back when its process exits;
a job that crashes the interpreter takes only itself down. A `SimpleWorker` would keep clients between jobs
but lose all three; RQ's `WorkerPool` only runs several of these workers side by side.

What is kept: before forking a job's process the parent makes sure every Route53 account's boto3 client is
built (botocore's service model and endpoint data parsed: a tenth to a quarter of a second per client) and a
role's credentials assumed, or refreshed when botocore finds them near expiry
(`records.services.provider_clients_warm`, kept in `records.providers.route53`'s per-process cache). The fork
copies them into the job's process, which finds them in the same cache. The parent asks the database at most
every WARM_EVERY_S seconds, and closes its connection before forking: a job never shares the parent's.
A client is keyed by a digest of its configuration, so changed credentials build a new one (in the job, until
the parent's next round). The parent never sends a Route53 request; an STS AssumeRole is the one call it can
make.
"""

from __future__ import annotations

import logging
import time

from django.db import connections
from rq.worker import Worker as ForkingWorker

log = logging.getLogger(__name__)

WARM_EVERY_S = 30.0
MAINTENANCE_EVERY_S = 60


class Worker(ForkingWorker):
    """RQ's forking worker that prepares provider clients in the parent before each fork (see the module)."""

    _warmed_at: float | None = None

    def __init__(self, *args, **kwargs) -> None:
        # RQ's maintenance (every 10 minutes by default) is also when a worker started with --with-scheduler
        # tries again for a queue's scheduler lock it did not get at its start (a killed worker's lock lived
        # on): until then that queue's delayed jobs wait. Every minute instead.
        kwargs.setdefault("maintenance_interval", MAINTENANCE_EVERY_S)
        super().__init__(*args, **kwargs)

    def execute_job(self, job, queue):
        now = time.monotonic()
        if self._warmed_at is None or now - self._warmed_at >= WARM_EVERY_S:
            self._warmed_at = now
            self.prepare()
        return super().execute_job(job, queue)

    @staticmethod
    def prepare() -> None:
        from records.services import provider_clients_warm

        try:
            provider_clients_warm()
        except Exception:  # the parent must go on forking jobs whatever happens here
            log.exception("preparing provider clients failed; each job builds its own")
        finally:
            connections.close_all()  # the forked job opens its own connection
