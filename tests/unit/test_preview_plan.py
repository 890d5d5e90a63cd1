"""`manage.py preview_plan` in a subprocess, with no DATABASE_URL or REDIS_URL: no services needed.

The inputs are in tests/data/plan/: the zone as `aws route53 list-resource-record-sets` prints it, one
cluster's endpoints as `preview_endpoints --output json` prints them, another's as a DNSEndpoint object
(YAML).
The command's data directory is a fresh temporary one; no database file may appear in it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from records.aggregate import endpoints_from_document
from records.plan import ZoneConfig, compute_plan
from records.recordset import load_route53_records

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "plan"
RECORDS = str(DATA / "records.json")
DC1 = "rke2-dc1=" + str(DATA / "endpoints-dc1.json")
EDGE = "k3s-edge=" + str(DATA / "endpoints-edge.yaml")
SHOP_TXT = '"heritage=external-dns,external-dns/owner=portal,external-dns/resource=service/shop/web"'
BASE = ("--desired", DC1, "--desired", EDGE, "--current", RECORDS, "--owner-id", "portal")


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # No DATABASE_URL and no PostgreSQL of make up's in this data dir: a command that opened a database would
    # fail, so the exit codes asserted below also say it needs none.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["DNSPORTAL_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.run(
        [sys.executable, "manage.py", "preview_plan", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc


def test_table_shows_the_plan_in_apply_order_with_conflicts_and_approval(tmp_path: Path) -> None:
    proc = run(tmp_path, *BASE)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Plan for zone example.com. (owner id portal, policy sync, 2 records owned)")
    assert "NEEDS APPROVAL:\n  - publishes private address 10.0.0.7 at api.example.com. A" in out
    order = [line.split(" ", 1)[1] for line in out.splitlines() if line[:1].isdigit()]
    assert order == [
        "delete old.example.com. A",
        "update www.example.com. A",
        "create api.example.com. A  [needs approval]",
        "create shop.example.com. A [rke2-dc1]",
    ]
    assert "why: no cluster publishes it any more (last written for service/shop/old)" in out
    assert "why: new Service rke2-dc1/api/gateway" in out
    assert "192.0.2.20 published by Service k3s-edge/default/nginx" in out
    assert "DELETE _dnsportal-a.old.example.com. TXT" in out
    assert "*.example.com. [not-owned]" in out
    assert "existing *.example.com. CNAME lb.example.net (unowned)" in out


def test_json_is_the_plan_the_engine_computes(tmp_path: Path) -> None:
    proc = run(tmp_path, *BASE, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    # the same plan, computed in-process from the same files
    desired = endpoints_from_document(
        json.loads((DATA / "endpoints-dc1.json").read_text()), cluster="rke2-dc1"
    )
    desired += endpoints_from_document(
        yaml.safe_load((DATA / "endpoints-edge.yaml").read_text()), cluster="k3s-edge"
    )
    current = load_route53_records(json.loads(Path(RECORDS).read_text()))
    expected = compute_plan(desired, current, ZoneConfig(zone="example.com.", owner_id="portal")).to_dict()
    assert got == expected
    assert [g["kind"] for g in got["groups"]] == ["delete", "update", "create", "create"]
    assert got["needs_approval"] is True
    assert [a["Action"] for a in got["apply_order"]] == [
        "DELETE",
        "DELETE",
        "UPSERT",
        "CREATE",
        "CREATE",
        "CREATE",
        "CREATE",
    ]
    shop = got["groups"][3]["changes"]
    assert shop[1]["ResourceRecordSet"] == {
        "Name": "_dnsportal-a.shop.example.com.",
        "Type": "TXT",
        "SetIdentifier": "rke2-dc1",
        "Weight": 20,
        "TTL": 300,
        "ResourceRecords": [{"Value": SHOP_TXT}],
    }


def test_bad_input_is_one_clear_line_and_exit_2_in_a_subprocess(tmp_path: Path) -> None:
    proc = run(tmp_path, "--desired", str(tmp_path / "missing.json"), "--current", RECORDS, "--owner-id", "p")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("missing.json: cannot read the file (No such file or directory)")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    proc = run(tmp_path, *BASE, "--txt-prefix", "a.", "--txt-suffix=-b")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


# The remaining cases run the command in-process (same code path, without a Django start-up each).


def call(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("preview_plan", *args, stdout=out)
    return out.getvalue()


def test_bare_list_from_stdin_and_the_zone_option(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = json.loads(Path(RECORDS).read_text())["ResourceRecordSets"]
    no_soa = json.dumps([r for r in bare if r["Type"] != "SOA"])
    with pytest.raises(CommandError, match=r"no single SOA record.*--zone") as err:
        call(
            "--desired", DC1, "--current", "-", "--owner-id", "portal", stdin=no_soa, monkeypatch=monkeypatch
        )
    assert err.value.returncode == 2
    out = call(
        "--desired",
        DC1,
        "--current",
        "-",
        "--owner-id",
        "portal",
        "--zone",
        "example.com",
        stdin=no_soa,
        monkeypatch=monkeypatch,
    )
    assert out.startswith("Plan for zone example.com.")


def test_subzone_names_are_left_out() -> None:
    got = json.loads(call(*BASE, "--subzone", "shop.example.com", "--output", "json"))
    assert all(g["name"] != "shop.example.com." for g in got["groups"])
    assert any("zone below it" in n for n in got["notes"])


def test_external_dns_naming_and_a_private_zone() -> None:
    # with ExternalDNS's default naming the zone's TXTs are not ownership records of these records
    got = json.loads(call(*BASE, "--txt-prefix", "", "--private-zone", "--output", "json"))
    assert got["summary"]["owned"] == 0
    assert got["needs_approval"] is False  # a private zone may hold private addresses
    assert {c["name"] for c in got["conflicts"] if c["kind"] == "not-owned"} >= {"www.example.com."}


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"d.json": "{not json"}, ("--desired", "{d.json}", "--current", RECORDS), "d.json: not JSON"),
        (
            {"d.json": '[{"dnsName": "a.example.com", "targets": ["1.1.1.1"]}]'},
            ("--desired", "{d.json}", "--current", RECORDS),
            "d.json: endpoint #1: endpoint a.example.com: `recordType` is missing",
        ),
        (
            {"r.json": '{"ResourceRecordSets": [{"Type": "A"}]}'},
            ("--desired", DC1, "--current", "{r.json}"),
            "r.json: ResourceRecordSets[0]: record set: `Name` is missing",
        ),
        (
            {"r.json": '{"Zone": []}'},
            ("--desired", DC1, "--current", "{r.json}"),
            "expected a list of record sets or an object with `ResourceRecordSets`",
        ),
        (
            {"d.yaml": "kind: Service\nspec: {}\n"},
            ("--desired", "{d.yaml}", "--current", RECORDS),
            "kind 'Service' is not DNSEndpoint",
        ),
        ({"e.json": ""}, ("--desired", "{e.json}", "--current", RECORDS), "e.json: the file is empty"),
        ({}, ("--desired", DC1, "--current", RECORDS, "--owner-id", "a,b"), "must not contain"),
    ],
)
def test_bad_input_names_the_file_and_what_is_wrong(
    tmp_path: Path, files: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    argv = [str(tmp_path / a[1:-1]) if a.startswith("{") else a for a in args]
    if "--owner-id" not in argv:
        argv += ["--owner-id", "portal"]
    with pytest.raises(CommandError) as err:
        call(*argv)
    assert err.value.returncode == 2
    assert message in str(err.value)


def test_policy_and_adopt() -> None:
    got = json.loads(call(*BASE, "--policy", "upsert-only", "--adopt", "*.example.com", "--output", "json"))
    assert [s["kind"] for s in got["skipped"]] == ["delete"]
    adopt = [g for g in got["groups"] if g["kind"] == "adopt"]
    # the unowned wildcard CNAME is taken over and deleted to make way for the wildcard A record
    assert [(g["name"], g["type"]) for g in adopt] == [("*.example.com.", "CNAME")]
    assert [c["Action"] for c in adopt[0]["changes"]] == ["DELETE"]
    assert "make way for *.example.com. A" in adopt[0]["reasons"][0]
    assert any(g["kind"] == "create" and g["name"] == "*.example.com." for g in got["groups"])
    assert any("takes over 1 record" in r for r in got["approval_reasons"])
