"""A simulated WhatsApp that behaves, from the outside, like neonize over whatsmeow (NEONIZE.md).

Unlinked, it shows QR codes that rotate (first valid SIMULATOR_QR_FIRST_SECONDS, then
SIMULATOR_QR_NEXT_SECONDS each, SIMULATOR_QR_COUNT in all), then gives up with `qr_timeout`. The
simulated phone and server are driven through SimulatorControl rows (written by the endpoints of
simulator.views, possibly in another process), which the supervisor takes (`take_controls`) and hands to
the session process (`control`), each once: scan links and connects and stores a small device document
(in the session's folder or schema: sessions_app.credential_store), so a new process reconnects without
a QR; drop loses the connection and reconnects by itself; logout removes the device; replace (another
connection took the number) and ban (a temporary ban) end the connection for good, as whatsmeow does;
read is a recipient opening the chat (one read receipt for what was sent to `to` and not read yet).
Sends land in SimulatorOutbox and are "delivered" shortly after. The contract it keeps, with neonize:
sessions_app.backends.base.
"""

import base64
import json
import logging
import queue
import secrets
import threading
import time

from sessions_app import protocol
from sessions_app.backends.base import BackendError, ClientBackend

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# whatsmeow's pairing codes: 8 characters of this alphabet, shown as XXXX-XXXX.
PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
TEMP_BAN_SENT_TO_TOO_MANY_PEOPLE = 101  # WhatsApp's code for the most common temporary ban


def _ensure_django() -> None:
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def new_wa_message_id() -> str:
    """Shaped like whatsmeow's own ids: 3EB0 and 18 upper-case hex digits."""
    return "3EB0" + secrets.token_hex(9).upper()


