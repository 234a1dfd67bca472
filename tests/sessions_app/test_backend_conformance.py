"""One contract, two backends (sessions_app.backends.base): every scenario here runs against both and
expects the same events, results and error codes.

- neonize: NeonizeBackend and neonize's NewClient run for real, connect() included; only the Go
  library's functions are stood in (tests/go_standin.py, answering as whatsmeow does), and events arrive
  as real Neonize_pb2 messages through the ctypes callbacks connect() handed to Go.
- simulator: driven as the service drives it: its phone through control() actions, its commands directly.

A driver per backend says how its outside world acts (the phone scans, the connection drops, ...); the
scenarios are written once.
"""

import hashlib
import re
import sys
import threading
import time

import pytest

from sessions_app.backends import BackendError, backend_class
from sessions_app.ids import session_dir
from sessions_app.protocol import Connected, Disconnected, LoggedOut, Paired, Qr, Receipt, StreamReplaced, TemporaryBan
from tests.conftest import make_pdf
from tests.files import DOCX, XLSX, make_docx, make_image, make_xlsx
from tests.go_standin import GoStandIn, run_on

SESSION = "tienda_lima"
PHONE = "51911111111"  # the session's own number
CUSTOMER = "51987654321"
UNREGISTERED = "51900000000"
# The simulator keeps its outbox and device in the database; the neonize runs get one too, unused.
pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10.0  # only for waiting
QUIET = 0.3  # longer than the simulator's reconnect delay and poll: what did not come by then will not
QR_SHAPE = re.compile(r"2@[^,]+,[^,]+,[^,]+,[^,]+")
PAIRING_CODE = re.compile(r"[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}")
WA_MESSAGE_ID = re.compile(r"3EB0[0-9A-F]{18}")
# What a sales system writes in a caption: none of it may become a mention or a group lookup.
CAPTION = "Boleta B001-77 (S/ 120.50). Dudas: @51987654321 o en el grupo @120363000000000000@g.us"


class Events:
    """What a backend emitted, read in order."""

    def __init__(self):
        self.all: list[dict] = []
        self._read = 0
        self._changed = threading.Condition()

    def __call__(self, event: dict) -> None:
        with self._changed:
            self.all.append(event)
            self._changed.notify_all()

    def next(self) -> dict:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.all) > self._read, WAIT), f"no event after {self.all}"
            self._read += 1
            return self.all[self._read - 1]

    def quiet(self) -> list[dict]:
        """Whatever arrives in the next QUIET seconds (a scenario expects nothing)."""
        time.sleep(QUIET)
        with self._changed:
            return self.all[self._read:]

    def forget(self) -> None:
        with self._changed:
            self.all, self._read = [], 0


class Driver:
    """A backend running in a thread, and the world around it."""

    name = ""

    def __init__(self, events: Events):
        self.events = events
        self.backend = None
        self.thread: threading.Thread | None = None

    def _run(self, backend) -> None:
        self.backend = backend
        self.thread = threading.Thread(target=backend.run, name=f"{self.name}-run", daemon=True)
        self.thread.start()

    def ended(self) -> bool:
        self.thread.join(WAIT)
        return not self.thread.is_alive()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.stop()
            assert self.ended()


class NeonizeDriver(Driver):
    name = "neonize"

    def __init__(self, events: Events, store_dir):
        super().__init__(events)
        self.store_dir = store_dir
        self.go: GoStandIn | None = None

    def start(self, linked: str | None = None) -> None:
        from sessions_app.backends.neonize_backend import NeonizeBackend

        self.backend = NeonizeBackend(SESSION, self.store_dir, self.events)
        self.go = GoStandIn(phone=linked, unregistered=[UNREGISTERED])
        self.thread = run_on(self.backend, self.go)

    def scan(self, phone: str) -> None:
        self.go.pair(phone)

    def lose_connection(self, stay_down: bool = False) -> None:
        self.go.lose_connection(reconnect=not stay_down)

    def come_back(self) -> None:
        self.go.reconnect()

    def unlink_from_phone(self) -> None:
        self.go.unlink_from_phone()

    def replace_stream(self) -> None:
        self.go.replace_stream()

    def ban(self, expire_seconds: int) -> None:
        self.go.ban("SEND_TO_TOO_MANY_PEOPLE", expire_seconds)

    def recipient_gets(self, ids: list[str], to: str) -> None:
        self.go.receipt("DELIVERED", ids, chat=to)

    def recipient_reads(self, ids: list[str], to: str) -> None:
        self.go.receipt("READ", ids, chat=to)

    def own_phone_reads(self, ids: list[str], chat: str) -> None:
        self.go.receipt("READ_SELF", ids, chat=chat, from_me=True)

    def linked(self) -> str | None:
        return self.go.device

    def sent(self) -> list[dict]:
        media = iter(self.go.received_media())
        out = []
        for to, message in self.go.sent:
            if message.HasField("documentMessage") or message.HasField("imageMessage"):
                doc = next(media)
                # The upload's media type is the one its message is decrypted with (received_media).
                assert doc["media_type"] == {"document": 3, "image": 0}[doc["kind"]]
                out.append({"to": doc["to"], "kind": doc["kind"], "file_name": doc["file_name"],
                            "caption": doc["caption"], "mimetype": doc["mimetype"],
                            "sha256": hashlib.sha256(doc["data"]).hexdigest(), "size": len(doc["data"])})
                if doc["mentions"]:  # what the recipient would see highlighted, and the simulator never sends
                    out[-1]["mentions"] = doc["mentions"]
            else:
                out.append({"to": to.User, "kind": "text", "text": message.conversation})
        return out

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.go is not None:
                self.go.close()
                self.backend._cancel_qr_timer()
        assert self.go is None or self.go.unexpected == []


