"""Security properties a user (or an attacker) notices: headers on every answer, the optional per-client API
limit, the admin's login limit, the token compared in constant time on every entry point and never
written to the log, DEBUG off unless asked for."""

import hmac
import subprocess
import sys

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from messaging.models import OutgoingMessage
from tests.conftest import AsgiClient, pdf_body
from tests.processes import ROOT, serve, service_env

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "same-origin",
           "cross-origin-opener-policy": "same-origin"}


def app():
    from whatsapp_service import asgi

    return asgi.application


def assert_security_headers(response, what):
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, f"{what}: {name} is {response.headers.get(name)!r}"


def test_every_kind_of_answer_carries_the_security_headers(configured, auth, settings):
    settings.MAX_BODY_BYTES = 1000
    client = AsgiClient(app())
    answers = {
        "send-pdf 202": client.post("/api/send-pdf", json=pdf_body(), headers=auth),
        "send-pdf 401": client.post("/api/send-pdf", json=pdf_body()),
        "send-pdf 400": client.post("/api/send-pdf", content=b"[", headers=auth),
        "sessions 200": client.get("/api/sessions", headers=auth),
        "sessions 401": client.get("/api/sessions"),
        "unknown api route 404": client.get("/api/nothing/here", headers=auth),
        "body too large 413": client.post("/api/sessions/tienda_lima/logout", content=b"x" * 2000, headers=auth),
        "healthz": client.get("/healthz"),
        "admin login page": client.get("/admin/login/"),
        "admin redirect": client.get("/admin/"),
        "static file": client.get("/static/admin/css/base.css"),
        "unknown page 404": client.get("/no/such/page"),
    }
    for what, response in answers.items():
        assert_security_headers(response, what)
    assert answers["unknown api route 404"].json()["error"] == "not_found"
    assert answers["body too large 413"].json()["error"] == "payload_too_large"
    assert "no-store" in answers["send-pdf 202"].headers["cache-control"]


def test_the_api_limit_per_client_is_off_by_default(configured, auth):
    responses = AsgiClient(app()).many([("GET", "/api/sessions", {"headers": auth})] * 60)
    assert {r.status_code for r in responses} == {200}


def test_the_api_limit_per_client_answers_429_once_used_up(configured, auth, settings):
    settings.API_RATE_LIMIT = "5/minute"
    client = AsgiClient(app())
    # The fast path and Django's routes draw on one share per client.
    first = [client.post("/api/send-pdf", json=pdf_body(), headers=auth) for _ in range(3)]
    first += [client.get("/api/sessions", headers=auth) for _ in range(2)]
    assert [r.status_code for r in first] == [202, 202, 202, 200, 200]
    for response in (client.post("/api/send-pdf", json=pdf_body(), headers=auth),
                     client.get("/api/sessions", headers=auth), client.get("/api/sessions")):
        assert response.status_code == 429
        assert response.json()["error"] == "rate_limited" and response.json()["message"]
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert_security_headers(response, "429")
    assert OutgoingMessage.objects.count() == 3  # nothing queued by a refused request
    assert client.get("/healthz").status_code == 200  # only /api/* is limited
    # Another client has its own share.
    import httpx as _httpx
    from asgiref.sync import async_to_sync

    async def other_client():
        transport = _httpx.ASGITransport(app=app(), client=("10.0.0.9", 4000))
        async with _httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get("/api/sessions", headers=auth)

    assert async_to_sync(other_client)().status_code == 200


