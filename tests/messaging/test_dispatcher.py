"""The dispatcher through the real service process (`manage.py serve`, embedded worker) on the simulator:
what a sales system sees from the API and what the simulated WhatsApp received."""

import hashlib
import json
import time
from collections import Counter, defaultdict

import httpx
import pytest

from sessions_app.config_file import load_and_mirror
from tests.conftest import make_pdf, pdf_body
from tests.processes import serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST = {
    "SEND_MIN_INTERVAL_SECONDS": "0",
    "SEND_INTERVAL_JITTER_SECONDS": "0",
    "SEND_HOURLY_CAP": "0",
    "DISPATCH_SWEEP_SECONDS": "1",
    "SIMULATOR_DELIVERY_MS": "50",
    "SESSION_POLL_SECONDS": "0.2",
    "SESSION_RESTART_BACKOFF_SECONDS": "0.2",
}


class Api:
    def __init__(self, server, auth):
        self.client = httpx.Client(base_url=server.url, headers=auth, timeout=30)

    def send(self, **body) -> str:
        response = self.client.post("/api/send-pdf", json=pdf_body(**body))
        assert response.status_code == 202, response.text
        return response.json()["messageId"]

    def message(self, message_id: str) -> dict:
        return self.client.get(f"/api/messages/{message_id}").json()

    def session(self, session_id: str) -> dict:
        return self.client.get(f"/api/sessions/{session_id}").json()

    def outbox(self, **filters) -> list[dict]:
        response = self.client.get("/api/simulator/outbox", params=filters)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, what, timeout: float = 60, every: float = 0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = what()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {getattr(what, '__name__', what)}")

    def link(self, session_id: str) -> None:
        self.wait(lambda: self.session(session_id)["status"] in ("qr", "connected"))
        if self.session(session_id)["status"] == "qr":
            scan = self.client.post(f"/api/simulator/sessions/{session_id}/scan", json={"phone": "51900000001"})
            assert scan.status_code == 202, scan.text
        self.wait(lambda: self.session(session_id)["status"] == "connected")

    def statuses(self, ids) -> Counter:
        return Counter(self.message(i)["status"] for i in ids)


def configure(settings, session_ids):
    settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": s} for s in session_ids]))
    load_and_mirror()


def test_posted_pdf_arrives_with_same_bytes_name_and_caption_then_is_delivered(configured, auth, tmp_path):
    pdf = make_pdf(60_000, seed=5)
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        message_id = api.send(pdf=pdf, fileName="B001-77.pdf", caption="Boleta B001-77")
        delivered = api.wait(lambda: api.message(message_id)["status"] == "delivered" and api.message(message_id))
        outbox = api.outbox(sessionId="tienda_lima", to="51987654321")
    assert len(outbox) == 1
    item = outbox[0]
    assert item["sha256"] == hashlib.sha256(pdf).hexdigest() and item["size"] == len(pdf)
    assert (item["fileName"], item["caption"]) == ("B001-77.pdf", "Boleta B001-77")
    assert delivered["waMessageId"] == item["waMessageId"]
    assert delivered["attempts"] == 1 and delivered["sentAt"] and delivered["deliveredAt"]


def test_thousand_messages_over_ten_sessions_all_arrive_in_order(configured, auth, settings, tmp_path):
    sessions = [f"tienda_{i}" for i in range(10)]
    configure(settings, sessions)
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        for s in sessions:
            api.link(s)
        ids = [api.send(session_id=s, caption=f"{s}:{n}", pdf=make_pdf(1500, seed=n))
               for n in range(100) for s in sessions]
        api.wait(lambda: len(api.outbox()) >= 1000, timeout=180, every=0.5)
        outbox = api.outbox()
        final = api.statuses(ids[::50])
    assert len(outbox) == 1000
    per_session = defaultdict(list)
    for item in outbox:  # in the order the simulated WhatsApp received them
        per_session[item["sessionId"]].append(int(item["caption"].split(":")[1]))
    assert {s: seq for s, seq in per_session.items()} == {s: list(range(100)) for s in sessions}
    assert set(final) <= {"sent", "delivered"}


def test_disconnected_session_holds_its_messages_and_sends_them_after_reconnecting(configured, auth, tmp_path):
    with serve(tmp_path, **FAST, SIMULATOR_RECONNECT_MS="3000") as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        assert api.client.post("/api/simulator/sessions/tienda_lima/drop").status_code == 202
        api.wait(lambda: api.session("tienda_lima")["status"] == "disconnected")
        ids = [api.send(caption=f"held {n}") for n in range(5)]
        time.sleep(1.0)
        held = api.statuses(ids)
        assert api.outbox() == []
        api.wait(lambda: api.session("tienda_lima")["status"] == "connected", timeout=30)
        api.wait(lambda: len(api.outbox()) == 5, timeout=30)
        captions = [item["caption"] for item in api.outbox()]
    assert held == Counter({"queued": 5})
    assert captions == [f"held {n}" for n in range(5)]


def test_unregistered_number_fails_at_once_without_sending(configured, auth, tmp_path):
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        message_id = api.send(to="51900000000")
        failed = api.wait(lambda: api.message(message_id)["status"] == "failed" and api.message(message_id), timeout=15)
        assert api.outbox() == []
    assert failed["error"] == "not_on_whatsapp" and failed["attempts"] == 1


def test_kill_9_of_the_worker_mid_run_loses_nothing(configured, auth, tmp_path, capsys):
    server = serve(tmp_path, **FAST, SIMULATOR_SEND_LATENCY_MS="5").start()
    api = Api(server, auth)
    api.link("tienda_lima")
    ids = [api.send(caption=f"run {n}", pdf=make_pdf(1200, seed=n)) for n in range(500)]
    api.wait(lambda: len(api.outbox()) >= 150, timeout=60, every=0.05)
    server.kill()  # web, worker and session processes, mid-send

    with serve(tmp_path, **FAST, SIMULATOR_SEND_LATENCY_MS="5") as again:
        api = Api(again, auth)
        api.wait(lambda: api.session("tienda_lima")["status"] == "connected", timeout=60)
        api.wait(lambda: len({i["caption"] for i in api.outbox()}) == 500, timeout=120, every=0.5)
        api.wait(lambda: set(api.statuses(ids[-20:])) <= {"sent", "delivered"}, timeout=30)
        outbox = api.outbox()
        statuses = api.statuses(ids)
    copies = Counter(item["caption"] for item in outbox)
    duplicates = sum(n - 1 for n in copies.values())
    with capsys.disabled():
        print(f"\nkill -9 mid-run: 500 messages, {len(outbox)} received, {duplicates} duplicate(s)")
    assert set(copies) == {f"run {n}" for n in range(500)}  # none lost
    assert duplicates <= 1  # at most the one send in flight when the process died
    assert set(statuses) <= {"sent", "delivered"}
