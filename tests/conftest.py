import base64
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.whatsapp_proxy import WhatsAppProxy

REQUIRE_SERVICES = bool(os.environ.get("REQUIRE_SERVICES"))
EXAMPLE_SESSIONS = [
    {"sessionId": "tienda_lima", "description": "Sistema de Ventas de la Sede Lima"},
    {"sessionId": "tienda_cusco", "description": "Sistema de Ventas de la Sede Cusco"},
]


# WhatsApp is unreachable in every test, on a machine with internet too: each process the suite starts
# (session processes, workers, probes) inherits HTTPS_PROXY, and whatsmeow dials through this proxy,
# which lets nothing through. Set at configure time, before any process (the forkserver) is started.
OFFLINE_PROXY: WhatsAppProxy | None = None


def pytest_configure(config) -> None:
    global OFFLINE_PROXY
    OFFLINE_PROXY = WhatsAppProxy()
    for name in ("https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        os.environ.pop(name, None)
    os.environ["HTTPS_PROXY"] = OFFLINE_PROXY.url
    # The suite's own clients (websockets reads HTTPS_PROXY for ws:// too) reach the service directly;
    # Go never proxies loopback, so whatsmeow is unaffected.
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def need(condition: bool, what: str) -> None:
    """Skip a test whose service is missing, except where CI demands every service."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (REQUIRE_SERVICES is set) but not available")
    pytest.skip(f"{what} not available")


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def make_pdf(size: int = 2000, seed: int = 1) -> bytes:
    body = bytes((i * 31 + seed) % 256 for i in range(max(0, size - 9)))
    return (b"%PDF-1.4\n" + body)[:size]


def pdf_body(session_id="tienda_lima", to="51987654321", pdf: bytes | None = None, **extra) -> dict:
    body = {"sessionId": session_id, "to": to, "pdfBase64": base64.b64encode(pdf or make_pdf()).decode()}
    body.update(extra)
    return body


@pytest.fixture
def token() -> str:
    return django_settings.API_STATIC_TOKEN


@pytest.fixture
def auth(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def service_files(settings, tmp_path) -> Path:
    """A sessions.config.json and sessions/ of the test's own."""
    config = tmp_path / "sessions.config.json"
    config.write_text(json.dumps(EXAMPLE_SESSIONS))
    settings.SESSIONS_CONFIG = config
    settings.SESSIONS_DIR = tmp_path / "sessions"
    return tmp_path


@pytest.fixture
def configured(service_files, transactional_db):
    """The example sessions loaded from their config file into the database."""
    from sessions_app.config_file import load_and_mirror

    return load_and_mirror()


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium")
    need(path is not None, "Debian's chromium")
    return path


class AsgiClient:
    """A synchronous client for an ASGI app, so tests can use the ORM between requests."""

    def __init__(self, app):
        self.app = app

    async def _request_many(self, requests):
        import asyncio

        import httpx

        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await asyncio.gather(*[c.request(m, p, **kw) for m, p, kw in requests])

    def many(self, requests):
        from asgiref.sync import async_to_sync

        return async_to_sync(self._request_many)(requests)

    def request(self, method, path, **kw):
        return self.many([(method, path, kw)])[0]

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)


@pytest.fixture(scope="session", autouse=True)
def _queue_writer_closes_before_test_databases_go(django_db_setup, django_db_blocker):
    """The writer thread holds its own connection; close it before the test database is dropped."""
    yield
    from messaging.queue_writer import shutdown_writer

    shutdown_writer()
