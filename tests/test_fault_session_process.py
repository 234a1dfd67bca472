"""Session processes that misbehave under a running `serve`: one that floods its pipe is killed and
restarted while the API and the other sessions keep answering; one that keeps the supervisor's database
busy (just under the flood limit) costs no other session its lease; one that exits in the middle of a
send is restarted and its message goes out once."""

import time
from pathlib import Path

import httpx
import pytest

from sessions_app.models import WhatsAppSession
from simulator.models import SimulatorOutbox
from tests.conftest import pdf_body
from tests.fault_tools import session_status
from tests.processes import descendants, serve, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST = {"SEND_MIN_INTERVAL_SECONDS": "0", "SEND_INTERVAL_JITTER_SECONDS": "0", "DISPATCH_SWEEP_SECONDS": "1",
        "DISPATCH_RETRY_BASE_SECONDS": "1", "SESSION_POLL_SECONDS": "0.2", "SESSION_RESTART_BACKOFF_SECONDS": "1"}


def link(server, auth, session_id: str) -> None:
    def scanned():
        response = httpx.post(f"{server.url}/api/simulator/sessions/{session_id}/scan", headers=auth, timeout=30)
        return response.status_code == 202

    wait_for(scanned, 30, interval=0.3, what=f"{session_id} showing a QR to scan")
    wait_for(lambda: session_status(server, auth, session_id) == "connected", 30, what=f"{session_id} connected")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_session_process_flooding_its_pipe_is_killed_while_the_rest_keeps_working(configured, auth, tmp_path):
    backend = "tests.fault_backends:FloodingBackend"
    with serve(tmp_path, WHATSAPP_BACKEND=backend, FAULT_SESSION="tienda_cusco", **FAST) as server:
        # While tienda_cusco floods (and is killed, and restarted, and floods again), the API answers.
        latencies = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = httpx.get(f"{server.url}/api/sessions", headers=auth, timeout=30)
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200, (response.text, server.output()[-4000:])
            time.sleep(0.05)
        assert max(latencies) < 2.0, f"slowest answer {max(latencies):.2f} s during the flood"

        # The other session links and sends.
        link(server, auth, "tienda_lima")
        accepted = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(), headers=auth, timeout=30)
        assert accepted.status_code == 202
        wait_for(lambda: SimulatorOutbox.objects.filter(session_id="tienda_lima").exists(), 30, what="a send")

        cusco = WhatsAppSession.objects.get(session_id="tienda_cusco")
        assert "flood" in cusco.last_error, cusco.last_error
        log = server.wait_output("flooding its pipe")
        assert log.count("tienda_cusco: process") >= 2 and "flooding its pipe" in log
        # Bounded memory: the flood is not queued up inside the server.
        assert rss_kib(server.proc.pid) < 400 * 1024
        assert len(descendants(server.proc.pid)) <= 6  # forkserver + a process per session, no pile-up


def test_a_session_that_keeps_the_database_busy_costs_no_session_its_lease(configured, auth, tmp_path):
    # Each receipt is a database turn for the supervisor; 1,500 a second is more than it records, so
    # they queue up. Renewing the leases must not wait in that queue: a worker that misses its renewal
    # stops every session it runs (so that another worker can take them safely).
    backend = "tests.fault_backends:BusyBackend"
    with serve(tmp_path, WHATSAPP_BACKEND=backend, FAULT_SESSION="tienda_cusco", FAULT_RATE="1950",
               SESSION_LEASE_SECONDS="4", SESSION_LEASE_RENEW_SECONDS="0.5", **FAST) as server:
        link(server, auth, "tienda_lima")
        time.sleep(10)  # two and a half leases
        accepted = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(), headers=auth, timeout=30)
        assert accepted.status_code == 202
        wait_for(lambda: SimulatorOutbox.objects.filter(session_id="tienda_lima").exists(), 30, what="a send")
        log = server.output()
        assert "lease was not renewed" not in log and "lease lost" not in log, log[-3000:]
        assert log.count("session tienda_lima: process") == 1, log[-3000:]  # started once, never again
        assert session_status(server, auth, "tienda_lima") == "connected"


def test_a_session_process_that_exits_mid_send_is_restarted_and_the_message_goes_once(configured, auth, tmp_path,
                                                                                      settings):
    backend = "tests.fault_backends:ExitMidSendBackend"
    with serve(tmp_path, WHATSAPP_BACKEND=backend, FAULT_SESSION="tienda_lima", **FAST) as server:
        link(server, auth, "tienda_lima")
        accepted = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(fileName="F001-7.pdf"), headers=auth,
                              timeout=30)
        assert accepted.status_code == 202
        message_id = accepted.json()["messageId"]

        def sent():
            body = httpx.get(f"{server.url}/api/messages/{message_id}", headers=auth, timeout=10).json()
            return body if body["status"] in ("sent", "delivered", "read") else None

        status = wait_for(sent, 60, interval=0.5, what="the message sent after the restart")
        assert status["attempts"] >= 1
        assert session_status(server, auth, "tienda_lima") == "connected"
        log = server.wait_output("exit code 1")
        assert "exit code 1" in log and log.count("session tienda_lima: process") >= 3  # started, exited, started
    assert list(SimulatorOutbox.objects.values_list("file_name", flat=True)) == ["F001-7.pdf"]
    assert (Path(settings.SESSIONS_DIR) / "tienda_lima" / "exited-mid-send").exists()  # the fault did happen
