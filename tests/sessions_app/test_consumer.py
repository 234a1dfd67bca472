"""The linking socket /ws/session/<id> through the service's real ASGI application: every event and close
of the contract, with events injected into the session's channel layer group as the worker publishes them."""

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from sessions_app.config_file import read_config
from sessions_app.models import SessionCommand, SessionStatus, WhatsAppSession
from sessions_app.protocol import group_name
from tests.conftest import need, reachable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_sync_thread_connections():
    """The consumer's database work runs on asgiref's one sync thread, which outlives the test; with
    persistent connections (CONN_MAX_AGE) its connection would keep the test database busy at teardown."""
    yield
    await sync_to_async(connections.close_all)()


def app():
    from whatsapp_service import asgi

    return asgi.application


def socket(path: str, token: str | None = None, headers=()) -> WebsocketCommunicator:
    all_headers = [(b"host", b"testserver"), *headers]
    if token is not None:
        all_headers.append((b"authorization", f"Bearer {token}".encode()))
    return WebsocketCommunicator(app(), path, headers=all_headers)


async def publish(session_id: str, event: str, data: str, reason: str | None = None) -> None:
    message = {"type": "session.event", "event": event, "data": data}
    if reason:
        message["reason"] = reason
    await get_channel_layer().group_send(group_name(session_id), message)


async def open_socket(session_id: str, token: str, **kw) -> WebsocketCommunicator:
    ws = socket(f"/ws/session/{session_id}", token, **kw)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    return ws


async def assert_server_closed(ws: WebsocketCommunicator, code: int = 1000) -> None:
    message = await ws.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": code}


get_row = sync_to_async(lambda sid: WhatsAppSession.objects.get(session_id=sid))
update_row = sync_to_async(lambda sid, **kw: WhatsAppSession.objects.filter(session_id=sid).update(**kw))


async def test_opening_a_stopped_session_says_initializing_and_asks_the_worker_to_start_it(configured, token):
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    assert await ws.receive_nothing(timeout=0.2)
    row = await get_row("tienda_lima")
    assert row.start_requested_at is not None
    await ws.disconnect()


async def test_token_in_the_query_string_is_accepted(configured, token):
    ws = socket(f"/ws/session/tienda_lima?token={token}")
    assert (await ws.connect(timeout=5))[0]
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    await ws.disconnect()


async def test_a_new_session_is_added_to_the_config_file_and_the_database(configured, token, settings):
    ws = await open_socket("tienda_arequipa", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    ids = [e.session_id for e in read_config(settings.SESSIONS_CONFIG)]
    assert ids == ["tienda_lima", "tienda_cusco", "tienda_arequipa"]
    row = await get_row("tienda_arequipa")
    assert row.in_config and row.status == SessionStatus.STOPPED and row.start_requested_at is not None
    await ws.disconnect()


async def test_a_session_removed_from_the_config_comes_back_with_its_description(configured, token, settings):
    await update_row("tienda_cusco", in_config=False)
    settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima"}]))
    ws = await open_socket("tienda_cusco", token)
    await ws.receive_json_from(timeout=5)
    entries = read_config(settings.SESSIONS_CONFIG)
    assert [(e.session_id, e.description) for e in entries] == [
        ("tienda_lima", ""), ("tienda_cusco", "Sistema de Ventas de la Sede Cusco")
    ]
    assert (await get_row("tienda_cusco")).in_config
    await ws.disconnect()


async def test_the_pending_qr_is_sent_right_after_connecting(configured, token):
    await update_row("tienda_lima", status=SessionStatus.QR, qr="2@pendiente,abc,def")
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@pendiente,abc,def"}
    # A running session is not restarted because someone watches it.
    assert (await get_row("tienda_lima")).start_requested_at is None
    await ws.disconnect()


async def test_an_old_qr_of_a_session_no_longer_waiting_is_not_sent(configured, token):
    await update_row("tienda_lima", status=SessionStatus.INITIALIZING, qr="2@viejo")
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


async def test_an_already_connected_session_says_so_and_the_server_closes(configured, token):
    await update_row("tienda_lima", status=SessionStatus.CONNECTED, phone="51900000001")
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "already_connected"}
    await assert_server_closed(ws)
    assert (await get_row("tienda_lima")).start_requested_at is None


async def test_rotating_qrs_then_connected_then_the_server_closes(configured, token):
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    await publish("tienda_lima", "status", "initializing")  # the worker's own: not shown twice
    await publish("tienda_lima", "qr", "2@primero")
    await publish("tienda_lima", "qr", "2@segundo")
    assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@primero"}
    assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@segundo"}
    await publish("tienda_lima", "status", "connected")
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "connected"}
    await assert_server_closed(ws)


@pytest.mark.parametrize("reason", ["qr_timeout", "logged_out", "banned"])
async def test_disconnects_carry_their_reason_and_the_socket_stays_open(configured, token, reason):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    await publish("tienda_lima", "status", "disconnected", reason=reason)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "disconnected", "reason": reason}
    await publish("tienda_lima", "qr", "2@despues")
    assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@despues"}
    await ws.disconnect()


