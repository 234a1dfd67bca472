"""The simulator backend on its own (no session process around it): what is the simulator's own (the
scenarios both backends share are in test_backend_conformance.py). Its phone is driven through
`control`, as the supervisor does with the rows the control endpoints write."""

import queue
import stat
import threading
import time

import pytest

from sessions_app.backends import backend_class
from sessions_app.protocol import QrTimeout
from sessions_app.ids import session_dir
from simulator.backend import SimulatorBackend
from simulator.models import SimulatorControl
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
            if event.name == name:
                return event
            assert event.name in ("qr", "paired"), f"unexpected {event} while waiting for {name}"

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
    assert [c.name for c in codes] == ["qr", "qr", "qr"]
    refs = {c.data.split(",", 1)[0] for c in codes}
    keys = {c.data.split(",", 1)[1] for c in codes}
    assert len(refs) == 3 and len(keys) == 1
    assert running.events.get(timeout=WAIT) == QrTimeout()
    assert running.ended()


def test_the_stored_device_is_readable_by_the_session_only(simulator):
    linked(simulator)
    files = list(session_dir("tienda_lima").iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def test_send_waits_the_configured_latency(simulator, settings):
    settings.SIMULATOR_SEND_LATENCY_MS = 300
    running = linked(simulator)
    began = time.monotonic()
    running.backend.send_document("51987654321", make_pdf(), "a.pdf", "application/pdf", "")
    assert time.monotonic() - began >= 0.3


def test_a_read_receipt_names_what_the_chat_had_not_read_once(simulator):
    running = linked(simulator)
    send = running.backend.send_document
    first, second = (send("51987654321", make_pdf(), f"{n}.pdf", "application/pdf", "")["wa_message_id"] for n in (1, 2))
    other = send("51922222222", make_pdf(), "3.pdf", "application/pdf", "")["wa_message_id"]
    delivered: list[str] = []
    while len(delivered) < 3:
        delivered += running.expect("receipt").message_ids
    assert sorted(delivered) == sorted([first, second, other])
    phone(running, "read", to="51987654321")
    assert running.expect("receipt").message_ids == (first, second)
    phone(running, "read", to="51987654321")
    time.sleep(0.3)
    assert running.events.empty()


def test_the_supervisor_takes_each_phone_action_once_in_order_for_running_sessions_only(configured):
    for session_id, action in (("tienda_lima", "scan"), ("otra", "drop"), ("tienda_lima", "drop")):
        SimulatorControl.objects.create(session_id=session_id, action=action, payload={"n": action})
    assert SimulatorBackend.take_controls(["tienda_lima"]) == [
        ("tienda_lima", {"action": "scan", "payload": {"n": "scan"}}),
        ("tienda_lima", {"action": "drop", "payload": {"n": "drop"}}),
    ]
    assert SimulatorBackend.take_controls(["tienda_lima"]) == []
    assert SimulatorBackend.take_controls(["otra"]) == [("otra", {"action": "drop", "payload": {"n": "drop"}})]
