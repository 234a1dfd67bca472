"""The database unreachable while the service runs (Postgres behind a TCP proxy the test cuts): the API
answers 503 with a clear error within seconds instead of hanging, the worker waits and resumes when the
database returns, and no accepted message is lost or sent twice. No restart in between."""

import time

import httpx
import pytest
from django.db import connection

from messaging.models import OutgoingMessage
from simulator.models import SimulatorOutbox
from tests.conftest import pdf_body
from tests.fault_tools import TcpProxy, hold_message_writes, session_status
from tests.processes import serve, wait_for
from tests import processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

FAST = {"SEND_MIN_INTERVAL_SECONDS": "0", "SEND_INTERVAL_JITTER_SECONDS": "0", "DISPATCH_SWEEP_SECONDS": "1",
        "DISPATCH_RETRY_BASE_SECONDS": "2", "DISPATCH_SEND_TIMEOUT_SECONDS": "10", "SESSION_POLL_SECONDS": "0.2",
        "DATABASE_TIMEOUT_SECONDS": "4", "SIMULATOR_SEND_LATENCY_MS": "200"}


def send(server, auth, n: int, key: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(fileName=f"F{key}-{n}.pdf"), timeout=60,
                      headers={**auth, "Idempotency-Key": f"{key}-{n}"})


def test_database_unreachable_then_back(configured, auth, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("a database behind a network: runs in the Postgres run of the suite")
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))).start()
    direct = processes.test_database_url()
    through_proxy = direct.replace(f"@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/",
                                   f"@127.0.0.1:{proxy.port}/")
    assert through_proxy != direct
    try:
        with serve(tmp_path, DATABASE_URL=through_proxy, **FAST) as server:
            scan = httpx.post(f"{server.url}/api/simulator/sessions/tienda_lima/scan", headers=auth, timeout=30)
            if scan.status_code == 409:  # the QR is not shown yet
                wait_for(lambda: session_status(server, auth, "tienda_lima") == "qr", 30, what="a QR")
                scan = httpx.post(f"{server.url}/api/simulator/sessions/tienda_lima/scan", headers=auth, timeout=30)
            assert scan.status_code == 202, scan.text
            wait_for(lambda: session_status(server, auth, "tienda_lima") == "connected", 30, what="connected")

            accepted = [send(server, auth, n, "before") for n in range(5)]
            assert [r.status_code for r in accepted] == [202] * 5
            proxy.cut()  # some of them are being sent right now

            # Every entry point answers within seconds, with the contract's error.
            for method, path, kw in [("POST", "/api/send-pdf", {"json": pdf_body()}),
                                     ("GET", "/api/sessions", {}),
                                     ("GET", f"/api/messages/{accepted[0].json()['messageId']}", {})]:
                started = time.monotonic()
                response = httpx.request(method, f"{server.url}{path}", headers=auth, timeout=60, **kw)
                took = time.monotonic() - started
                assert response.status_code == 503, (method, path, response.status_code, response.text)
                assert response.json()["error"] == "database_unavailable" and response.json()["message"]
                assert took < 15, f"{method} {path} took {took:.1f} s"
            health = httpx.get(f"{server.url}/healthz", timeout=30)
            assert health.status_code == 503
            time.sleep(5)  # the worker meets the outage for a while

            proxy.restore()
            resumed = wait_for(lambda: (r := send(server, auth, 0, "after")).status_code == 202 and r, 30,
                               interval=0.5, what="send-pdf accepted again")
            assert resumed.status_code == 202
            more = [send(server, auth, n, "after") for n in range(1, 5)]
            assert [r.status_code for r in more] == [202] * 4

            def all_sent():
                rows = OutgoingMessage.objects.values_list("status", flat=True)
                return len(rows) == 10 and all(s in ("sent", "delivered", "read") for s in rows)

            try:
                wait_for(all_sent, 90, interval=0.5, what="every accepted message sent")
            except TimeoutError:
                rows = list(OutgoingMessage.objects.values_list("file_name", "status", "attempts", "error"))
                dump = server.stack_dump()
                pytest.fail(f"not every message was sent: {rows}\n{server.output()[-6000:]}\n{dump}")
            assert session_status(server, auth, "tienda_lima") == "connected"
        # Exactly once each: the outbox of the simulated WhatsApp holds each file once.
        names = sorted(SimulatorOutbox.objects.values_list("file_name", flat=True))
        assert names == sorted([f"Fbefore-{n}.pdf" for n in range(5)] + [f"Fafter-{n}.pdf" for n in range(5)])
    finally:
        proxy.cut()


def test_a_database_that_takes_the_write_and_does_not_answer(configured, auth, tmp_path):
    """send-pdf answers 503 after QUEUE_WRITE_TIMEOUT_SECONDS instead of hanging; the row it was
    writing is committed once the database answers, and a retry with the same key finds it (one row)."""
    with serve(tmp_path, "--no-worker", QUEUE_WRITE_TIMEOUT_SECONDS="2") as server:
        other = hold_message_writes()
        try:
            started = time.monotonic()
            first = send(server, auth, 0, "stuck")
            took = time.monotonic() - started
            assert first.status_code == 503, first.text
            assert first.json()["error"] == "database_unavailable" and "Idempotency-Key" in first.json()["message"]
            assert took < 10, f"answered after {took:.1f} s"
        finally:
            other.rollback()
            other.close()
        retry = wait_for(lambda: (r := send(server, auth, 0, "stuck")).status_code == 202 and r, 30,
                         interval=0.5, what="the retry accepted")
        assert httpx.get(f"{server.url}/api/messages/{retry.json()['messageId']}", headers=auth,
                         timeout=10).json()["status"] == "queued"
    assert OutgoingMessage.objects.filter(idempotency_key="stuck-0").count() == 1
