"""A page after PostgreSQL dropped the web's kept connection (a restart, a failover: bench/soak.py saw 500s):
the connection is checked before the request uses it and replaced, so the page answers."""

from __future__ import annotations

import pytest
import requests
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_page_after_postgresql_dropped_the_kept_connection_answers(live_server, client, carol):
    client.force_login(carol)
    browser = requests.Session()
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    assert browser.get(live_server.url + "/", timeout=30).status_code == 200
    with connection.cursor() as cursor:  # every other connection to the database: the server's kept one
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    assert browser.get(live_server.url + "/", timeout=30).status_code == 200
