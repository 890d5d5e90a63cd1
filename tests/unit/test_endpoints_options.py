"""Source options (ExternalDNS flag names), the label/annotation selector and the fqdn-template evaluator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusters.fqdn_template import FqdnTemplate, TemplateError
from clusters.label_selector import parse_selector, selector_from_map
from clusters.source_options import OPTION_NAMES, SERVICE_TYPES, SourceOptions, SourceOptionsError

# ------------------------------------------------------------------------------------------- options


def test_defaults_are_externaldns_defaults() -> None:
    opts = SourceOptions()
    assert opts.to_mapping() == SourceOptions.from_mapping({}).to_mapping()
    assert (
        opts.exclude_unschedulable is True and opts.publish_internal_services is False and opts.min_ttl == 0
    )
    assert opts.changed() == {}
    assert set(opts.to_mapping()) == set(OPTION_NAMES)


def test_from_mapping_accepts_flags_as_written_in_externaldns_args() -> None:
    opts = SourceOptions.from_mapping(
        {
            "--domain-filter": "Example.com., example.org",
            "publish_internal_services": "true",
            "ingress-class": ["nginx", "alb", "nginx"],
            "min-ttl": "1m30s",
            "fqdn-template": "{{.Name}}.{{.Namespace}}.example.com",
            "annotation-filter": "kubernetes.io/ingress.class in (nginx)",
            "label-filter": "dns!=off",
            "service-type-filter": ["LoadBalancer", "NodePort"],
            "exclude-unschedulable": False,
        }
    )
    assert opts.domain_filter == ("example.com", "example.org")
    assert opts.ingress_class == ("nginx", "alb")
    assert opts.min_ttl == 90 and opts.publish_internal_services and not opts.exclude_unschedulable
    assert opts.changed()["min-ttl"] == 90


def test_to_mapping_is_json_and_round_trips() -> None:
    opts = SourceOptions.from_mapping(
        {"domain-filter": ["example.com"], "min-ttl": 60, "label-filter": "a=b"}
    )
    data = json.loads(json.dumps(opts.to_mapping()))
    assert SourceOptions.from_mapping(data) == opts


_domains = st.lists(st.from_regex(r"[a-z]{1,8}\.(com|org|net)", fullmatch=True), max_size=3)


@given(
    domains=_domains,
    classes=st.lists(st.sampled_from(["nginx", "alb", "traefik"]), max_size=3),
    types=st.lists(st.sampled_from(SERVICE_TYPES), max_size=4),
    flags=st.fixed_dictionaries(
        {}, optional={name: st.booleans() for name in OPTION_NAMES if "ignore" in name}
    ),
    min_ttl=st.integers(min_value=0, max_value=86400),
    namespace=st.sampled_from(["", "shop", "kube-system"]),
)
def test_any_valid_options_round_trip(
    domains: list[str],
    classes: list[str],
    types: list[str],
    flags: dict[str, bool],
    min_ttl: int,
    namespace: str,
) -> None:
    opts = SourceOptions.from_mapping(
        {
            "domain-filter": domains,
            "ingress-class": classes,
            "service-type-filter": types,
            "min-ttl": min_ttl,
            "namespace": namespace,
            **flags,
        }
    )
    assert SourceOptions.from_mapping(opts.to_mapping()) == opts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"domain-filters": ["x.com"]},
            "option `domain-filters` is not a source option; did you mean `domain-filter`?",
        ),
        (
            {"publish-internal-services": "maybe"},
            "option `publish-internal-services`: `maybe` is not true or false",
        ),
        ({"min-ttl": "ten"}, "option `min-ttl`: `ten` is not a duration like 60s or 1m"),
        ({"min-ttl": "-1m"}, "option `min-ttl`: `-1m` is negative"),
        (
            {"service-type-filter": "loadbalancer"},
            "`loadbalancer` is not a Service type; did you mean LoadBalancer?",
        ),
        ({"service-type-filter": "Headless"}, "`Headless` is not a Service type (ClusterIP, NodePort"),
        (
            {"annotation-filter": "a in b"},
            "option `annotation-filter`: `a in` must be followed by `(values)`",
        ),
        ({"label-filter": "a>1"}, "option `label-filter`: the `>` operator is not supported"),
        # ExternalDNS v0.21 exits with "--annotation-filter does not specify a valid label selector" on these
        # (metav1.ParseToLabelSelector: no NotEquals; the k8s lexer wants commas between set values)
        (
            {"annotation-filter": "app,tier!=x"},
            "option `annotation-filter`: `tier!=…`: this filter has no `!=`",
        ),
        ({"annotation-filter": "app in (a b)"}, "values are separated by commas, found `b`"),
        ({"label-filter": "app in (a b)"}, "option `label-filter`: `app in (...)`: values are separated"),
        ({"fqdn-template": "{{.Name"}, "option `fqdn-template`: unclosed action"),
        ({"fqdn-template": "{{ if .Name }}x{{ end }}"}, "option `fqdn-template`: `if` is not supported"),
        ({"fqdn-template": "{{ upper .Name }}"}, 'option `fqdn-template`: function "upper" not defined'),
        ({"domain-filter": ["exa mple.com"]}, "option `domain-filter`: `exa mple.com` is not a domain"),
        ({"ingress-class": 5}, "option `ingress-class`: expected a list of strings"),
        ({"namespace": 3}, "option `namespace`: expected a string"),
    ],
)
def test_bad_options_are_refused_naming_the_option(data: dict[str, Any], message: str) -> None:
    """Each refusal names the option; a filter ExternalDNS refuses is refused (never accepted silently)."""
    with pytest.raises(ValueError) as exc:
        SourceOptions.from_mapping(data)
    assert message in str(exc.value)


def test_every_bad_option_is_reported_each_with_its_reason() -> None:
    with pytest.raises(SourceOptionsError) as exc:
        SourceOptions.from_mapping(
            {
                "--domian-filter": "example.com",
                "annotation-filter": "a in b",
                "domain-filter": ["exa mple.com", "ok.example.com", "a..b.example.com"],
                "min-ttl": "ten",
                "namespace": "shop",
                "service-type-filter": "loadbalancer",
            }
        )
    problems = exc.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "option `--domian-filter` is not a source option; did you mean `domain-filter`?",
        "option `min-ttl`",
        "option `annotation-filter`",
        "option `domain-filter`",
        "option `domain-filter`",
        "option `service-type-filter`",
    ]
    assert "`exa mple.com` is not a domain" in problems[3] and "`a..b.example.com`" in problems[4]
    assert "did you mean LoadBalancer?" in problems[5]
    assert str(exc.value) == "; ".join(problems)


@pytest.mark.parametrize(
    ("filters", "name", "allowed"),
    [
        (["example.com"], "example.com", True),
        (["example.com"], "a.b.example.com", True),
        (["example.com"], "badexample.com", False),
        (["example.com"], "example.com.evil.org", False),
        ([".example.com"], "example.com", False),  # a leading dot matches subdomains only
        ([".example.com"], "www.example.com", True),
        (["example.com", "example.org"], "x.example.org", True),
        ([], "anything.net", True),
    ],
)
def test_domain_filter_matches_like_externaldns(filters: list[str], name: str, allowed: bool) -> None:
    assert SourceOptions.from_mapping({"domain-filter": filters}).domain_allowed(name) is allowed


def test_exclude_domains_wins_over_domain_filter() -> None:
    opts = SourceOptions.from_mapping(
        {"domain-filter": "example.com", "exclude-domains": "internal.example.com"}
    )
    assert opts.domain_allowed("web.example.com") and not opts.domain_allowed("db.internal.example.com")


# ------------------------------------------------------------------------------------------- selectors

LABELS = {"app": "web", "tier": "front", "kubernetes.io/ingress.class": "nginx", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("missing!=x", True),  # != holds when the key is absent
        ("tier in (front, back)", True),
        ("tier notin (front)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=back", False),
        ("app=web, !legacy , tier", True),
        ("kubernetes.io/ingress.class=nginx", True),
        ("empty=", True),
    ],
)
def test_selector_matches_like_kubernetes(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        ("app=", None),
        ("=web", "expected a key"),
        ("app in ()", "needs at least one value"),
        ("app in (a", "is not closed"),
        ("app=web,", "ends with a comma"),
        ("app web", "unexpected `web`"),
        ("-app=web", "is not a label key"),
        ("app=-web", "is not a label value"),
        ("Bad_Prefix/app=x", "prefix before `/`"),
        ("app<3", "not supported"),
        ("!", "must be followed by a key"),
    ],
)
def test_selector_parse_errors(selector: str, error: str | None) -> None:
    if error is None:
        parse_selector(selector)
        return
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_selector(selector)


def test_selector_prints_back() -> None:
    assert str(parse_selector("a=b, c in (d,e), !f, g, h!=i")) == "a=b,c in (d,e),!f,g,h!=i"
    assert selector_from_map({"app": "web"}).matches({"app": "web", "x": "y"})
    assert selector_from_map({}).matches({})


# ------------------------------------------------------------------------------------------- fqdn-template

OBJ = {
    "kind": "Service",
    "metadata": {
        "name": "Web",
        "namespace": "shop",
        "labels": {"team": "pay", "app.kubernetes.io/name": "web"},
        "annotations": {"dns/zone": "example.com"},
    },
    "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.1", "ipFamilies": ["IPv4"]},
}


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{.Name}}.example.com", "Web.example.com"),
        ("{{ .Name }}.{{ .Namespace }}.example.com", "Web.shop.example.com"),
        ('{{index .Labels "app.kubernetes.io/name"}}.example.com', "web.example.com"),
        ('{{index .Annotations "dns/zone"}}', "example.com"),
        ('{{index .Labels "absent"}}x', "x"),  # index of a missing key is the zero value, as in Go
        ("{{.Labels.team}}.example.com", "pay.example.com"),
        ("{{.Name | toLower}}.{{.Kind | toLower}}.example.com", "web.service.example.com"),
        ('{{toLower .Name}}-{{trimPrefix "sh" .Namespace}}', "web-op"),
        ('{{ replace "." "-" .Spec.ClusterIP }}', "10-96-0-1"),
        ('{{ trimSuffix "LoadBalancer" .Spec.Type }}x', "x"),
        ("{{/* a comment */}}{{.Name}}", "Web"),
        ("a  {{- .Name -}}  b", "aWebb"),
        ('{{ (index .Labels "team") | toLower }}', "pay"),
        ("{{`raw`}}", "raw"),
        ('{{ "q\\"t" }}', 'q"t'),
        ("{{.Spec.ExternalName}}none", "none"),  # an omitted struct field is Go's zero value
    ],
)
def test_template_renders_like_go(template: str, out: str) -> None:
    assert FqdnTemplate.parse(template).render(OBJ) == out


def test_template_output_is_split_on_commas_like_exectemplate() -> None:
    t = FqdnTemplate.parse("{{.Name}}.a.example.com., ,{{.Namespace}}.b.example.com")
    assert t.hostnames(OBJ) == ["Web.a.example.com", "shop.b.example.com"]


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{.Labels.owner}}", "label `owner` is not set"),
        ("{{.Annotations.owner}}", "annotation `owner` is not set"),
        ("{{.Labels}}", "cannot be printed"),
        ("{{.Foo}}", "can't evaluate field Foo"),
        ('{{index .Name "x"}}', "not a map"),
    ],
)
def test_template_evaluation_errors(template: str, error: str) -> None:
    with pytest.raises(TemplateError, match=error):
        FqdnTemplate.parse(template).render(OBJ)


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{}}", "missing value"),
        ("{{ .Name .Namespace }}", "cannot be called with arguments"),
        ("{{ range .Labels }}x{{ end }}", "`range` is not supported"),
        ("{{ printf }}", 'function "printf" not defined'),
        ("{{ (.Name }}", "unclosed `(`"),
        ('{{ "a\\q" }}', "unsupported escape"),
        ("{{ .Name | .Namespace }}", None),
    ],
)
def test_template_parse_errors(template: str, error: str | None) -> None:
    if error is None:  # parses; fails on evaluation (Go also refuses a non-function after a pipe)
        with pytest.raises(TemplateError, match="only a function can follow"):
            FqdnTemplate.parse(template).render(OBJ)
        return
    with pytest.raises(TemplateError, match=error.replace("(", r"\(")):
        FqdnTemplate.parse(template)


def test_not_equals_is_a_label_filter_operator_but_not_an_annotation_filter_one() -> None:
    # ExternalDNS reads --label-filter with labels.Parse (has !=), --annotation-filter with
    # metav1.ParseToLabelSelector (has not): the real binary refuses the second at start-up.
    assert SourceOptions.from_mapping({"label-filter": "dns!=off"}).label_filter == "dns!=off"
    with pytest.raises(ValueError, match="annotation-filter"):
        SourceOptions.from_mapping({"annotation-filter": "dns!=off"})
    ok = SourceOptions.from_mapping({"annotation-filter": "dns notin (off), app in (a, b)"})
    assert ok.annotation_selector.matches({"app": "a"}) and not ok.annotation_selector.matches({"dns": "off"})
