"""Redis stopped while the service runs (REDIS_URL set, one `serve`): the API keeps accepting, sockets
get an error event, and everything recovers when Redis returns, without restarting anything."""

import asyncio

import httpx
import pytest

from tests.conftest import need, pdf_body
from tests.fault_tools import REDIS_SERVER, RedisServer, session_status, socket_events
from tests.processes import serve, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.redis]


def test_redis_stopped_and_back_while_the_service_runs(configured, auth, token, tmp_path):
    import os

    need(os.path.exists(REDIS_SERVER), "redis-server")
    redis = RedisServer(tmp_path).start()
    fast = {"SEND_MIN_INTERVAL_SECONDS": "0", "SEND_INTERVAL_JITTER_SECONDS": "0", "DISPATCH_SWEEP_SECONDS": "1",
            "SESSION_POLL_SECONDS": "0.2"}
    try:
        with serve(tmp_path, REDIS_URL=redis.url, **fast) as server:
            ws_url = f"ws://127.0.0.1:{server.port}/ws/session/tienda_lima?token={token}"

            async def watch_through_the_outage():
                """A socket open before Redis stops: it hears of the failure as an error event."""
                events = []

                async def collect():
                    await socket_events(ws_url, timeout=60, into=events)

                task = asyncio.create_task(collect())
                await asyncio.sleep(0)
                wait_until = asyncio.get_running_loop().time() + 20
                while not any(e.get("event") == "qr" for e in events):
                    if task.done():
                        task.result()
                    assert asyncio.get_running_loop().time() < wait_until, (events, server.output()[-3000:])
                    await asyncio.sleep(0.1)
                redis.stop()
                await asyncio.wait_for(task, 40)
                return events

            before = asyncio.run(watch_through_the_outage())
            assert before[0] == {"event": "status", "data": "initializing"}
            assert before[-1]["event"] == "error" and before[-1]["data"], before

            # Redis is down. The API still accepts and answers.
            accepted = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(), headers=auth, timeout=30)
            assert accepted.status_code == 202, accepted.text
            message_id = accepted.json()["messageId"]
            assert httpx.get(f"{server.url}/api/sessions", headers=auth, timeout=30).status_code == 200

            # A socket opened now is told, and closed with a code it can retry after.
            events, code = asyncio.run(socket_events(ws_url, timeout=30))
            assert [e["event"] for e in events] == ["error"], events
            assert code == 1011

            redis.start()  # the same port: the service finds it again by itself

            def socket_works():
                events, _ = asyncio.run(socket_events(ws_url, until=lambda ev: any(e["event"] == "qr" for e in ev),
                                                      timeout=20))
                return events if any(e["event"] == "qr" for e in events) else None

            # Every socket from now on works: none meets a connection that died with the old Redis.
            for _ in range(5):
                events = socket_works()
                assert events and events[0] == {"event": "status", "data": "initializing"}, events

            # Events published by the worker reach sockets again: scan, and the socket hears "connected".
            async def link():
                waiter = asyncio.create_task(socket_events(
                    ws_url, until=lambda ev: any(e.get("data") == "connected" for e in ev), timeout=30))
                await asyncio.sleep(1)
                async with httpx.AsyncClient() as client:
                    scan = await client.post(f"{server.url}/api/simulator/sessions/tienda_lima/scan", headers=auth,
                                             json={"phone": "51900000001"}, timeout=30)
                assert scan.status_code == 202, scan.text
                return await waiter

            events, _ = asyncio.run(link())
            assert {"event": "status", "data": "connected"} in events, events
            assert session_status(server, auth, "tienda_lima") == "connected"

            # The message accepted while Redis was down is delivered, once.
            def sent():
                status = httpx.get(f"{server.url}/api/messages/{message_id}", headers=auth, timeout=10).json()
                return status if status["status"] in ("sent", "delivered", "read") else None

            wait_for(sent, 60, what="the message accepted during the outage to be sent")
            outbox = httpx.get(f"{server.url}/api/simulator/outbox?sessionId=tienda_lima", headers=auth, timeout=10)
            assert len(outbox.json()) == 1, outbox.text
    finally:
        redis.stop()
