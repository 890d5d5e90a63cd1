import pytest

pytest_plugins = [
    "tests.fixtures.api",
    "tests.fixtures.browser",
    "tests.fixtures.dns",
    "tests.fixtures.drill",
    "tests.fixtures.faultproxy",
    "tests.fixtures.jobs",
    "tests.fixtures.kube",
    "tests.fixtures.oidc",
    "tests.fixtures.people",
    "tests.fixtures.shift",
    "tests.fixtures.traffic",
    "tests.fixtures.webhook",
]

_TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder is the tier: `pytest -m unit` runs the pure core alone.
    for item in items:
        for tier in _TIERS:
            if f"/tests/{tier}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))
