"""The worker `manage.py rqworker` runs (dnsportal/worker.py): still a process per job, its parent keeping
what is expensive to build, so jobs after the first find a role's credentials already assumed."""

from __future__ import annotations

import time

import pytest

from dnsportal.models import JobRun
from dnsportal.queue import enqueue
from records.models import ProviderAccount
from records.services import account_create
from tests.fixtures.jobs import PortalProcess

pytestmark = pytest.mark.django_db(transaction=True)

# The role is assumed with the worker's default chain: keys in its environment, no instance metadata.
CHAIN = {
    "AWS_ACCESS_KEY_ID": "AKIAWORKERCHAIN00000",
    "AWS_SECRET_ACCESS_KEY": "worker-chain-secret",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _run(name: str, **kwargs) -> JobRun:
    run = enqueue(name, **kwargs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in (JobRun.Status.DONE, JobRun.Status.FAILED):
            return run
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish within 60 s")


def test_jobs_in_the_forking_worker_share_one_assumed_role(root, route53, fault_proxy, tmp_path):
    route53.create_hosted_zone(Name="worker.example.com", CallerReference="worker")
    account_create(
        actor=root,
        name="role-account",
        credential_kind="role",
        role_arn="arn:aws:iam::123456789012:role/dns",
        endpoint_url=fault_proxy.url,
    )
    account = ProviderAccount.objects.get(name="role-account")
    worker = PortalProcess(["rqworker", "dns", "default"], tmp_path / "worker.log", CHAIN)
    try:
        runs = [_run("account_check", account_id=account.id) for _ in range(3)]
    finally:
        worker.stop()
    assert [r.status for r in runs] == [JobRun.Status.DONE] * 3, (tmp_path / "worker.log").read_text()
    account.refresh_from_db()
    assert account.last_check_ok, account.last_check_message
    # Three checks (and the account's own first one), each its own request, one role assumption for all.
    assert fault_proxy.requests["ListHostedZones"] >= 3
    assert fault_proxy.requests["sts:AssumeRole"] == 1
