"""The client-backend boundary: one WhatsApp client inside one session process.

Two implementations behave the same from the outside: `neonize` (real WhatsApp through neonize 0.5.2)
and `simulator` (no network). The session process (sessions_app.session_process) owns exactly one
backend, runs `run()` on its main thread, executes commands from the supervisor on another thread, and
forwards every event the backend emits through the pipe (formats in sessions_app.protocol).
"""

import abc
from collections.abc import Callable
from pathlib import Path


class BackendError(Exception):
    """A command failed; `code` is machine-readable (not_connected, not_on_whatsapp, timeout, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ClientBackend(abc.ABC):
    name: str = ""

    def __init__(self, session_id: str, store_dir: Path, emit: Callable[[dict], None]):
        self.session_id = session_id  # already validated
        self.store_dir = store_dir  # sessions/<id>/, created with mode 0700 before the backend starts
        self.emit = emit  # thread-safe; takes an event dict of sessions_app.protocol

    @abc.abstractmethod
    def run(self) -> None:
        """Connect and block for the client's whole life, emitting events. Returns after stop().
        Raises BackendError when the connection cannot be made (the process then exits and the
        supervisor starts a new one after a backoff, so nothing a failed attempt leaked survives)."""

    @abc.abstractmethod
    def send_document(self, to: str, data: bytes, file_name: str, mimetype: str, caption: str) -> dict:
        """Send and wait for the server's ack: {"wa_message_id": str, "timestamp": float}."""

    @abc.abstractmethod
    def send_text(self, to: str, text: str) -> dict:
        """Send a text message and wait for the server's ack: {"wa_message_id": str, "timestamp": float}."""

    @abc.abstractmethod
    def check_numbers(self, numbers: list[str]) -> dict[str, bool]:
        """Which of these numbers (digits with country code, no '+') are on WhatsApp."""

    @abc.abstractmethod
    def pairing_code(self, phone: str) -> str:
        """Link by code instead of QR; valid while run() is waiting for a link."""

    @abc.abstractmethod
    def logout(self) -> None:
        """Unlink the device and delete its credentials."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Make run() return soon."""

    # A backend whose outside world is simulated (the simulator's phone) can be driven through the
    # supervisor: `take_controls(session_ids)` (run on the supervisor's database thread) returns the
    # pending actions [(session_id, {"action": str, "payload": dict})], each handed to that session's
    # process once, where `control(action, payload)` acts on it.
    take_controls: Callable[[list[str]], list[tuple[str, dict]]] | None = None

    def control(self, action: str, payload: dict) -> None:
        raise BackendError("unknown_command", f"{self.name} cannot be controlled")
