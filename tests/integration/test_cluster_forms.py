"""The cluster forms say what is wrong once, and all of it: kubeconfig problems, source options."""

from __future__ import annotations

import re

import pytest
import yaml

from clusters.models import Cluster

pytestmark = pytest.mark.django_db


def _kubeconfig(user: dict) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": "https://192.0.2.10:6443"}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "ctx",
        }
    )


def _errors(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", e).strip() for e in re.findall(r'class="error"[^>]*>(.*?)</p>', html, re.S)]


def test_each_kubeconfig_problem_is_shown_once_on_the_register_form(client, root):
    client.force_login(root)
    kubeconfig = _kubeconfig({"exec": {"command": "sh", "args": ["-c", "touch /tmp/pwned"]}})
    response = client.post("/clusters/register/", {"name": "evil", "kubeconfig": kubeconfig})
    assert response.status_code == 422
    problems = response.context["form"].errors["kubeconfig"]
    assert problems and any("exec" in p for p in problems)
    shown = _errors(response.content.decode())
    for problem in problems:
        assert shown.count(problem) == 1, (problem, shown)
    assert not Cluster.objects.exists()


def test_the_live_kubeconfig_check_still_lists_the_problems(client, root):
    # While the operator pastes, the summary beside the field is the only place the problems appear.
    client.force_login(root)
    kubeconfig = _kubeconfig({"exec": {"command": "sh"}})
    response = client.post("/clusters/register/parse/", {"kubeconfig": kubeconfig}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert any("exec" in e for e in _errors(response.content.decode()))