class SimulatorDriver(Driver):
    name = "simulator"

    def start(self, linked: str | None = None) -> None:
        if linked:  # linked before: scanned in an earlier process, whose device is stored
            self._start()
            assert self.events.next().name == "qr"
            self.scan(linked)
            assert [self.events.next().name for _ in range(2)] == ["paired", "connected"]
            self.close()
            self.events.forget()
        self._start()

    def _start(self) -> None:
        store = session_dir(SESSION)
        store.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._run(backend_class("simulator")(SESSION, store, self.events))

    def scan(self, phone: str) -> None:
        self.backend.control("scan", {"phone": phone})

    def lose_connection(self, stay_down: bool = False) -> None:
        if stay_down:  # long enough for the scenario to act while it is down; then it comes back itself
            self.backend.reconnect_delay = 1.5
        self.backend.control("drop", {})

    def come_back(self) -> None:
        pass  # the simulated client reconnects by itself after its delay

    def unlink_from_phone(self) -> None:
        self.backend.control("logout", {})

    def replace_stream(self) -> None:
        self.backend.control("replace", {})

    def ban(self, expire_seconds: int) -> None:
        self.backend.control("ban", {"expire_seconds": expire_seconds})

    def recipient_gets(self, ids: list[str], to: str) -> None:
        pass  # the simulated recipient confirms every message by itself, SIMULATOR_DELIVERY_MS later

    def recipient_reads(self, ids: list[str], to: str) -> None:
        self.backend.control("read", {"to": to})

    def own_phone_reads(self, ids: list[str], chat: str) -> None:
        pass  # no incoming messages to read on the simulated phone: nothing to say either

    def linked(self) -> str | None:
        import json

        from sessions_app import credential_store

        document = credential_store.load_simulator_device(SESSION)
        return json.loads(document)["phone"] if document else None

    def sent(self) -> list[dict]:
        from simulator.models import SimulatorOutbox

        out = []
        for row in SimulatorOutbox.objects.filter(session_id=SESSION).order_by("id"):
            if row.kind == "text":
                out.append({"to": row.to, "kind": "text", "text": row.text})
            else:
                out.append({"to": row.to, "kind": row.kind, "file_name": row.file_name, "caption": row.caption,
                            "mimetype": row.mimetype, "sha256": row.sha256, "size": row.size})
        return out


@pytest.fixture(params=["neonize", "simulator"])
def driver(request, tmp_path, monkeypatch, settings):
    events = Events()
    if request.param == "neonize":
        # create_client installs the session process's unraisable hook; the test process keeps its own.
        monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
        settings.SESSIONS_DIR = tmp_path / "sessions"
        running: Driver = NeonizeDriver(events, tmp_path)
    else:
        request.getfixturevalue("configured")
        settings.SIMULATOR_QR_FIRST_SECONDS = 30
        settings.SIMULATOR_RECONNECT_MS = 100
        settings.SIMULATOR_DELIVERY_MS = 50
        settings.SIMULATOR_SEND_LATENCY_MS = 0
        settings.SIMULATOR_UNREGISTERED = [UNREGISTERED]
        running = SimulatorDriver(events)
    yield running
    running.close()