@pytest.mark.parametrize("rate", ["5", "five/minute", "0/minute", "5/fortnight"])
def test_a_malformed_rate_limit_stops_the_service_at_start(configured, rate):
    result = subprocess.run([sys.executable, "manage.py", "serve", "--port", "1"], cwd=ROOT,
                            env=service_env(API_RATE_LIMIT=rate), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "API_RATE_LIMIT" in result.stderr


@pytest.fixture
def admin_user(configured):
    cache.clear()
    yield get_user_model().objects.create_superuser("admin", "admin@example.com", "clave-secreta-123")
    cache.clear()


def login(client: Client, password: str, address: str = "203.0.113.5"):
    return client.post("/admin/login/?next=/admin/", {"username": "admin", "password": password},
                       REMOTE_ADDR=address)


def test_admin_login_attempts_are_limited_per_address(admin_user, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 5
    client = Client()
    for _ in range(5):
        assert login(client, "wrong").status_code == 200  # the form again
    refused = login(client, "clave-secreta-123")  # even the right password, for now
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == settings.ADMIN_LOGIN_WINDOW_SECONDS
    assert "_auth_user_id" not in client.session
    # Another address is not held back by these failures.
    assert login(Client(), "clave-secreta-123", address="198.51.100.7").status_code == 302


def test_a_successful_admin_login_forgets_earlier_failures(admin_user, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    client = Client()
    assert [login(client, "wrong").status_code for _ in range(2)] == [200, 200]
    assert login(client, "clave-secreta-123").status_code == 302
    assert [login(Client(), "wrong").status_code for _ in range(3)] == [200, 200, 200]
    assert login(Client(), "wrong").status_code == 429


def test_the_token_is_compared_in_constant_time_on_every_entry_point(configured, token, monkeypatch):
    """hmac.compare_digest takes the same time wherever two strings first differ; every entry point
    must reach it, with the presented token and the configured one."""
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("core.auth.hmac.compare_digest", recording)
    from whatsapp_service import asgi

    wrong = "x" * len(token)
    for application, method, path in [(asgi.application, "POST", "/api/send-pdf"),
                                      (asgi.django_app, "POST", "/api/send-pdf"),
                                      (asgi.application, "GET", "/api/sessions")]:
        calls.clear()
        response = AsgiClient(application).request(method, path, headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 403
        assert calls == [(wrong.encode(), token.encode())], (method, path)

    from asgiref.sync import async_to_sync

    from tests.sessions_app.test_consumer import socket

    async def ws():
        communicator = socket(f"/ws/session/tienda_lima?token={wrong}")
        connected, _ = await communicator.connect(timeout=5)
        return connected

    calls.clear()
    assert async_to_sync(ws)() is False
    assert calls == [(wrong.encode(), token.encode())]


@pytest.mark.slow
def test_the_token_never_reaches_the_log_and_debug_is_off(configured, token, tmp_path):
    """Everything logged at DEBUG while clients use the right token and wrong ones, in headers and in
    the socket's query string, on accepted and refused requests."""
    import asyncio

    import websockets

    wrong = "wrong-token-that-is-long-enough-42"
    with serve(tmp_path, LOG_LEVEL="DEBUG") as server:
        for value in (token, wrong):
            headers = {"Authorization": f"Bearer {value}"}
            httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(), headers=headers, timeout=30)
            httpx.post(f"{server.url}/api/send-pdf", content=b"{", headers=headers, timeout=30)
            httpx.get(f"{server.url}/api/sessions", headers=headers, timeout=30)
            httpx.get(f"{server.url}/api/sessions/..%2Fx", headers=headers, timeout=30)
            httpx.get(f"{server.url}/api/schema/?token={value}", timeout=30)

            async def socket_with(value=value):
                try:
                    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/session/tienda_lima?token={value}",
                                                  open_timeout=10) as ws:
                        await asyncio.wait_for(ws.recv(), 10)
                except websockets.InvalidStatus:
                    pass

            asyncio.run(socket_with())
        page = httpx.get(f"{server.url}/no/such/page", timeout=30)
        assert page.status_code == 404
        assert "URLconf" not in page.text and "Traceback" not in page.text  # Django's DEBUG page
    log = server.output()
    assert " DEBUG " in log and " INFO " in log  # the log did record the run, in detail
    assert token not in log
    assert wrong not in log


def test_debug_is_off_unless_asked_for():
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    env = service_env()
    env.pop("DEBUG", None)
    env["DJANGO_SETTINGS_MODULE"] = "whatsapp_service.settings"
    off = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    on = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "DEBUG": "true"}, capture_output=True,
                        text=True, timeout=60)
    assert off.stdout.strip() == "False", off.stderr
    assert on.stdout.strip() == "True", on.stderr
