"""Both ways the service runs, as real processes with the simulator backend: embedded (`manage.py serve`
runs web, sockets and the supervisor, as `make run` does) and production (`serve --no-worker` beside
`runworker`, events through Redis)."""

import asyncio
import json
import os
import re
import signal
import time
import uuid

import httpx
import pytest

from sessions_app.config_file import load_and_mirror, read_config
from sessions_app.ids import session_dir
from sessions_app.models import WhatsAppSession
from sessions_app.protocol import group_name
from tests.conftest import need, reachable
from tests.processes import alive, descendants, runworker, serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 30  # only for waiting
FAST = {"SESSION_POLL_SECONDS": "0.1", "SESSION_STOP_TIMEOUT_SECONDS": "2"}
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def api(server, token: str):
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=WAIT)


def wait_status(client: httpx.Client, session_id: str, status: str) -> dict:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        body = client.get(f"/api/sessions/{session_id}").json()
        if body.get("status") == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{session_id} never became {status}; last: {body}")


def test_embedded_serve_links_by_code_logs_out_deletes_and_stops_cleanly(configured, tmp_path, token):
    server = serve(tmp_path, **FAST).start()
    try:
        with api(server, token) as client:
            wait_status(client, "tienda_lima", "qr")
            assert client.get("/api/sessions/tienda_lima/qr").json()["qr"].startswith("2@")

            response = client.post("/api/sessions/tienda_lima/pairing-code", json={"phone": "51987654321"})
            assert response.status_code == 200, response.text
            assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", response.json()["code"])

            scan = client.post("/api/simulator/sessions/tienda_lima/scan", json={"phone": "51911111111"})
            assert scan.status_code == 202
            assert wait_status(client, "tienda_lima", "connected")["phone"] == "51911111111"
            again = client.post("/api/sessions/tienda_lima/pairing-code", json={"phone": "51987654321"})
            assert again.status_code == 409 and again.json()["error"] == "not_waiting_for_link"

            assert client.post("/api/sessions/tienda_lima/logout").status_code == 200
            body = client.get("/api/sessions/tienda_lima").json()
            assert (body["status"], body["phone"]) == ("logged_out", None)
            assert not session_dir("tienda_lima").exists()

            wait_status(client, "tienda_cusco", "qr")
            assert client.delete("/api/sessions/tienda_cusco").status_code == 200
            assert client.get("/api/sessions/tienda_cusco").status_code == 404
            assert [e.session_id for e in read_config()] == ["tienda_lima"]
            row = WhatsAppSession.objects.get(session_id="tienda_cusco")
            assert (row.in_config, row.status) == (False, "stopped")
            assert not session_dir("tienda_cusco").exists()

        children = descendants(server.proc.pid)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(WAIT)  # uvicorn ends by re-raising the signal it shut down for
        assert "supervisor stopped" in server.output()
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in children)
    finally:
        server.stop()


@pytest.mark.redis
async def test_production_web_and_worker_apart_share_events_through_redis(service_files, transactional_db, tmp_path,
                                                                           token):
    from channels_redis.core import RedisChannelLayer

    need(reachable("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    # An id of its own: other test runs may use the same Redis at the same time.
    session_id = f"tienda_{uuid.uuid4().hex[:8]}"
    (tmp_path / "sessions.config.json").write_text(json.dumps([{"sessionId": session_id}]))
    await asyncio.to_thread(load_and_mirror)
    layer = RedisChannelLayer(hosts=[{"address": REDIS_URL, "socket_timeout": 15}])  # as settings.py has it
    channel = await layer.new_channel()
    await layer.group_add(group_name(session_id), channel)  # listening before anything is published
    events: list[dict] = []

    async def watch():
        while True:
            events.append(await layer.receive(channel))

    watcher = asyncio.create_task(watch())
    web = serve(tmp_path, "--no-worker", REDIS_URL=REDIS_URL, **FAST)
    worker = runworker(tmp_path, REDIS_URL=REDIS_URL, **FAST)

    def scenario():
        web.start()
        worker.start()
        with api(web, token) as client:
            wait_status(client, session_id, "qr")
            scan = client.post(f"/api/simulator/sessions/{session_id}/scan", json={"phone": "51911111111"})
            assert scan.status_code == 202
            wait_status(client, session_id, "connected")
        assert descendants(web.proc.pid) == set()  # the web process runs no session
        worker.stop()

    try:
        await asyncio.to_thread(scenario)
        deadline = time.monotonic() + WAIT
        while not (events and events[-1].get("data") == "disconnected") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(web.stop)
        if watcher.done():
            watcher.result()  # the listening failed: say why
        watcher.cancel()
        await layer.group_discard(group_name(session_id), channel)
        await layer.flush()
    seen = [(e["event"], e["data"]) for e in events]
    assert seen[0] == ("status", "initializing")
    assert seen[1][0] == "qr" and seen[1][1].startswith("2@")
    assert ("status", "connected") in seen
    assert seen[-1] == ("status", "disconnected") and events[-1]["reason"] == "stopped"
