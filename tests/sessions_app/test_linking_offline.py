"""Linking a number on a machine that cannot reach WhatsApp, with the real backend: `manage.py serve` and
its worker run neonize, whose Go client dials web.whatsapp.com through a refusing proxy of this test's own
(HTTPS_PROXY, inherited by every session process), so each connect fails at once and the proxy counts the
attempts. The restart backoff is long (120 s): any attempt soon after the first is the socket's doing."""

import asyncio
import json
import re
import time

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from sessions_app.config_file import load_and_mirror
from sessions_app.models import SessionStatus, WhatsAppSession
from tests.processes import serve, wait_for
from tests.sessions_app.test_consumer import close_sync_thread_connections  # noqa: F401 (fixture)
from tests.whatsapp_proxy import WhatsAppProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 60  # generous: only for waiting, never a performance assertion
WHATSAPP = "web.whatsapp.com:443"
OFFLINE = {
    "WHATSAPP_BACKEND": "neonize",
    "CREDENTIALS_STORE": "files",
    "SESSION_RESTART_BACKOFF_SECONDS": "120",  # the first retry waits 60-120 s on its own
    "SESSION_RESTART_BACKOFF_MAX_SECONDS": "300",
    "SESSION_POLL_SECONDS": "0.1",
}


@pytest.fixture
def proxy():
    with WhatsAppProxy() as refusing:
        yield refusing


@pytest.fixture
def one_session(service_files, transactional_db):
    # One session, so every CONNECT the proxy sees is tienda_lima's.
    from django.conf import settings

    settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima", "description": "Sede Lima"}]))
    load_and_mirror()


def failed_with_a_plan() -> WhatsAppSession | None:
    row = WhatsAppSession.objects.get(pk="tienda_lima")
    ok = row.status == SessionStatus.DISCONNECTED and row.next_attempt_at is not None and row.last_error
    return row if ok else None


async def next_event(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def test_opening_the_socket_tells_why_and_tries_again_now_without_a_connect_storm(one_session, proxy, token,
                                                                                       tmp_path):
    with serve(tmp_path, HTTPS_PROXY=proxy.url, LINK_RETRY_MIN_SECONDS="60", **OFFLINE) as server:
        await asyncio.to_thread(proxy.wait_for, WHATSAPP, 1, WAIT)
        row = await sync_to_async(wait_for)(failed_with_a_plan, WAIT, what="the first failure and its planned retry")
        assert row.status_reason == "connect_failure" and "unexpected EOF" in row.last_error
        url = f"ws://127.0.0.1:{server.port}/ws/session/tienda_lima?token={token}"

        async with connect(url, open_timeout=WAIT) as ws:
            opened = time.monotonic()
            assert await next_event(ws) == {"event": "status", "data": "initializing"}
            news = await next_event(ws)
            assert news["data"] == "disconnected" and news["reason"] == "connect_failure"
            assert news["error"].startswith("La conexión con WhatsApp se cortó antes de establecerse")
            assert news["error"].endswith('Get "https://web.whatsapp.com/ws/chat": unexpected EOF')
            assert news["retryInSeconds"] == 0

            # The new attempt: the Go client dials out again long before the backoff's 60 s at least.
            await asyncio.to_thread(proxy.wait_for, WHATSAPP, 2, WAIT)
            assert time.monotonic() - opened < 30
            # The watcher hears it live: trying, failed again, and when the worker tries next by itself.
            assert await next_event(ws) == {"event": "status", "data": "initializing"}
            failed = await next_event(ws)
            assert (failed["data"], failed["reason"]) == ("disconnected", "connect_failure")
            assert "web.whatsapp.com" in failed["error"] and failed["retryInSeconds"] >= 100  # attempt 2: 120-240 s

            # A storm of sockets within LINK_RETRY_MIN_SECONDS: told the truth, no more connects.
            requested = (await sync_to_async(WhatsAppSession.objects.get)(pk="tienda_lima")).start_requested_at
            storm = await asyncio.gather(*(connect(url, open_timeout=WAIT) for _ in range(10)))
            try:
                for other in storm:
                    assert await next_event(other) == {"event": "status", "data": "initializing"}
                    assert (await next_event(other))["retryInSeconds"] >= 100
            finally:
                await asyncio.gather(*(other.close() for other in storm))
            await asyncio.sleep(3)  # 30 polls of the worker: time enough to start anything asked for
        row = await sync_to_async(WhatsAppSession.objects.get)(pk="tienda_lima")
        assert row.start_requested_at == requested
        assert proxy.targets.count(WHATSAPP) == 2, proxy.targets
        assert len(re.findall(r"session tienda_lima: process \d+ started", server.output())) == 2, server.output()