async def test_errors_are_error_events(configured, token):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    await publish("tienda_lima", "error", "No se pudo conectar: sin red")
    assert await ws.receive_json_from(timeout=5) == {"event": "error", "data": "No se pudo conectar: sin red"}
    await ws.disconnect()


async def test_malformed_group_messages_are_not_forwarded(configured, token):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    await get_channel_layer().group_send(group_name("tienda_lima"), {"type": "session.event", "event": "secret"})
    await publish("tienda_lima", "qr", "2@bueno")
    assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@bueno"}
    await ws.disconnect()


async def test_events_of_another_session_do_not_arrive(configured, token):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    await publish("tienda_cusco", "qr", "2@ajeno")
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


async def test_every_watcher_gets_the_same_events_and_one_leaving_stops_nothing(configured, token):
    first = await open_socket("tienda_lima", token)
    second = await open_socket("tienda_lima", token)
    for ws in (first, second):
        assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    requested = (await get_row("tienda_lima")).start_requested_at
    await publish("tienda_lima", "qr", "2@para-ambos")
    for ws in (first, second):
        assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@para-ambos"}

    await first.disconnect()
    await publish("tienda_lima", "qr", "2@siguiente")
    assert await second.receive_json_from(timeout=5) == {"event": "qr", "data": "2@siguiente"}
    assert await sync_to_async(SessionCommand.objects.count)() == 0  # no stop, logout or delete asked
    assert (await get_row("tienda_lima")).start_requested_at == requested
    await publish("tienda_lima", "status", "connected")
    assert await second.receive_json_from(timeout=5) == {"event": "status", "data": "connected"}
    await assert_server_closed(second)


async def test_events_queued_after_the_close_are_not_sent(configured, token):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    await publish("tienda_lima", "status", "connected")
    await publish("tienda_lima", "qr", "2@tarde")
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "connected"}
    await assert_server_closed(ws)
    assert await ws.receive_nothing(timeout=0.2)


async def test_client_messages_are_ignored(configured, token):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    await ws.send_to(text_data='{"event": "stop"}')
    await ws.send_to(text_data="esto no es JSON")
    await ws.send_to(bytes_data=b"\x00\x01")
    await publish("tienda_lima", "qr", "2@sigue")
    assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@sigue"}
    await ws.disconnect()


async def test_a_broken_config_file_is_an_error_event_and_is_left_alone(configured, token, settings):
    settings.SESSIONS_CONFIG.write_text('[{"sessionId": "tienda_lima"},')
    ws = await open_socket("tienda_nueva", token)
    event = await ws.receive_json_from(timeout=5)
    assert event["event"] == "error" and "configuración" in event["data"]
    await assert_server_closed(ws, 1011)
    assert settings.SESSIONS_CONFIG.read_text() == '[{"sessionId": "tienda_lima"},'
    assert not await sync_to_async(WhatsAppSession.objects.filter(session_id="tienda_nueva").exists)()


async def test_other_paths_are_refused(configured, token):
    ws = socket("/ws/otra/cosa", token)
    assert await ws.connect(timeout=5) == (False, 4404)


@pytest.mark.redis
async def test_events_reach_every_watcher_through_redis(configured, token, settings):
    """Production: the worker and the web processes share Redis as the channel layer."""
    need(reachable("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # As settings.py configures it: no socket timeout (see there why).
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:6379/14", "socket_timeout": None}],
                "prefix": f"test-{uuid.uuid4().hex}",
            },
        }
    }
    first = await open_socket("tienda_lima", token)
    second = await open_socket("tienda_lima", token)
    for ws in (first, second):
        assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    await publish("tienda_lima", "qr", "2@por-redis")
    await publish("tienda_lima", "status", "connected")
    for ws in (first, second):
        assert await ws.receive_json_from(timeout=5) == {"event": "qr", "data": "2@por-redis"}
        assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "connected"}
        await assert_server_closed(ws)
    await get_channel_layer().flush()


@pytest.mark.parametrize(
    "status, last_error, next_attempt_in, asks",
    [
        (SessionStatus.DISCONNECTED, "qr_timeout", None, True),  # the codes ran out: a new link starts
        (SessionStatus.LOGGED_OUT, "logged_out: device_removed", None, True),
        (SessionStatus.DISCONNECTED, "connect_failure: 503: unavailable", 120, True),  # its backoff is cut short
        (SessionStatus.DISCONNECTED, "", None, False),  # a live client reconnecting by itself
        (SessionStatus.BANNED, "temporary_ban: code 402, expires in 60 s", 60, False),  # a ban is waited out
        (SessionStatus.INITIALIZING, "", None, False),
    ],
)
async def test_opening_asks_for_a_start_when_the_session_waits_for_a_link_or_an_attempt(
    configured, token, status, last_error, next_attempt_in, asks
):
    await update_row("tienda_lima", status=status, last_error=last_error, next_attempt_at=in_seconds(next_attempt_in))
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    assert ((await get_row("tienda_lima")).start_requested_at is not None) == asks
    await ws.disconnect()


def in_seconds(seconds: float | None):
    return None if seconds is None else timezone.now() + timedelta(seconds=seconds)


