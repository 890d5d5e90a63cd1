"""Real Kubernetes API servers (kube-apiserver + etcd from the official Go modules) for tests and the demo.

`python -m tools.kube_sandbox up --clusters 2` starts clusters from the command line; `Sandbox` does it from
Python. See sandbox.py for the process model and objects.py for the helpers that stand in for controllers.
"""

from tools.kube_sandbox.sandbox import (
    BUILD_SCRIPT,
    IDENTITIES,
    RESTRICTED_USER,
    Cluster,
    Identity,
    Sandbox,
    SandboxError,
    assert_no_processes,
    ensure_built,
)

__all__ = [
    "BUILD_SCRIPT",
    "IDENTITIES",
    "RESTRICTED_USER",
    "Cluster",
    "Identity",
    "Sandbox",
    "SandboxError",
    "assert_no_processes",
    "ensure_built",
]