class SimulatorBackend(ClientBackend):
    name = "simulator"
    PRELOAD_MODULES = ["simulator.django_preload"]

    def __init__(self, session_id, store_dir, emit):
        super().__init__(session_id, store_dir, emit)
        _ensure_django()
        from django.conf import settings

        self.qr_first = settings.SIMULATOR_QR_FIRST_SECONDS
        self.qr_next = settings.SIMULATOR_QR_NEXT_SECONDS
        self.qr_count = settings.SIMULATOR_QR_COUNT
        self.unregistered = {n.strip().lstrip("+") for n in settings.SIMULATOR_UNREGISTERED if n.strip()}
        self.send_latency = settings.SIMULATOR_SEND_LATENCY_MS / 1000
        self.delivery_delay = settings.SIMULATOR_DELIVERY_MS / 1000
        self.reconnect_delay = settings.SIMULATOR_RECONNECT_MS / 1000
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "starting"  # waiting_link, connected, disconnected, stalled, logged_out
        self._phone = ""
        self._controls: queue.SimpleQueue[tuple[str, dict]] = queue.SimpleQueue()
        # Receipts to come, in the order they fall due (the delay is the same for every message).
        self._receipts: queue.SimpleQueue[tuple[float, str, str]] = queue.SimpleQueue()
        self._unread: dict[str, list[str]] = {}  # chat -> ids sent to it that its phone has not read
        threading.Thread(target=self._deliver_receipts, name="simulator-receipts", daemon=True).start()
        # The device's keys stay the same across the rotating codes, as whatsmeow's do.
        self._qr_keys = ",".join(_b64(32) for _ in range(3))

    # -- the client's life, on the session process's main thread ---------------------------------
    def run(self) -> None:
        from django.db import connection

        try:
            phone = self._stored_phone()
            if not phone:
                phone = self._wait_for_link()
                if not phone:
                    return
            # The device is read: only the sends' thread needs the database from here on, so the process
            # holds one connection while it runs, as whatsmeow's pool does (measured: one for a client).
            connection.close()
            self._stay_connected(phone)
        finally:
            connection.close()

    def _wait_for_link(self) -> str | None:
        self._set_state("waiting_link")
        for index in range(self.qr_count):
            self.emit(protocol.Qr(f"2@{_b64(48)},{self._qr_keys}"))
            deadline = time.monotonic() + (self.qr_first if index == 0 else self.qr_next)
            while time.monotonic() < deadline:
                if self._stop.wait(POLL_SECONDS):
                    return None
                action, payload = self._next_control()
                if action == "scan":
                    phone = "".join(ch for ch in str(payload.get("phone") or "") if ch.isdigit())
                    phone = phone or "51900000001"
                    self._store_credentials(phone)
                    self.emit(protocol.Paired(phone))
                    return phone
        self._set_state("disconnected")
        self.emit(protocol.QrTimeout())
        return None

    def _stay_connected(self, phone: str) -> None:
        self._phone = phone
        self._connect()
        reconnect_at = 0.0
        while not self._stop.wait(POLL_SECONDS):
            action, payload = self._next_control()
            if action == "logout" and self._get_state() != "logged_out":
                # The phone removed the device (whatsmeow: stream error 401 device_removed).
                self._forget_credentials()
                self._set_state("logged_out")
                self.emit(protocol.LoggedOut("device_removed"))
                return
            if action == "read" and self._get_state() == "connected":
                self._read(str(payload.get("to") or "").lstrip("+"))
            elif action == "drop" and self._get_state() == "connected":
                self._set_state("disconnected")
                self.emit(protocol.Disconnected("connection_lost"))
                reconnect_at = time.monotonic() + self.reconnect_delay
            elif action in ("replace", "ban") and self._get_state() == "connected":
                # whatsmeow does not reconnect after either: the client stays down until stopped.
                self._set_state("stalled")
                if action == "replace":
                    self.emit(protocol.StreamReplaced())
                else:
                    expire = int(payload.get("expire_seconds") or 3600)
                    self.emit(protocol.TemporaryBan(TEMP_BAN_SENT_TO_TOO_MANY_PEOPLE, expire))
            if self._get_state() == "disconnected" and time.monotonic() >= reconnect_at:
                self._connect()

    def _connect(self) -> None:
        self._set_state("connected")
        self.emit(protocol.Connected(self._phone))

    def control(self, action: str, payload: dict) -> None:
        """What the simulated phone or server does; acted on by run() at its next look."""
        self._controls.put((action, payload or {}))

    def _next_control(self) -> tuple[str | None, dict]:
        try:
            return self._controls.get_nowait()
        except queue.Empty:
            return None, {}

    @staticmethod
    def take_controls(session_ids: list[str]) -> list[tuple[str, dict]]:
        """The unconsumed SimulatorControl rows of these sessions, oldest first, marked consumed."""
        from django.db import transaction
        from django.utils import timezone

        from .models import SimulatorControl

        if not session_ids:
            return []
        with transaction.atomic():
            rows = list(SimulatorControl.objects.filter(session_id__in=session_ids, consumed_at__isnull=True)
                        .order_by("id").values_list("pk", "session_id", "action", "payload"))
            if rows:
                SimulatorControl.objects.filter(pk__in=[r[0] for r in rows]).update(consumed_at=timezone.now())
        return [(sid, {"action": action, "payload": payload or {}}) for _, sid, action, payload in rows]

    # -- stored credentials (a small device document, in the session's folder or schema) -------------
    def _stored_phone(self) -> str | None:
        from sessions_app import credential_store

        try:
            return json.loads(credential_store.load_simulator_device(self.session_id) or "")["phone"] or None
        except (ValueError, KeyError, TypeError):
            return None

    def _store_credentials(self, phone: str) -> None:
        from sessions_app import credential_store

        data = {"phone": phone, "jid": f"{phone}:{secrets.randbelow(90) + 10}@s.whatsapp.net"}
        credential_store.save_simulator_device(self.session_id, json.dumps(data))

    def _forget_credentials(self) -> None:
        from core.db_threads import with_fresh_connection
        from sessions_app import credential_store

        # Called from the command thread too, which has a connection of its own.
        with_fresh_connection(credential_store.delete_simulator_device, self.session_id)

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def _get_state(self) -> str:
        with self._lock:
            return self._state

    # -- commands, on the session process's command thread ------------------------------------------
    def _require_connected(self) -> None:
        if self._stop.is_set() or self._get_state() != "connected":
            raise BackendError("not_connected", "the WhatsApp client is not connected")

    def send_document(self, to: str, data: bytes, file_name: str, mimetype: str, caption: str) -> dict:
        return self._send(to, data, file_name=file_name, caption=caption or "", mimetype=mimetype)

    def send_image(self, to: str, data: bytes, mimetype: str, caption: str) -> dict:
        return self._send(to, data, kind="image", file_name="", caption=caption or "", mimetype=mimetype)

    def send_text(self, to: str, text: str) -> dict:
        return self._send(to, text.encode(), kind="text", text=text, file_name="", mimetype="text/plain")

    def _send(self, to: str, data: bytes, **fields) -> dict:
        import hashlib
        from functools import partial

        from django.utils import timezone

        from core.db_threads import with_fresh_connection

        from .models import SimulatorOutbox

        self._require_connected()
        if self.send_latency:
            time.sleep(self.send_latency)
            self._require_connected()
        to = to.lstrip("+")
        if to in self.unregistered:
            raise BackendError("not_on_whatsapp", f"{to} is not on WhatsApp")
        wa_message_id = new_wa_message_id()
        sent_at = timezone.now()
        # A connection broken by a database outage is replaced.
        with_fresh_connection(partial(
            SimulatorOutbox.objects.create,
            session_id=self.session_id,
            to=to,
            **fields,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            wa_message_id=wa_message_id,
            sent_at=sent_at,
        ))
        with self._lock:
            self._unread.setdefault(to, []).append(wa_message_id)
        self._receipts.put((time.monotonic() + self.delivery_delay, to, wa_message_id))
        # The server's timestamp has whole seconds.
        return {"wa_message_id": wa_message_id, "timestamp": float(int(sent_at.timestamp()))}

    def _deliver_receipts(self) -> None:
        """The recipient's phone confirms each message SIMULATOR_DELIVERY_MS after it was sent. Like
        WhatsApp, one receipt names every message of a chat that it confirms at that moment."""
        pending = None
        while not self._stop.is_set():
            if pending is None:
                try:
                    pending = self._receipts.get(timeout=0.5)
                except queue.Empty:
                    continue
            due, to, wa_message_id = pending
            pending = None
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            chats = {to: [wa_message_id]}
            while pending is None:  # the others due by now
                try:
                    due, to, wa_message_id = self._receipts.get_nowait()
                except queue.Empty:
                    break
                if due > time.monotonic():
                    pending = (due, to, wa_message_id)
                else:
                    chats.setdefault(to, []).append(wa_message_id)
            for ids in chats.values():
                # WhatsApp's receipt timestamps have whole seconds, as its message timestamps do.
                self.emit(protocol.Receipt(tuple(ids), "delivered", float(int(time.time()))))

    def _read(self, to: str) -> None:
        with self._lock:
            ids = self._unread.pop(to, [])
        if ids:
            self.emit(protocol.Receipt(tuple(ids), "read", float(int(time.time()))))

    def check_numbers(self, numbers: list[str]) -> dict[str, bool]:
        self._require_connected()
        return {n: n.lstrip("+") not in self.unregistered for n in numbers}

    def pairing_code(self, phone: str) -> str:
        if self._stop.is_set():
            raise BackendError("not_connected", "the WhatsApp client is not running")
        if self._get_state() != "waiting_link":
            raise BackendError("not_waiting_for_link", "the session is not waiting to be linked")
        digits = "".join(ch for ch in phone if ch.isdigit())
        if len(digits) <= 6 or digits.startswith("0"):  # what whatsmeow's PairPhone refuses
            raise BackendError("pairing_failed", "international phone number required (with country code)")
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
        return f"{code[:4]}-{code[4:]}"

    def logout(self) -> None:
        # Like whatsmeow's Logout(): WhatsApp must be told, so only while connected; then the device is
        # unlinked and deleted. The client stays down until stopped, as neonize's does.
        self._require_connected()
        self._forget_credentials()
        self._set_state("logged_out")
        self.emit(protocol.LoggedOut("logout"))

    def stop(self) -> None:
        self._stop.set()
