"""The pipe messages (sessions_app.protocol): one definition for both ends, across a real forkserver
process; what is not one of them is refused."""

import asyncio
import dataclasses
import logging
import multiprocessing
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest

from sessions_app import protocol
from sessions_app.session_handle import SessionHandle

EVERY_MESSAGE = [
    protocol.SendDocument("51987654321", b"%PDF-1.4", "f.pdf", "application/pdf", "Factura", ref="m1", req_id=1),
    protocol.SendText("51987654321", "Hola", ref="m2", req_id=2),
    protocol.CheckNumbers(("51987654321", "51911111111"), req_id=3),
    protocol.PairingCode("51987654321", req_id=4),
    protocol.Logout(req_id=5),
    protocol.LookupSent(("m1",), req_id=6),
    protocol.Control("read", {"to": "51987654321"}),
    protocol.Stop(),
    protocol.Lease(1234.5),
    protocol.Reply.success(1, {"wa_message_id": "3EB0AAA", "timestamp": 1.7e9}),
    protocol.Reply.failure(2, "51987654321 is not on WhatsApp", "not_on_whatsapp"),
    protocol.Heartbeat(),
    protocol.Qr("2@abc,k1,k2,k3"),
    protocol.QrTimeout(),
    protocol.Paired("51987654321"),
    protocol.Connected(None),
    protocol.Disconnected("connection_lost"),
    protocol.LoggedOut("device_removed"),
    protocol.StreamReplaced(),
    protocol.TemporaryBan(101, 3600),
    protocol.ConnectFailure("service_unavailable", "try later"),
    protocol.KeepaliveTimeout(),
    protocol.KeepaliveRestored(),
    protocol.Receipt(("3EB0AAA",), "read", 1.7e9),
    protocol.Error("handler failed"),
]


def test_every_message_is_named_frozen_and_pickles_as_itself():
    names = set()
    for message in EVERY_MESSAGE:
        assert pickle.loads(pickle.dumps(message)) == message
        assert not hasattr(message, "__dict__")  # slots: no per-message dict
        names.add(message.name)
    assert len(names) == len(EVERY_MESSAGE) - 1  # one name per type (two replies)
    with pytest.raises(dataclasses.FrozenInstanceError):
        EVERY_MESSAGE[0].to = "51911111111"


def speak(conn) -> None:
    """A session process gone wrong: a dict of the old shape, a foreign object, then a real event."""
    conn.send({"event": "connected", "phone": "51987654321"})
    conn.send(("connected", "51987654321"))
    conn.send(protocol.Reply.success(999, {}))  # a reply nobody asked for: dropped quietly
    conn.send(protocol.Connected("51987654321"))
    conn.close()


def test_the_supervisor_side_takes_protocol_events_only_from_a_real_process(caplog):
    ctx = multiprocessing.get_context("forkserver")  # as session_process.spawn starts them
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=speak, args=(theirs,), daemon=True)
    process.start()
    theirs.close()
    received = []

    async def main():
        with ThreadPoolExecutor(1) as writers:
            handle = SessionHandle("ventas", process, ours, writers, lambda h, m: received.append(m), lambda *a: None)
            await asyncio.wait_for(handle.exited.wait(), 10)

    with caplog.at_level(logging.WARNING, logger="sessions_app.session_handle"):
        asyncio.run(main())
    assert received == [protocol.Connected("51987654321")]
    unknown = [r.getMessage() for r in caplog.records if "unknown message" in r.getMessage()]
    assert len(unknown) == 2 and "'event': 'connected'" in unknown[0], unknown
