"""The real WhatsApp client: one neonize 0.5.2 client, inside its own session process.

neonize is imported lazily (in create_client) so that importing this module, as the supervisor does to
read PRELOAD_MODULES, loads neither neonize nor its Go library. The facts this code works around are in
../shared/NEONIZE.md: connect() blocks for the client's life, handlers run on Go's thread and their
exceptions are swallowed by ctypes, get_me() before connecting aborts the process, QR exhaustion is only
printed, and Go's client maps are not locked (so no Go call while the client is being set up or stopped).
"""

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connections

from sessions_app import credential_store, protocol
from sessions_app.backends import neonize_events
from sessions_app.backends.base import BackendError, ClientBackend
from core.ttl_cache import TtlCache

log = logging.getLogger(__name__)

# The JID WhatsApp answered for a number is kept a day, for the 10,000 numbers sent to most recently.
JID_TTL_SECONDS = 86400.0
JID_CACHE_SIZE = 10_000
# Terminal events end the connection for good: whatsmeow does not reconnect after them, so a later
# "disconnected" is not the transient loss that protocol event stands for.
TERMINAL_EVENTS = {"logged_out", "stream_replaced", "temporary_ban", "qr_timeout"}


class NeonizeBackend(ClientBackend):
    name = "neonize"
    USES_PROXY = True  # whatsmeow reads HTTPS_PROXY (socks5, http or https) from its startup environment
    # Imported once by the forkserver, with neonize's Go library left out (see neonize_runtime).
    PRELOAD_MODULES: list[str] = [
        "sessions_app.backends.neonize_runtime",
        "sessions_app.backends.neonize_events",
        "sessions_app.backends.neonize_backend",
    ]
    # WhatsApp's QR codes: the first is valid 60 s, each next one 20 s, about 6 in all. neonize only
    # prints when they run out, so a code not followed by another within its life plus the grace means
    # the link timed out.
    QR_FIRST_SECONDS = 60.0
    QR_NEXT_SECONDS = 20.0
    QR_GRACE_SECONDS = 5.0
    # How long stop() lets a command that is inside a Go call finish before cancelling the client.
    STOP_WAIT_SECONDS = 10.0

    def __init__(self, session_id: str, store_dir: Path, emit: Callable[[protocol.BackendEvent], None]):
        super().__init__(session_id, store_dir, emit)
        # whatsmeow's store (sessions_app.credential_store): a SQLite path, or a lib/pq URL holding the
        # database password (never logged). Resolved in create_client, in the session process.
        self.store_location: str | None = None
        self.client: Any = None
        self._lock = threading.Lock()
        self._phone: str | None = None
        self._connected = False
        self._awaiting_link = False
        self._terminal = False
        self._stopping = False
        self._stop_sent = False
        self._calls = 0
        self._qr_count = 0
        self._qr_timer: threading.Timer | None = None
        self._jids = TtlCache(JID_TTL_SECONDS, JID_CACHE_SIZE)  # number -> JID WhatsApp answered for it

    # ----- lifecycle -------------------------------------------------------------------------------

    def create_client(self) -> Any:
        """Load the Go library, create the client and register every handler; run() calls this.
        Separate so tests can drive the real client's dispatcher without connecting."""
        from sessions_app.backends import neonize_runtime

        neonize_runtime.load_go_library()
        from neonize.client import NewClient
        from neonize.events import (
            ConnectedEv,
            ConnectFailureEv,
            DisconnectedEv,
            KeepAliveRestoredEv,
            KeepAliveTimeoutEv,
            LoggedOutEv,
            PairStatusEv,
            ReceiptEv,
            StreamReplacedEv,
            TemporaryBanEv,
        )

        sys.unraisablehook = self._on_unraisable
        self.store_location = credential_store.location(self.session_id)
        if credential_store.mode() == credential_store.POSTGRES:
            # The schema is there; whatsmeow opens connections of its own, this process needs none.
            connections["default"].close()
        log.info("session %s: whatsmeow store %s", self.session_id, credential_store.redacted(self.store_location))
        # The session id is the client's key in Go's maps (not the location: it holds a password).
        client = NewClient(self.store_location, uuid=self.session_id)
        handlers: dict[type, Callable[[Any], None]] = {
            PairStatusEv: self._on_pair_status,
            ConnectedEv: self._on_connected,
            DisconnectedEv: self._on_disconnected,
            LoggedOutEv: lambda ev: self._emit_terminal(neonize_events.logged_out(ev)),
            StreamReplacedEv: lambda ev: self._emit_terminal(protocol.StreamReplaced()),
            TemporaryBanEv: lambda ev: self._emit_terminal(neonize_events.temporary_ban(ev)),
            ConnectFailureEv: self._on_connect_failure,
            KeepAliveTimeoutEv: lambda ev: self.emit(protocol.KeepaliveTimeout()),
            KeepAliveRestoredEv: lambda ev: self.emit(protocol.KeepaliveRestored()),
            ReceiptEv: self._on_receipt,
        }
        for event_type, handler in handlers.items():
            client.event(event_type)(self._guarded(event_type.__name__, handler))
        client.event.qr(self._guarded("QR", self._on_qr))
        self.client = client
        return client

    def run(self) -> None:
        from neonize.events import event as neonize_stop_event
        from neonize.exc import NeonizeError

        client = self.client or self.create_client()
        # connect() polls this process-wide event; stop() sets it, so a stop that lands while connect()
        # is starting is not lost. Cleared first: a previous client in this process may have set it.
        neonize_stop_event.clear()
        if self._stopping:
            return
        started = time.monotonic()
        try:
            client.connect()
        except NeonizeError as exc:
            if self._stopping:
                # Cancelled on purpose (stop, QR timeout): not a failed connect to retry on a backoff.
                log.info("session %s: client ended while stopping: %s", self.session_id, exc)
                return
            raise BackendError("connect_failed", str(exc)) from exc
        finally:
            self._cancel_qr_timer()
            with self._lock:
                self._connected = False
        log.info("session %s: client ended after %.1f s", self.session_id, time.monotonic() - started)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._connected = False
            busy = self._calls > 0
        self._cancel_qr_timer()
        if busy:
            # The last command out cancels the client; this timer only covers one that never returns.
            timer = threading.Timer(self.STOP_WAIT_SECONDS, self._cancel_client)
            timer.daemon = True
            timer.start()
        else:
            self._cancel_client()

    def _cancel_client(self) -> None:
        from neonize.events import event as neonize_stop_event

        with self._lock:
            if self._stop_sent:
                return
            self._stop_sent = True
        # connect() notices within 0.2 s, calls Stop on its own thread and returns.
        neonize_stop_event.set()

    # ----- commands (called from the session process's command thread) -----------------------------

    def send_document(self, to: str, data: bytes, file_name: str, mimetype: str, caption: str) -> dict:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import DocumentMessage
        from neonize.utils.enum import MediaType

        return self._send_media(to, data, MediaType.MediaDocument, lambda upload: {"documentMessage": DocumentMessage(
            **upload, mimetype=mimetype, fileName=file_name, caption=caption or None)})

    def send_image(self, to: str, data: bytes, mimetype: str, caption: str) -> dict:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ImageMessage
        from neonize.utils.enum import MediaType

        return self._send_media(to, data, MediaType.MediaImage, lambda upload: {"imageMessage": ImageMessage(
            **upload, mimetype=mimetype, caption=caption or None)})

    def _send_media(self, to: str, data: bytes, media_type, message_fields) -> dict:
        """Upload `data`, then send the message `message_fields(upload fields)` builds. Built here, not by
        neonize's send_document / send_image: those scan the caption for "@digits" (mentions made up) and
        "...@g.us" (a group lookup over the network on every send)."""
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        with self._go_call(need_connection=True):
            jid = self._resolve(to)
            try:
                upload = self.client.upload(data, media_type)
                fields = {"URL": upload.url, "directPath": upload.DirectPath, "mediaKey": upload.MediaKey,
                          "fileEncSHA256": upload.FileEncSHA256, "fileSHA256": upload.FileSHA256,
                          "fileLength": upload.FileLength}
                response = self.client.send_message(jid, Message(**message_fields(fields)))
            except Exception as exc:
                raise BackendError("send_failed", f"{type(exc).__name__}: {exc}") from exc
        return {"wa_message_id": response.ID, "timestamp": float(response.Timestamp)}

    def send_text(self, to: str, text: str) -> dict:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        with self._go_call(need_connection=True):
            jid = self._resolve(to)
            try:
                # A Message, not a str: given a str, neonize turns "@digits" into mentions; the
                # text goes out as written (what send_message builds for plain text).
                response = self.client.send_message(jid, Message(conversation=text))
            except Exception as exc:
                raise BackendError("send_failed", f"{type(exc).__name__}: {exc}") from exc
        return {"wa_message_id": response.ID, "timestamp": float(response.Timestamp)}

    def check_numbers(self, numbers: list[str]) -> dict[str, bool]:
        with self._go_call(need_connection=True):
            found = self._lookup(numbers)
        return {number: _digits(number) in found for number in numbers}

    def pairing_code(self, phone: str) -> str:
        digits = _digits(phone)
        with self._go_call(need_connection=False):
            if not self._awaiting_link:
                # PairPhone needs the client waiting for a link (after its first QR), not linked yet.
                raise BackendError("not_waiting_for_link", "the session is not waiting for a link")
            try:
                return self.client.PairPhone(digits, True)
            except Exception as exc:
                raise BackendError("pairing_failed", f"{type(exc).__name__}: {exc}") from exc

    def logout(self) -> None:
        with self._go_call(need_connection=True):
            try:
                self.client.logout()
            except Exception as exc:
                raise BackendError("logout_failed", f"{type(exc).__name__}: {exc}") from exc
        # whatsmeow's Logout() unlinks and deletes the device but emits no event (its LoggedOut is for
        # logouts from elsewhere): the contract announces it.
        self._emit_terminal(protocol.LoggedOut("logout"))

    def _go_call(self, need_connection: bool) -> "_GoCall":
        return _GoCall(self, need_connection)

    def _lookup(self, numbers: list[str]) -> dict[str, Any]:
        """The JIDs WhatsApp answered for those numbers that are on it, by their digits (is_on_whatsapp
        wants each number once, with a leading '+')."""
        asked = dict.fromkeys(_digits(n) for n in numbers)
        try:
            answers = self.client.is_on_whatsapp(*("+" + d for d in asked))
        except Exception as exc:
            raise BackendError("check_failed", f"{type(exc).__name__}: {exc}") from exc
        return {_digits(a.Query): a.JID for a in answers if a.IsIn and _digits(a.Query) in asked}

    def _resolve(self, to: str) -> Any:
        """The JID to send to; WhatsApp's answer can differ from the number (e.g. Mexico's extra 1)."""
        jid = self._jids.get(to)
        if jid is None:
            jid = self._lookup([to]).get(_digits(to))
            if jid is None:
                raise BackendError("not_on_whatsapp", f"{to} is not on WhatsApp")
            self._jids.put(to, jid)
        return jid

    # ----- events (called on Go's thread, one at a time) --------------------------------------------

    def _guarded(self, name: str, handler: Callable[[Any], None]) -> Callable[[Any, Any], None]:
        """ctypes swallows what a handler raises; turn it into an error event instead."""

        def call(_client: Any, event: Any) -> None:
            try:
                handler(event)
            except Exception as exc:
                log.exception("session %s: %s handler failed", self.session_id, name)
                self._emit_error(f"{name} handler failed: {type(exc).__name__}: {exc}")

        return call

    def _on_unraisable(self, unraisable: Any) -> None:
        """Exceptions raised where no handler can catch them, e.g. in neonize's own dispatcher."""
        exc = unraisable.exc_value
        log.error(
            "session %s: %s", self.session_id, unraisable.err_msg or "unraisable exception",
            exc_info=(unraisable.exc_type, exc, unraisable.exc_traceback),
        )
        detail = f": {exc}" if str(exc) else ""
        self._emit_error(f"{unraisable.exc_type.__name__} in a neonize callback{detail}")

    def _emit_error(self, message: str) -> None:
        try:
            self.emit(protocol.Error(message))
        except Exception:
            log.exception("session %s: could not report an error event", self.session_id)

    def _emit_terminal(self, event: protocol.BackendEvent) -> None:
        with self._lock:
            first = not self._terminal
            self._terminal = True
            self._connected = False
            self._awaiting_link = False
        self._cancel_qr_timer()
        if first:
            self.emit(event)

    def _on_qr(self, data: bytes) -> None:
        with self._lock:
            if self._stopping or self._terminal:
                return
            self._qr_count += 1
            self._awaiting_link = True
            life = self.QR_FIRST_SECONDS if self._qr_count == 1 else self.QR_NEXT_SECONDS
        self._start_qr_timer(life + self.QR_GRACE_SECONDS)
        self.emit(protocol.Qr(data.decode()))

    def _start_qr_timer(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self._on_qr_expired)
        timer.daemon = True
        with self._lock:
            previous, self._qr_timer = self._qr_timer, timer
        if previous is not None:
            previous.cancel()
        timer.start()

    def _cancel_qr_timer(self) -> None:
        with self._lock:
            timer, self._qr_timer = self._qr_timer, None
        if timer is not None:
            timer.cancel()

    def _on_qr_expired(self) -> None:
        with self._lock:
            expired = self._awaiting_link and not self._stopping
        if expired:
            self._emit_terminal(protocol.QrTimeout())
            # whatsmeow gives up but neonize's connect() may keep waiting; end it so run() returns.
            self.stop()

    def _on_pair_status(self, event: Any) -> None:
        message = neonize_events.paired(event)
        if isinstance(message, protocol.Paired):
            with self._lock:
                self._awaiting_link = False
                self._phone = message.phone or self._phone
            self._cancel_qr_timer()
        self.emit(message)

    def _on_connected(self, _event: Any) -> None:
        with self._lock:
            if self._stopping:
                return
            self._connected = True
            self._awaiting_link = False
            self._terminal = False
        self._cancel_qr_timer()
        self.emit(protocol.Connected(self._own_phone()))

    def _own_phone(self) -> str | None:
        me = self.client.me  # set by neonize from the device event Go sends before connecting
        if me is not None and me.HasField("JID"):
            self._phone = neonize_events.jid_user(me.JID) or self._phone
        if self._phone is None and self.client.is_connected:
            # Only once connected: get_me() on a client that is not aborts the whole process.
            self._phone = neonize_events.jid_user(self.client.get_me().JID)
        return self._phone

    def _on_disconnected(self, _event: Any) -> None:
        with self._lock:
            self._connected = False
            quiet = self._terminal or self._stopping
        if not quiet:
            # whatsmeow announces only a connection it lost (not one it closed), and reconnects by itself.
            self.emit(protocol.Disconnected("connection_lost"))

    def _on_connect_failure(self, event: Any) -> None:
        message = neonize_events.connect_failure(event)
        if isinstance(message, protocol.LoggedOut):
            self._emit_terminal(message)
        else:
            self.emit(message)

    def _on_receipt(self, event: Any) -> None:
        message = neonize_events.receipt(event)
        if message is not None:
            self.emit(message)


class _GoCall:
    """Counts a command that calls into Go, so stop() can wait for it; refuses it once stopping."""

    def __init__(self, backend: NeonizeBackend, need_connection: bool):
        self.backend = backend
        self.need_connection = need_connection

    def __enter__(self) -> None:
        b = self.backend
        with b._lock:
            if b.client is None or b._stopping:
                raise BackendError("not_connected", "the session is not running")
            if self.need_connection and not b._connected:
                raise BackendError("not_connected", "the session is not connected to WhatsApp")
            b._calls += 1

    def __exit__(self, *exc_info: object) -> None:
        b = self.backend
        with b._lock:
            b._calls -= 1
            last_out = b._stopping and b._calls == 0
        if last_out:
            b._cancel_client()


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())
