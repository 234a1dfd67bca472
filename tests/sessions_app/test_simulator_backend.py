"""The simulator backend on its own (no session process around it): what it emits and does, as neonize
over whatsmeow would. Its phone is driven through `control`, as the supervisor does with the rows the
control endpoints write."""

import hashlib
import queue
import re
import stat
import threading
import time

import pytest

from sessions_app.backends import BackendError, backend_class
from sessions_app.backends.simulator_backend import SimulatorBackend
from sessions_app.ids import session_dir
from sessions_app.models import SimulatorControl, SimulatorOutbox
from tests.conftest import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10  # only for waiting


class Running:
    def __init__(self, backend, events: queue.Queue):
        self.backend, self.events = backend, events
        self.thread = threading.Thread(target=backend.run, daemon=True)
        self.thread.start()

    def expect(self, name: str) -> dict:
        """The next event called `name`, past the QR codes and pairing on the way to it."""
        deadline = time.monotonic() + WAIT
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event["event"] == name:
                return event
            assert event["event"] in ("qr", "paired"), f"unexpected {event} while waiting for {name}"

    def ended(self) -> bool:
        self.thread.join(WAIT)
        return not self.thread.is_alive()


@pytest.fixture
def simulator(configured, settings, tmp_path):
    settings.SIMULATOR_QR_FIRST_SECONDS = 30
    settings.SIMULATOR_RECONNECT_MS = 100
    settings.SIMULATOR_DELIVERY_MS = 50
    started = []

    def start(session_id: str = "tienda_lima") -> Running:
        events: queue.Queue = queue.Queue()
        store = session_dir(session_id)
        store.mkdir(mode=0o700, parents=True, exist_ok=True)
        running = Running(backend_class("simulator")(session_id, store, events.put), events)
        started.append(running)
        return running

    yield start
    for running in started:
        running.backend.stop()
        running.thread.join(WAIT)


def phone(running: Running, action: str, **payload) -> None:
    running.backend.control(action, payload)


def linked(start) -> Running:
    running = start()
    running.expect("qr")
    phone(running, "scan", phone="51911111111")
    running.expect("connected")
    return running


def test_qr_codes_rotate_with_the_same_keys_then_time_out(simulator, settings):
    settings.SIMULATOR_QR_FIRST_SECONDS, settings.SIMULATOR_QR_NEXT_SECONDS, settings.SIMULATOR_QR_COUNT = 0.3, 0.1, 3
    running = simulator()
    codes = [running.events.get(timeout=WAIT) for _ in range(3)]
    assert [c["event"] for c in codes] == ["qr", "qr", "qr"]
    refs = {c["data"].split(",", 1)[0] for c in codes}
    keys = {c["data"].split(",", 1)[1] for c in codes}
    assert len(refs) == 3 and len(keys) == 1
    assert running.events.get(timeout=WAIT) == {"event": "qr_timeout"}
    assert running.ended()


