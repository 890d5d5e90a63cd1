"""Install the official Gateway API and DNSEndpoint CRDs (from their Go modules: crds.sh) into a cluster."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

CRDS_SH = Path(__file__).resolve().parent / "crds.sh"


def crd_files() -> list[Path]:
    """The CRD files crds.sh names (it fetches their modules through the Go module proxy when missing)."""
    proc = subprocess.run([str(CRDS_SH)], capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{CRDS_SH} failed: {proc.stderr.strip()}")
    return [Path(line) for line in proc.stdout.split()]


def install_crds(api: ApiClient, timeout: float = 60.0) -> list[str]:
    """Create every CRD that is not there yet (admin client) and wait until each is established."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in crd_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            names.append(doc["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} was not established within {timeout:.0f} s")
            time.sleep(0.1)
    return names
