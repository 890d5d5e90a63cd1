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


def test_every_bad_source_option_is_reported_with_its_reason(client, root):
    Cluster.objects.create(name="rke2-dc1", server="https://192.0.2.10:6443")
    client.force_login(root)
    flags = "\n".join(
        [
            "--domian-filter=example.com",
            "--namespace=shop",
            "--annotation-filter=a in b",
            "--min-ttl=ten",
            "=oops",
            "--service-type-filter=loadbalancer",
        ]
    )
    response = client.post("/clusters/rke2-dc1/options/", {"options": flags})
    assert response.status_code == 422
    errors = response.context["options_form"].errors["options"]
    assert errors == ["line 5: '=oops' is not an option (write --name=value)."]
    flags = flags.replace("=oops\n", "")
    response = client.post("/clusters/rke2-dc1/options/", {"options": flags})
    assert response.status_code == 422
    errors = response.context["options_form"].errors["options"]
    assert len(errors) == 4, errors
    assert "`domian-filter` is not a source option; did you mean `domain-filter`?" in errors[0]
    assert "option `min-ttl`: `ten` is not a duration" in errors[1]
    assert errors[2].startswith("option `annotation-filter`:")
    assert "did you mean LoadBalancer?" in errors[3]
    html = response.content.decode()
    assert all(e.replace("'", "&#x27;").split(";")[0] in html for e in errors)
    assert Cluster.objects.get(name="rke2-dc1").source_options == {}
