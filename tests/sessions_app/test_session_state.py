"""What a session process's events do to the session's row, its channel-layer group (listened to here as
the WebSocket consumer listens) and the signals other apps subscribe to."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, transaction

from sessions_app import session_state, signals
from sessions_app.models import SessionStatus, WhatsAppSession
from sessions_app.protocol import (
    ConnectFailure, Connected, Error, LoggedOut, Paired, Qr, QrTimeout, Receipt, StreamReplaced, TemporaryBan, group_name,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def listener(configured):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name("tienda_lima"), channel)

    async def receive() -> dict:
        return await asyncio.wait_for(layer.receive(channel), 5)

    async def nothing() -> bool:
        try:
            await asyncio.wait_for(layer.receive(channel), 0.2)
        except TimeoutError:
            return True
        return False

    receive.nothing = nothing
    yield receive
    await layer.group_discard(group_name("tienda_lima"), channel)
    await sync_to_async(lambda: connection.close())()  # the thread sync_to_async used must not hold the test database


apply_event = sync_to_async(session_state.apply_event)
get_row = sync_to_async(lambda: WhatsAppSession.objects.get(session_id="tienda_lima"))


async def test_qr_then_connected_are_saved_and_published(listener):
    await apply_event("tienda_lima", Qr("2@abc,k1,k2,k3"))
    assert await listener() == {"type": "session.event", "event": "qr", "data": "2@abc,k1,k2,k3"}
    row = await get_row()
    assert (row.status, row.qr) == (SessionStatus.QR, "2@abc,k1,k2,k3") and row.qr_updated_at

    await apply_event("tienda_lima", Paired("51911111111"))
    await apply_event("tienda_lima", Connected("51911111111"))
    assert await listener() == {"type": "session.event", "event": "status", "data": "connected"}
    row = await get_row()
    assert (row.status, row.phone, row.qr) == (SessionStatus.CONNECTED, "51911111111", "")
    assert await listener.nothing()  # paired changes no status


@pytest.mark.parametrize(
    "event, status, reason, last_error, readable",
    [
        (LoggedOut("device_removed"), SessionStatus.LOGGED_OUT, "logged_out",
         "logged_out: device_removed", None),
        (QrTimeout(), SessionStatus.DISCONNECTED, "qr_timeout", "qr_timeout", None),
        (TemporaryBan(101, 3600), SessionStatus.BANNED, "banned",
         "temporary_ban: code 101, expires in 3600 s", None),
        (StreamReplaced(), SessionStatus.DISCONNECTED, "stream_replaced", "stream_replaced", None),
        # A failed connect says what failed, in words: the reason alone would not.
        (ConnectFailure("network", "dial tcp: lookup web.whatsapp.com"),
         SessionStatus.DISCONNECTED, "connect_failure", "connect_failure: network: dial tcp: lookup web.whatsapp.com",
         "No se pudo conectar con WhatsApp. Detalle técnico: network: dial tcp: lookup web.whatsapp.com"),
    ],
)
async def test_an_ended_connection_is_announced_as_disconnected_with_its_reason(
    listener, event, status, reason, last_error, readable
):
    await apply_event("tienda_lima", Connected("51911111111"))
    await listener()
    await apply_event("tienda_lima", event)
    expected = {"type": "session.event", "event": "status", "data": "disconnected", "reason": reason}
    if readable:
        expected["error"] = readable
    assert await listener() == expected
    row = await get_row()
    assert (row.status, row.status_reason, row.last_error) == (status, reason, last_error)


async def test_a_gone_process_leaves_connected_at_once(listener):
    await apply_event("tienda_lima", Connected("51911111111"))
    await listener()
    change = session_state.process_gone("process_exited: killed by SIGKILL")
    await sync_to_async(session_state.apply_change)("tienda_lima", change)
    assert (await listener())["reason"] == "process_exited"
    assert (await get_row()).status == SessionStatus.DISCONNECTED


async def test_errors_are_published_and_kept_as_last_error(listener):
    await apply_event("tienda_lima", Error("handler failed: KeyError"))
    assert await listener() == {"type": "session.event", "event": "error", "data": "handler failed: KeyError"}
    assert (await get_row()).last_error == "handler failed: KeyError"


async def test_nothing_is_published_when_the_change_is_rolled_back(listener):
    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            session_state.apply_event("tienda_lima", Connected("51911111111"))
            raise RuntimeError("rolled back")

    await sync_to_async(rolled_back)()
    assert await listener.nothing()
    assert (await get_row()).status == SessionStatus.STOPPED


def test_status_changes_and_receipts_leave_as_signals(configured):
    statuses, receipts = [], []

    def on_status(sender, **kw):
        statuses.append((kw["session_id"], kw["status"], kw["reason"]))

    def on_receipt(sender, **kw):
        receipts.append(kw)

    signals.session_status_changed.connect(on_status)
    signals.message_receipt.connect(on_receipt)
    try:
        session_state.apply_event("tienda_lima", Connected("51911111111"), lambda *a: None)
        session_state.apply_event("tienda_lima", Connected("51911111111"), lambda *a: None)
        session_state.apply_event("tienda_lima", LoggedOut("device_removed"), lambda *a: None)
        session_state.apply_event(
            "tienda_lima",
            Receipt(("3EB0AAAAAAAAAAAAAAAAAA",), "read", 1.5e9),
        )
    finally:
        signals.session_status_changed.disconnect(on_status)
        signals.message_receipt.disconnect(on_receipt)
    assert statuses == [
        ("tienda_lima", SessionStatus.CONNECTED, None),
        ("tienda_lima", SessionStatus.LOGGED_OUT, "logged_out"),
    ]
    assert receipts == [
        {"signal": signals.message_receipt, "session_id": "tienda_lima",
         "wa_message_ids": ["3EB0AAAAAAAAAAAAAAAAAA"], "type": "read", "timestamp": 1.5e9}
    ]
