"""/healthz says the process is up; /readyz names the part that is down (a real Redis, stopped for real)."""

from __future__ import annotations

from tools.services import start_redis


def test_readyz_answers_503_naming_redis_when_redis_is_stopped(client, db, settings, tmp_path):
    own = start_redis(tmp_path / "redis")
    settings.REDIS_URL = own.url
    try:
        ok = client.get("/readyz")
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "failing": [], "checks": {"database": "ok", "redis": "ok"}}
        own.stop()
        assert not own.running()
        down = client.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["failing"] == ["redis"]
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("unreachable: ")
        # /healthz is about the process only: still fine.
        assert client.get("/healthz").status_code == 200
    finally:
        own.stop()


def test_responses_carry_a_request_id(client, db):
    given = client.get("/healthz", HTTP_X_REQUEST_ID="trace-1234abcd")
    assert given["X-Request-ID"] == "trace-1234abcd"
    made_up = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")
    assert len(made_up["X-Request-ID"]) == 32 and made_up["X-Request-ID"] != "bad id with spaces"


def test_health_endpoints_answer_any_host_over_plain_http(client, db, settings):
    # A load balancer probing by IP: host not allowed, no TLS, production redirects on.
    settings.ALLOWED_HOSTS = ["dns.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert (
        client.get("/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    )  # everything else is still guarded
