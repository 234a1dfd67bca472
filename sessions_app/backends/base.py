"""The client-backend contract: one WhatsApp client inside one session process.

Two backends keep it: `neonize` (real WhatsApp through neonize 0.5.2, whatsmeow underneath) and
`simulator` (no network; where they could differ it does what neonize really does, ../shared/NEONIZE.md).
tests/sessions_app/test_backend_conformance.py drives both through the same scenarios and expects the
same events, results and error codes: a difference between them is a bug in one of them.

The session process (sessions_app.session_process) owns one backend, runs `run()` on its main thread,
runs the commands (the methods below) on another thread, and forwards every event the backend emits
through the pipe. A command that fails raises BackendError; its `code` reaches
the supervisor as the reply's `error_code`. Every command raises `not_connected` once stop() was called.

Events, the sessions_app.protocol dataclasses a backend passes to `emit` (their fields in brackets):
    Qr(data)         "2@<ref>,<noise key>,<identity key>,<secret>"  a code to scan while not linked;
                     a new one replaces it (the first lives 60 s, each next 20 s, about 6 in all)
    QrTimeout()      the codes ran out unscanned; the client gives up                       (terminal)
    Paired(phone)    "51987654321"  the phone scanned a code or entered a pairing code; the device is
                     stored and Connected follows
    Connected(phone) "51987654321", or None when the store does not know it yet
    Disconnected(reason)  "connection_lost"  transient: the client reconnects by itself
    LoggedOut(reason)     "logout" (the logout command), "device_removed" (the phone unlinked this
                     device: whatsmeow's 401), "main_device_gone" (403), "unknown_logout" (406).
                     The device is unlinked and its credentials are deleted; no reconnect      (terminal)
    StreamReplaced() another connection took the number; no reconnect                       (terminal)
    TemporaryBan(code, expire_seconds)  code: WhatsApp's (101 sent to too many people, 102 blocked by
                     users, 103 created too many groups, 104 sent too many of the same message, 106
                     broadcast list), expire_seconds: int; no reconnect                     (terminal)
    ConnectFailure(reason, message)  reason: whatsmeow's, lower case ("service_unavailable", ...);
                     the server refused the connection
    KeepaliveTimeout() / KeepaliveRestored()   the server stopped answering pings / answers again
    Receipt(message_ids, type, timestamp)  message_ids: tuple of str, type: "delivered" | "read" |
                     "played", timestamp: float (whole seconds): the recipient's phone about messages
                     this session sent. What this account's own devices do (reading or playing an
                     incoming message) is no receipt.
    Incoming(wa_message_id, chat, sender, phone, push_name, timestamp, type, text, caption, file_name,
                     mimetype, size, sha256, media_ref, is_group)  a message someone wrote to this number
                     (fields: sessions_app.protocol.Incoming). Only one-to-one chats unless
                     INCOMING_INCLUDE_GROUPS; never the account's own messages or status broadcasts.
                     WhatsApp may deliver one again (after a reconnect): same wa_message_id.
    Error(message)   something failed inside the backend (e.g. in an event handler); the client goes on
After a terminal event the client stays down until stop(): commands that need a connection raise
`not_connected`. The supervisor's policy for each event is in sessions_app.worker.policy.
"""

import abc
from collections.abc import Callable
from pathlib import Path

from ..protocol import BackendEvent


class BackendError(Exception):
    """A command failed; `code` is machine-readable (see each command of ClientBackend)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ClientBackend(abc.ABC):
    name: str = ""
    # Dials out to WhatsApp: its process gets the session's proxy (sessions_app.proxies) in HTTPS_PROXY.
    USES_PROXY: bool = False

    def __init__(self, session_id: str, store_dir: Path, emit: Callable[[BackendEvent], None]):
        self.session_id = session_id  # already validated
        self.store_dir = store_dir  # sessions/<id>/, created with mode 0700 before the backend starts
        self.emit = emit  # thread-safe; takes a BackendEvent (module docstring)

    @abc.abstractmethod
    def run(self) -> None:
        """Connect and block for the client's whole life, emitting events: Qr codes while not linked,
        Connected at once when the store holds a device. Returns after stop() (and may return by
        itself after qr_timeout or logged_out). Raises BackendError("connect_failed") when the
        connection cannot be made (the process then exits and the supervisor starts a new one after a
        backoff, so nothing a failed attempt leaked survives)."""

    @abc.abstractmethod
    def send_document(self, to: str, data: bytes, file_name: str, mimetype: str, caption: str) -> dict:
        """Send `data` as a document (file name, mimetype and caption as given: nothing in the caption
        becomes a mention or starts a lookup) and wait for the server's ack.
        -> {"wa_message_id": "3EB0...", "timestamp": float (the server's, whole unix seconds)}.
        Errors: not_connected; not_on_whatsapp (the number has no WhatsApp); check_failed (the number
        could not be looked up); send_failed (the upload or the send failed: may be retried)."""

    @abc.abstractmethod
    def send_image(self, to: str, data: bytes, mimetype: str, caption: str) -> dict:
        """Send `data` (JPEG, PNG or WebP, of `mimetype`) as an image message with its caption (no mentions,
        as send_document); result and errors as send_document."""

    @abc.abstractmethod
    def send_text(self, to: str, text: str) -> dict:
        """Send `text` as written and wait for the server's ack; result and errors as send_document."""

    @abc.abstractmethod
    def check_numbers(self, numbers: list[str]) -> dict[str, bool]:
        """Which of these numbers (digits with country code, '+' tolerated) are on WhatsApp, keyed as
        given. Errors: not_connected; check_failed."""

    @abc.abstractmethod
    def pairing_code(self, phone: str) -> str:
        """Link by code instead of QR: -> "XXXX-XXXX" (8 of 123456789ABCDEFGHJKLMNPQRSTVWXYZ), to enter on
        the phone of `phone`; `paired` and `connected` follow once it is entered. Only while waiting for
        a link (after the first `qr`, before `paired`). Errors: not_waiting_for_link (not linking:
        linked, connected, logged out, ...); pairing_failed (WhatsApp refused, e.g. a number without its
        country code); not_connected (stopped)."""

    @abc.abstractmethod
    def logout(self) -> None:
        """Unlink the device and delete its credentials; emits logged_out (reason "logout"). WhatsApp
        must be told, so only while connected. Errors: not_connected (nothing changed: the caller may
        delete the credentials itself, as the supervisor does); logout_failed (WhatsApp refused)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Make run() return soon; no connection event follows."""

    # A backend whose outside world is simulated (the simulator's phone) can be driven through the
    # supervisor: `take_controls(session_ids)` (run on the supervisor's database thread) returns the
    # pending actions [(session_id, {"action": str, "payload": dict})], each handed to that session's
    # process once, where `control(action, payload)` acts on it.
    take_controls: Callable[[list[str]], list[tuple[str, dict]]] | None = None

    def control(self, action: str, payload: dict) -> None:
        raise BackendError("unknown_command", f"{self.name} cannot be controlled")