def connected(driver: Driver) -> Driver:
    driver.start(linked=PHONE)
    assert driver.events.next() == Connected(PHONE)
    return driver


def refused(code: str, call, *args) -> None:
    with pytest.raises(BackendError) as error:
        call(*args)
    assert error.value.code == code, error.value.message


def assert_acknowledged(result: dict) -> None:
    assert set(result) == {"wa_message_id", "timestamp"}
    assert WA_MESSAGE_ID.fullmatch(result["wa_message_id"]), result
    assert_whole_seconds_of_now(result["timestamp"])


def assert_whole_seconds_of_now(timestamp: float) -> None:
    assert isinstance(timestamp, float) and timestamp == int(timestamp) and abs(timestamp - time.time()) < 60


def send_pdf(driver: Driver, to: str = CUSTOMER) -> dict:
    return driver.backend.send_document(to, make_pdf(3000), "F001-77.pdf", "application/pdf", CAPTION)


# ----- linking ------------------------------------------------------------------------------------------

def test_link_by_qr(driver):
    driver.start()
    qr = driver.events.next()
    assert isinstance(qr, Qr) and QR_SHAPE.fullmatch(qr.data), qr
    driver.scan(PHONE)
    assert driver.events.next() == Paired(PHONE)
    assert driver.events.next() == Connected(PHONE)
    assert driver.linked() == PHONE
    assert driver.events.quiet() == []


def test_pairing_code_while_waiting_for_a_link(driver):
    driver.start()
    assert driver.events.next().name == "qr"
    assert PAIRING_CODE.fullmatch(driver.backend.pairing_code("+51 911 111 111"))
    for not_international in ("0987654321", "123456"):  # WhatsApp wants the country code
        refused("pairing_failed", driver.backend.pairing_code, not_international)
    driver.scan(PHONE)  # the code entered on the phone
    assert driver.events.next() == Paired(PHONE)
    assert driver.events.next() == Connected(PHONE)


def test_pairing_code_on_a_connected_session_is_refused(driver):
    connected(driver)
    refused("not_waiting_for_link", driver.backend.pairing_code, CUSTOMER)


def test_a_linked_session_connects_with_its_phone(driver):
    connected(driver)
    assert driver.linked() == PHONE
    assert driver.events.quiet() == []


# ----- sending ------------------------------------------------------------------------------------------

def test_send_document_is_acknowledged_and_arrives_as_given(driver):
    connected(driver)
    pdf = make_pdf(3000)
    result = driver.backend.send_document(CUSTOMER, pdf, "F001-77.pdf", "application/pdf", CAPTION)
    assert_acknowledged(result)
    assert driver.sent() == [{
        "to": CUSTOMER, "kind": "document", "file_name": "F001-77.pdf", "caption": CAPTION,
        "mimetype": "application/pdf", "sha256": hashlib.sha256(pdf).hexdigest(), "size": 3000,
    }]


@pytest.mark.parametrize("make, file_name, mimetype", [
    (make_xlsx, "Cotizacion-77.xlsx", XLSX), (make_docx, "Contrato.docx", DOCX), (make_image, "Producto.png", "image/png"),
])
def test_any_document_arrives_with_its_bytes_type_and_name(driver, make, file_name, mimetype):
    connected(driver)
    data = make()
    assert_acknowledged(driver.backend.send_document(CUSTOMER, data, file_name, mimetype, CAPTION))
    assert driver.sent() == [{
        "to": CUSTOMER, "kind": "document", "file_name": file_name, "caption": CAPTION, "mimetype": mimetype,
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
    }]


