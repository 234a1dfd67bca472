"""Linking a number through the real service process, as `make run` starts it (`manage.py serve` with
its embedded worker, simulator backend), with a real WebSocket client."""

import asyncio
import json
import signal
import subprocess
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from sessions_app.config_file import read_config
from sessions_app.models import SessionStatus, WhatsAppSession
from tests.conftest import need, reachable
from tests.processes import runworker, serve
from tests.sessions_app.test_consumer import close_sync_thread_connections  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 30  # generous: only for waiting, never a performance assertion
PHONE = "51900000001"


@pytest.fixture
def server(configured, tmp_path):
    with serve(tmp_path, SESSION_POLL_SECONDS="0.1") as process:
        yield process


def ws_url(server, session_id: str, token: str | None = None) -> str:
    query = f"?token={token}" if token else ""
    return f"ws://127.0.0.1:{server.port}/ws/session/{session_id}{query}"


async def next_event(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def scan(server, token: str, session_id: str) -> None:
    async with httpx.AsyncClient(timeout=WAIT) as client:
        response = await client.post(
            f"{server.url}/api/simulator/sessions/{session_id}/scan",
            json={"phone": PHONE},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code in (200, 202), response.text


async def assert_closed_by_server(ws) -> None:
    with pytest.raises(ConnectionClosedOK):
        await asyncio.wait_for(ws.recv(), WAIT)
    assert ws.close_code == 1000


async def test_a_new_number_links_by_qr_and_the_server_closes(server, token, settings):
    first = await connect(ws_url(server, "tienda_nueva", token), open_timeout=WAIT)
    second = await connect(
        ws_url(server, "tienda_nueva"), additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=WAIT
    )
    try:
        for ws in (first, second):
            assert await next_event(ws) == {"event": "status", "data": "initializing"}
        for ws in (first, second):
            qr = await next_event(ws)
            assert qr["event"] == "qr" and qr["data"]
        await first.close()  # one watcher leaves; the linking goes on for the other

        await scan(server, token, "tienda_nueva")
        events = [await next_event(second)]
        while events[-1] != {"event": "status", "data": "connected"}:
            assert events[-1]["event"] == "qr", events  # a QR rotating before the scan lands is fine
            events.append(await next_event(second))
        await assert_closed_by_server(second)
    finally:
        await first.close()
        await second.close()

    assert [e.session_id for e in read_config(settings.SESSIONS_CONFIG)][-1] == "tienda_nueva"
    row = await sync_to_async(WhatsAppSession.objects.get)(pk="tienda_nueva")
    assert (row.status, row.phone, row.qr) == (SessionStatus.CONNECTED, PHONE, "")

    async with connect(ws_url(server, "tienda_nueva", token), open_timeout=WAIT) as again:
        assert await next_event(again) == {"event": "status", "data": "already_connected"}
        await assert_closed_by_server(again)


REFUSALS = [
    ("/ws/session/tienda_lima", {}, 401, "missing_token"),
    ("/ws/session/tienda_lima?token=wrong-token-0123456789", {}, 403, "invalid_token"),
    ("/ws/session/tienda_lima", {"Authorization": "Bearer wrong-token-0123456789"}, 403, "invalid_token"),
    ("/ws/session/tienda_nueva", {"Authorization": "Basic YWRtaW46YWRtaW4="}, 403, "invalid_token"),
    ("/ws/session/tienda.lima?token={token}", {}, 400, "invalid_session_id"),
    ("/ws/session/..%2F..%2Fetc?token={token}", {}, 400, "invalid_session_id"),
    ("/ws/otra?token={token}", {}, 404, "not_found"),
]


async def test_refusals_are_http_answers_with_the_error_code(server, token, settings):
    before = settings.SESSIONS_CONFIG.read_bytes()
    for path, headers, status, code in REFUSALS:
        url = f"ws://127.0.0.1:{server.port}{path.format(token=token)}"
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=headers, open_timeout=WAIT)
        response = refused.value.response
        assert (response.status_code, json.loads(response.body)["error"]) == (status, code), path
    assert settings.SESSIONS_CONFIG.read_bytes() == before
    assert not (settings.SESSIONS_DIR.parent / "etc").exists()
    assert not await sync_to_async(WhatsAppSession.objects.filter(pk="tienda_nueva").exists)()


@pytest.fixture
def quick_qr_server(configured, tmp_path):
    timings = {"SIMULATOR_QR_FIRST_SECONDS": "0.6", "SIMULATOR_QR_NEXT_SECONDS": "0.3", "SIMULATOR_QR_COUNT": "2"}
    with serve(tmp_path, SESSION_POLL_SECONDS="0.1", **timings) as process:
        yield process


async def test_an_unscanned_qr_times_out_and_opening_again_starts_a_new_link(quick_qr_server, token):
    url = ws_url(quick_qr_server, "tienda_nueva", token)
    async with connect(url, open_timeout=WAIT) as ws:
        assert await next_event(ws) == {"event": "status", "data": "initializing"}
        events = [await next_event(ws)]
        while events[-1]["event"] == "qr":
            events.append(await next_event(ws))
        assert len(events) == 3, events  # both codes, then the timeout
        assert events[-1] == {"event": "status", "data": "disconnected", "reason": "qr_timeout"}

    async with connect(url, open_timeout=WAIT) as retry:  # what the page's "Reintentar" does
        assert await next_event(retry) == {"event": "status", "data": "initializing"}
        event = await next_event(retry)
        while event.get("event") == "status" and event["data"] == "initializing":
            event = await next_event(retry)
        assert event["event"] == "qr" and event["data"]


@pytest.mark.redis
async def test_production_mode_web_and_worker_apart_share_events_through_redis(configured, token, tmp_path):
    """`serve --no-worker` answers the socket; `runworker` runs the session; Redis carries the events."""
    need(reachable("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    redis = {"REDIS_URL": "redis://127.0.0.1:6379/13", "SESSION_POLL_SECONDS": "0.1"}
    session_id = f"prod_{uuid.uuid4().hex[:12]}"  # its own group, whatever else uses this Redis
    with serve(tmp_path, "--no-worker", **redis) as web, runworker(tmp_path, **redis):
        async with connect(ws_url(web, session_id, token), open_timeout=WAIT) as ws:
            assert await next_event(ws) == {"event": "status", "data": "initializing"}
            event = await next_event(ws)
            while event == {"event": "status", "data": "initializing"}:
                event = await next_event(ws)
            assert event["event"] == "qr" and event["data"]
            await scan(web, token, session_id)
            while event != {"event": "status", "data": "connected"}:
                event = await next_event(ws)
            await assert_closed_by_server(ws)


@pytest.mark.redis
async def test_closed_sockets_leave_nothing_behind_and_the_web_process_stops_on_sigterm(configured, token, tmp_path):
    """Several watchers closing at once over Redis: each socket's receive is cancelled while the channel
    layer's shared connection is being replaced; none may survive that (the server would wait for it)."""
    need(reachable("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    with serve(tmp_path, "--no-worker", REDIS_URL="redis://127.0.0.1:6379/13") as web:
        url = ws_url(web, f"stop_{uuid.uuid4().hex[:12]}", token)
        sockets = [await connect(url, open_timeout=WAIT) for _ in range(6)]
        for ws in sockets:
            assert await next_event(ws) == {"event": "status", "data": "initializing"}
        for ws in sockets:
            await ws.close()
        await asyncio.sleep(0.5)
        web.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(web.proc.wait, WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within {WAIT} s of SIGTERM: a socket's task never ended")