def test_scan_pairs_connects_and_stores_credentials_a_new_client_reconnects_with(simulator, tmp_path):
    running = simulator()
    running.expect("qr")
    phone(running, "scan", phone="51911111111")
    assert running.expect("paired") == {"event": "paired", "phone": "51911111111"}
    assert running.expect("connected") == {"event": "connected", "phone": "51911111111"}
    files = list(session_dir("tienda_lima").iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    running.backend.stop()
    assert running.ended()

    again = simulator()
    assert again.events.get(timeout=WAIT) == {"event": "connected", "phone": "51911111111"}


def test_send_document_lands_in_the_outbox_and_is_delivered(simulator):
    running = linked(simulator)
    pdf = make_pdf(3000)
    result = running.backend.send_document("51987654321", pdf, "F001-1.pdf", "application/pdf", "Gracias")
    assert re.fullmatch(r"3EB0[0-9A-F]{18}", result["wa_message_id"])
    assert abs(result["timestamp"] - time.time()) < 60
    row = SimulatorOutbox.objects.get(wa_message_id=result["wa_message_id"])
    assert (row.session_id, row.to, row.file_name, row.caption, row.size, row.sha256) == (
        "tienda_lima", "51987654321", "F001-1.pdf", "Gracias", 3000, hashlib.sha256(pdf).hexdigest()
    )
    receipt = running.expect("receipt")
    assert receipt["message_ids"] == [result["wa_message_id"]] and receipt["type"] == "delivered"


def test_unregistered_numbers_and_sends_while_not_connected_are_refused(simulator, settings):
    settings.SIMULATOR_UNREGISTERED = ["51900000000", "51999999999"]
    running = simulator()
    running.expect("qr")
    with pytest.raises(BackendError) as refused:
        running.backend.send_document("51987654321", make_pdf(), "a.pdf", "application/pdf", "")
    assert refused.value.code == "not_connected"
    phone(running, "scan", phone="51911111111")
    running.expect("connected")
    with pytest.raises(BackendError) as refused:
        running.backend.send_document("51999999999", make_pdf(), "a.pdf", "application/pdf", "")
    assert refused.value.code == "not_on_whatsapp"
    assert running.backend.check_numbers(["51987654321", "+51900000000"]) == {
        "51987654321": True, "+51900000000": False
    }
    assert not SimulatorOutbox.objects.exists()


def test_send_waits_the_configured_latency(simulator, settings):
    settings.SIMULATOR_SEND_LATENCY_MS = 300
    running = linked(simulator)
    began = time.monotonic()
    running.backend.send_document("51987654321", make_pdf(), "a.pdf", "application/pdf", "")
    assert time.monotonic() - began >= 0.3


def test_pairing_code_only_while_waiting_for_a_link(simulator):
    running = simulator()
    running.expect("qr")
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", running.backend.pairing_code("51987654321"))
    phone(running, "scan", phone="51911111111")
    running.expect("connected")
    with pytest.raises(BackendError) as refused:
        running.backend.pairing_code("51987654321")
    assert refused.value.code == "not_waiting_for_link"


def test_a_drop_disconnects_and_the_client_reconnects_by_itself(simulator):
    running = linked(simulator)
    phone(running, "drop")
    assert running.expect("disconnected")["reason"]
    with pytest.raises(BackendError):
        running.backend.check_numbers(["51987654321"])
    assert running.expect("connected") == {"event": "connected", "phone": "51911111111"}
    assert running.thread.is_alive()


def test_remote_logout_removes_the_device_and_ends_the_client(simulator, tmp_path):
    running = linked(simulator)
    phone(running, "logout")
    assert running.expect("logged_out") == {"event": "logged_out", "reason": "device_removed"}
    assert running.ended()
    assert list(session_dir("tienda_lima").iterdir()) == []


def test_logout_unlinks_like_whatsmeow_without_an_event(simulator, tmp_path):
    running = linked(simulator)
    running.backend.logout()
    assert running.ended()
    assert list(session_dir("tienda_lima").iterdir()) == []
    assert running.events.empty()


def test_replaced_or_banned_the_client_stays_down_as_whatsmeow_does(simulator):
    running = linked(simulator)
    phone(running, "replace")
    assert running.expect("stream_replaced") == {"event": "stream_replaced"}
    time.sleep(0.3)  # longer than its reconnect delay: no reconnect follows
    assert running.events.empty()
    with pytest.raises(BackendError):
        running.backend.check_numbers(["51987654321"])
    running.backend.stop()
    assert running.ended()

    again = simulator()
    again.expect("connected")
    phone(again, "ban", expire_seconds=120)
    assert again.expect("temporary_ban") == {"event": "temporary_ban", "code": 101, "expire_seconds": 120}


def test_the_supervisor_takes_each_phone_action_once_in_order_for_running_sessions_only(configured):
    for session_id, action in (("tienda_lima", "scan"), ("otra", "drop"), ("tienda_lima", "drop")):
        SimulatorControl.objects.create(session_id=session_id, action=action, payload={"n": action})
    assert SimulatorBackend.take_controls(["tienda_lima"]) == [
        ("tienda_lima", {"action": "scan", "payload": {"n": "scan"}}),
        ("tienda_lima", {"action": "drop", "payload": {"n": "drop"}}),
    ]
    assert SimulatorBackend.take_controls(["tienda_lima"]) == []
    assert SimulatorBackend.take_controls(["otra"]) == [("otra", {"action": "drop", "payload": {"n": "drop"}})]