@pytest.mark.parametrize("fmt, mimetype", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_send_image_arrives_as_an_image_with_its_bytes_and_caption(driver, fmt, mimetype):
    connected(driver)
    data = make_image(fmt)
    assert_acknowledged(driver.backend.send_image(CUSTOMER, data, mimetype, CAPTION))
    assert driver.sent() == [{
        "to": CUSTOMER, "kind": "image", "file_name": "", "caption": CAPTION, "mimetype": mimetype,
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
    }]


def test_send_text_is_acknowledged_and_arrives_as_written(driver):
    connected(driver)
    assert_acknowledged(driver.backend.send_text(CUSTOMER, CAPTION))
    assert driver.sent() == [{"to": CUSTOMER, "kind": "text", "text": CAPTION}]


def test_check_numbers_answers_for_each_number_as_given(driver):
    connected(driver)
    numbers = [CUSTOMER, "+" + CUSTOMER, UNREGISTERED, "+" + UNREGISTERED]
    assert driver.backend.check_numbers(numbers) == {
        CUSTOMER: True, "+" + CUSTOMER: True, UNREGISTERED: False, "+" + UNREGISTERED: False,
    }


def test_sending_to_a_number_without_whatsapp_is_refused(driver):
    connected(driver)
    refused("not_on_whatsapp", send_pdf, driver, UNREGISTERED)
    refused("not_on_whatsapp", driver.backend.send_text, UNREGISTERED, "hola")
    refused("not_on_whatsapp", driver.backend.send_image, UNREGISTERED, make_image(), "image/png", "")
    assert driver.sent() == []


def test_commands_while_not_connected_are_refused(driver):
    driver.start()
    assert driver.events.next().name == "qr"
    refused("not_connected", send_pdf, driver)
    refused("not_connected", driver.backend.send_text, CUSTOMER, "hola")
    refused("not_connected", driver.backend.send_image, CUSTOMER, make_image(), "image/png", "")
    refused("not_connected", driver.backend.check_numbers, [CUSTOMER])
    refused("not_connected", driver.backend.logout)
    assert driver.sent() == [] and driver.linked() is None


def test_receipts_of_the_recipient_and_none_of_the_own_phone(driver):
    connected(driver)
    sent = send_pdf(driver)["wa_message_id"]
    driver.recipient_gets([sent], CUSTOMER)
    delivered = driver.events.next()
    assert delivered == Receipt((sent,), "delivered", delivered.timestamp)
    assert_whole_seconds_of_now(delivered.timestamp)
    driver.own_phone_reads(["3EB0C0FFEE0000000000AA"], CUSTOMER)  # the customer's message, read on the phone
    driver.recipient_reads([sent], CUSTOMER)
    read = driver.events.next()
    assert read == Receipt((sent,), "read", read.timestamp)
    assert driver.events.quiet() == []


# ----- logging out --------------------------------------------------------------------------------------

def test_logout_while_connected_unlinks_and_says_so(driver):
    connected(driver)
    assert driver.backend.logout() is None
    assert driver.events.next() == LoggedOut("logout")
    assert driver.linked() is None
    refused("not_connected", send_pdf, driver)
    refused("not_waiting_for_link", driver.backend.pairing_code, PHONE)
    assert driver.events.quiet() == []


def test_logout_while_the_connection_is_down_is_refused_and_changes_nothing(driver):
    connected(driver)
    driver.lose_connection(stay_down=True)
    assert driver.events.next() == Disconnected("connection_lost")
    refused("not_connected", driver.backend.logout)
    refused("not_connected", send_pdf, driver)
    assert driver.linked() == PHONE
    driver.come_back()
    assert driver.events.next() == Connected(PHONE)
    assert driver.events.quiet() == []


def test_logged_out_by_the_phone(driver):
    connected(driver)
    driver.unlink_from_phone()
    assert driver.events.next() == LoggedOut("device_removed")
    assert driver.linked() is None
    refused("not_connected", send_pdf, driver)
    assert driver.events.quiet() == []


# ----- losing the connection ----------------------------------------------------------------------------

def test_a_lost_connection_comes_back_by_itself(driver):
    connected(driver)
    driver.lose_connection()
    assert driver.events.next() == Disconnected("connection_lost")
    assert driver.events.next() == Connected(PHONE)
    assert_acknowledged(send_pdf(driver))


def test_stream_replaced_stays_down(driver):
    connected(driver)
    driver.replace_stream()
    assert driver.events.next() == StreamReplaced()
    assert driver.events.quiet() == []  # no reconnect
    refused("not_connected", driver.backend.check_numbers, [CUSTOMER])


def test_temporary_ban_has_whatsapps_code_and_its_expiry(driver):
    connected(driver)
    driver.ban(120)
    assert driver.events.next() == TemporaryBan(101, 120)
    assert driver.events.quiet() == []
    refused("not_connected", send_pdf, driver)


def test_stop_ends_run_and_every_command_is_refused_after(driver):
    connected(driver)
    driver.backend.stop()
    assert driver.ended()
    refused("not_connected", send_pdf, driver)
    refused("not_connected", driver.backend.send_text, CUSTOMER, "hola")
    refused("not_connected", driver.backend.send_image, CUSTOMER, make_image(), "image/png", "")
    refused("not_connected", driver.backend.check_numbers, [CUSTOMER])
    refused("not_connected", driver.backend.pairing_code, PHONE)
    refused("not_connected", driver.backend.logout)
    assert driver.events.quiet() == []
