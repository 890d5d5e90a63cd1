"""The demo's Route53 stand-in keeps its records between `make up` runs.

moto holds its zones in memory only. On stop, `make up` saves every hosted zone's record sets to the data
directory; on the next start it creates the zones again and puts the record sets back, so what the portal
applied before is still there (the zone gets a new id, which `register_demo_zone` gives the zone row). Only
the stand-in's own memory: nothing here goes through the portal or reaches AWS.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3

STATE_FILE = "zones.json"


def _client(url: str):
    # moto accepts any key; these only ever reach the local stand-in.
    return boto3.client(
        "route53",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo-secret",  # noqa: S106
    )


def save(url: str, path: Path) -> int:
    """Write every zone's record sets (but the apex SOA and NS, which a new zone gets anew) to `path`."""
    r53 = _client(url)
    zones = []
    for zone in r53.list_hosted_zones()["HostedZones"]:
        rrsets = []
        for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone["Id"]):
            rrsets += [
                r
                for r in page["ResourceRecordSets"]
                if not (r["Type"] in {"SOA", "NS"} and r["Name"] == zone["Name"])
            ]
        zones.append(
            {"name": zone["Name"], "private": zone["Config"].get("PrivateZone", False), "rrsets": rrsets}
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"zones": zones}, indent=1))
    os.replace(tmp, path)
    return sum(len(z["rrsets"]) for z in zones)


def restore(url: str, path: Path) -> int:
    """Create the saved zones that the stand-in lacks and put their record sets back; the count restored."""
    try:
        saved = json.loads(path.read_text())["zones"]
    except (OSError, ValueError, KeyError):
        return 0
    r53 = _client(url)
    have = {z["Name"] for z in r53.list_hosted_zones()["HostedZones"]}
    restored = 0
    for zone in saved:
        if zone["name"] in have or not zone["rrsets"]:
            continue
        zone_id = r53.create_hosted_zone(Name=zone["name"], CallerReference=f"dnsportal-demo-{zone['name']}")[
            "HostedZone"
        ]["Id"]
        rrsets = zone["rrsets"]
        for start in range(0, len(rrsets), 100):
            changes = [{"Action": "UPSERT", "ResourceRecordSet": r} for r in rrsets[start : start + 100]]
            r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
        restored += len(rrsets)
    return restored