LOOKUP_FAILED = ('connect_failure: connect_failed: failed to dial whatsapp web websocket: failed to WebSocket dial: '
                 'failed to send handshake request: Get "https://web.whatsapp.com/ws/chat": dial tcp: lookup '
                 'web.whatsapp.com on 10.255.255.53:53: no such host')


async def failing(session_id: str = "tienda_lima", retry_in: float = 120, last_error: str = LOOKUP_FAILED) -> None:
    """As the worker leaves a session whose connect failed: disconnected, the error, its next attempt."""
    await update_row(session_id, status=SessionStatus.DISCONNECTED, status_reason="connect_failure",
                     last_error=last_error, next_attempt_at=in_seconds(retry_in))


async def test_a_failing_session_says_why_at_once_and_is_tried_again_now(configured, token):
    await failing(retry_in=120)
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    news = await ws.receive_json_from(timeout=5)
    assert news == {
        "event": "status", "data": "disconnected", "reason": "connect_failure",
        "error": "No se encontró el servidor de WhatsApp: este equipo no puede resolver nombres de internet "
                 "(sin DNS o sin conexión). Detalle técnico: " + LOOKUP_FAILED.split("connect_failed: ", 1)[1],
        "retryInSeconds": 0,  # this socket moved the attempt to now
    }
    row = await get_row("tienda_lima")
    assert row.start_requested_at is not None  # what the supervisor starts it on
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


async def test_a_storm_of_sockets_makes_one_immediate_attempt(configured, token, settings):
    settings.LINK_RETRY_MIN_SECONDS = 60
    await failing(retry_in=120)
    sockets = await asyncio.gather(*(open_socket("tienda_lima", token) for _ in range(12)))
    told = []
    for ws in sockets:
        assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
        told.append((await ws.receive_json_from(timeout=5))["retryInSeconds"])
    # One socket asked for the attempt; the others were told the worker's own schedule.
    assert sorted(told)[0] == 0 and all(115 <= n <= 120 for n in sorted(told)[1:]), told
    requested = (await get_row("tienda_lima")).start_requested_at

    later = await open_socket("tienda_lima", token)
    await later.receive_json_from(timeout=5)
    assert (await later.receive_json_from(timeout=5))["retryInSeconds"] > 0
    assert (await get_row("tienda_lima")).start_requested_at == requested  # still the one attempt

    # Once the window has passed (moved back here instead of waited for), a socket tries again.
    await update_row("tienda_lima", start_requested_at=requested - timedelta(seconds=61))
    again = await open_socket("tienda_lima", token)
    await again.receive_json_from(timeout=5)
    assert (await again.receive_json_from(timeout=5))["retryInSeconds"] == 0
    assert (await get_row("tienda_lima")).start_requested_at > requested
    for ws in (*sockets, later, again):
        await ws.disconnect()


async def test_a_banned_session_says_when_the_ban_ends_and_is_not_tried_early(configured, token):
    await update_row("tienda_lima", status=SessionStatus.BANNED, status_reason="banned",
                     last_error="temporary_ban: code 402, expires in 3600 s", next_attempt_at=in_seconds(3600))
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    news = await ws.receive_json_from(timeout=5)
    assert news.pop("retryInSeconds") in range(3595, 3601)
    assert news == {"event": "status", "data": "disconnected", "reason": "banned"}
    assert (await get_row("tienda_lima")).start_requested_at is None
    await ws.disconnect()


async def test_a_store_password_in_the_last_error_never_reaches_the_socket(configured, token):
    await failing(last_error="process_exited: pq: could not open postgres://wa:Sup3rSecreta@db.local:5432/whatsapp "
                             "(password=Sup3rSecreta)")
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    news = await ws.receive_json_from(timeout=5)
    assert "Sup3rSecreta" not in json.dumps(news)
    assert news["error"].startswith("El proceso de la sesión terminó inesperadamente.")
    assert "postgres://wa:***@db.local:5432/whatsapp" in news["error"]
    await ws.disconnect()


async def test_a_live_disconnect_carries_the_error_and_the_seconds_to_the_next_attempt(configured, token):
    ws = await open_socket("tienda_lima", token)
    await ws.receive_json_from(timeout=5)
    message = {"type": "session.event", "event": "status", "data": "disconnected", "reason": "connect_failure",
               "error": "No se pudo conectar con WhatsApp.", "retryInSeconds": 7}
    await get_channel_layer().group_send(group_name("tienda_lima"), message)
    assert await ws.receive_json_from(timeout=5) == {k: v for k, v in message.items() if k != "type"}
    # Fields of the wrong type are left out, the event still goes through.
    await get_channel_layer().group_send(group_name("tienda_lima"), {
        **message, "error": {"dsn": "x"}, "retryInSeconds": "pronto"})
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "disconnected",
                                                     "reason": "connect_failure"}
    await ws.disconnect()


async def test_a_banned_session_says_so_right_after_initializing(configured, token):
    await update_row("tienda_lima", status=SessionStatus.BANNED, last_error="temporary_ban: code 402")
    ws = await open_socket("tienda_lima", token)
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "disconnected", "reason": "banned"}
    await ws.disconnect()
