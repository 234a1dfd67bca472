"""/metrics after real traffic through `manage.py serve` on the simulator, read as Prometheus reads it."""

import os
import re
import signal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import runworker, serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ENV = {**FAST, "SIMULATOR_RECONNECT_MS": "300", "WORKER_HEARTBEAT_SECONDS": "0.5"}


def scrape(server, token: str) -> dict:
    response = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def session_pid(server, session_id: str) -> int:
    return int(re.findall(rf"session {session_id}: process (\d+) started", server.output())[-1])


def test_metrics_after_traffic_reconnect_and_crash(configured, auth, token, tmp_path):
    with serve(tmp_path, **ENV) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        sent = [api.send(caption=f"m {n}") for n in range(3)]
        failed = api.send(to="51900000000")
        waiting = [api.send(session_id="tienda_cusco") for _ in range(2)]  # not linked: they wait
        api.wait(lambda: set(api.statuses(sent)) == {"delivered"} and api.message(failed)["status"] == "failed")

        assert api.client.post("/api/simulator/sessions/tienda_lima/drop").status_code == 202
        api.wait(lambda: api.session("tienda_lima")["status"] == "disconnected", every=0.02)
        api.wait(lambda: api.session("tienda_lima")["status"] == "connected")
        crashed = session_pid(server, "tienda_lima")
        os.kill(crashed, signal.SIGKILL)
        api.wait(lambda: session_pid(server, "tienda_lima") != crashed)
        api.wait(lambda: api.session("tienda_lima")["status"] == "connected")

        samples = scrape(server, token)
        assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 401
        wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert (wrong.status_code, wrong.json()["error"]) == (403, "invalid_token")

    assert value(samples, "whatsapp_messages", session="tienda_lima", status="delivered") == 3
    assert value(samples, "whatsapp_messages", session="tienda_lima", status="failed") == 1
    assert value(samples, "whatsapp_messages", session="tienda_cusco", status="queued") == 2
    assert value(samples, "whatsapp_queue_depth", session="tienda_cusco") == 2
    assert value(samples, "whatsapp_queue_depth", session="tienda_lima") == 0
    assert value(samples, "whatsapp_queue_oldest_age_seconds", session="tienda_cusco") > 0
    assert value(samples, "whatsapp_queue_oldest_age_seconds", session="tienda_lima") == 0
    # The three sends (pacing off) took well under a minute from 202 to WhatsApp's ack.
    assert value(samples, "whatsapp_send_latency_seconds_bucket", session="tienda_lima", le="60.0") == 3
    assert value(samples, "whatsapp_send_latency_seconds_gcount", session="tienda_lima") == 3
    assert value(samples, "whatsapp_session_status", session="tienda_lima", status="connected") == 1
    assert value(samples, "whatsapp_session_status", session="tienda_lima", status="qr") == 0
    assert value(samples, "whatsapp_session_status", session="tienda_cusco", status="qr") == 1
    # The drop, then the crash: two connections re-established, one process restarted.
    assert value(samples, "whatsapp_session_reconnects_total", session="tienda_lima") == 2
    assert value(samples, "whatsapp_session_process_restarts_total", session="tienda_lima") == 1
    assert value(samples, "whatsapp_session_process_restarts_total", session="tienda_cusco") == 0
    assert value(samples, "whatsapp_workers_alive") == 1
    assert waiting and token not in repr(samples)


def test_metrics_token_of_its_own_and_web_apart_from_worker(configured, auth, tmp_path):
    metrics_token = "prometheus-only-token-42"
    env = {**ENV, "METRICS_TOKEN": metrics_token}
    with serve(tmp_path, "--no-worker", **env) as web, runworker(tmp_path, **env):
        api = Api(web, auth)
        api.link("tienda_lima")
        message_id = api.send()
        api.wait(lambda: api.message(message_id)["status"] == "delivered")
        refused = httpx.get(f"{web.url}/metrics", headers=auth, timeout=30)  # the API token is not it
        samples = scrape(web, metrics_token)
    assert refused.status_code == 403
    # The web process never sent anything itself: every figure comes from the shared database.
    assert value(samples, "whatsapp_messages", session="tienda_lima", status="delivered") == 1
    assert value(samples, "whatsapp_session_status", session="tienda_lima", status="connected") == 1
    assert value(samples, "whatsapp_workers_alive") == 1
