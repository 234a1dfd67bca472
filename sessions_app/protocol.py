"""What crosses the pipe between the supervisor and a session process: one frozen dataclass per command
and per event, the one definition both ends use (pickled by multiprocessing.Connection). Each side
dispatches on the message's type; anything that is not one of these (a crashed or foreign process's
bytes) is refused. `name` is the message's name in logs and in the backend contract.

This module is imported by the forkserver before Django is set up: it imports nothing of Django.

Supervisor -> session process (commands). A Request carries `req_id` and gets exactly one Reply. The
backend's commands, with their results and error codes, are the contract of sessions_app.backends.base:
    SendDocument(to, data, file_name, mimetype, caption, ref)  -> result {"wa_message_id": str, "timestamp": float}
    SendImage(to, data, mimetype, caption, ref)                -> result as SendDocument
    SendText(to, text, ref)                                    -> result as SendDocument
    CheckNumbers(numbers)                                      -> result {"51987654321": True, ...}
    PairingCode(phone)                                         -> result {"code": "ABCD-EFGH"}
    Logout()                                                   -> result {}
    LookupSent(refs)                                           -> result {ref: {"wa_message_id", "timestamp"}}
    DownloadMedia(media_ref, max_bytes)                        -> result {"data": bytes}
        (an Incoming event's media, fetched through the session; run on a thread of its own, so a
        download never holds up a send)
        (a send may carry `ref`, the caller's own message id; the session journals it once WhatsApp
        acknowledged the send, so after a crash the caller can ask before resending)
    Control(action, payload)   no reply: the simulated phone's action (ClientBackend.control)
    IncomingStored(seqs)       no reply: these Incoming events (by `seq`) are committed; the process drops
                               them from its journal, which it replays at start until they are
    Stop()                     no reply: the process exits
    Lease(until)               no reply: the session lease holds until then, a time of time.monotonic()
                               (the machine's clock); unrenewed, the process stops itself

Session process -> supervisor (events):
    Reply(req_id, ok, result, error, error_code)   error_code: the BackendError's code, "unknown_command", "error"
    Heartbeat()                                    every SESSION_HEARTBEAT_SECONDS
    every BackendEvent a backend emits (their fields and reasons: sessions_app.backends.base): Qr, QrTimeout,
    Paired, Connected, Disconnected, LoggedOut, StreamReplaced, TemporaryBan, ConnectFailure,
    KeepaliveTimeout, KeepaliveRestored, Receipt, Incoming, Error; and ConnectFailure with the BackendError's code
    as reason when run() could not connect.

Channel layer, group `session.<id>` (see group_name), after the database commit (not pipe messages):
    {"type": "session.event", "event": "status" | "qr" | "error", "data": str, "reason": str (optional)}
    The WebSocket consumer forwards {"event": ..., "data": ..., ["reason": ...]} to the browser.
"""

from dataclasses import dataclass, replace
from typing import Any, ClassVar


def group_name(session_id: str) -> str:
    return f"session.{session_id}"


class Message:
    __slots__ = ()
    name: ClassVar[str]


class Command(Message):
    __slots__ = ()


class Request(Command):
    """A command with exactly one Reply (matched by req_id)."""

    __slots__ = ()
    req_id: int | None

    def numbered(self, req_id: int) -> "Request":
        return replace(self, req_id=req_id)


class Event(Message):
    __slots__ = ()


class BackendEvent(Event):
    """An event of the backend contract (sessions_app.backends.base), forwarded as it was emitted."""

    __slots__ = ()


# -- commands ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SendDocument(Request):
    name: ClassVar[str] = "send_document"
    to: str
    data: bytes
    file_name: str = "document.pdf"
    mimetype: str = "application/pdf"
    caption: str = ""
    ref: str | None = None
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class SendImage(Request):
    name: ClassVar[str] = "send_image"
    to: str
    data: bytes
    mimetype: str
    caption: str = ""
    ref: str | None = None
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class SendText(Request):
    name: ClassVar[str] = "send_text"
    to: str
    text: str
    ref: str | None = None
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class CheckNumbers(Request):
    name: ClassVar[str] = "check_numbers"
    numbers: tuple[str, ...]
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class PairingCode(Request):
    name: ClassVar[str] = "pairing_code"
    phone: str
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class Logout(Request):
    name: ClassVar[str] = "logout"
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class LookupSent(Request):
    name: ClassVar[str] = "lookup_sent"
    refs: tuple[str, ...]
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class DownloadMedia(Request):
    name: ClassVar[str] = "download_media"
    media_ref: bytes
    max_bytes: int
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingStored(Command):
    name: ClassVar[str] = "incoming_stored"
    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Control(Command):
    name: ClassVar[str] = "control"
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stop(Command):
    name: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Lease(Command):
    name: ClassVar[str] = "lease"
    until: float


# -- events -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reply(Event):
    name: ClassVar[str] = "reply"
    req_id: int | None
    ok: bool
    result: dict | None = None
    error: str | None = None
    error_code: str | None = None

    @classmethod
    def success(cls, req_id: int | None, result: dict) -> "Reply":
        return cls(req_id, True, result)

    @classmethod
    def failure(cls, req_id: int | None, error: str, error_code: str) -> "Reply":
        return cls(req_id, False, None, error, error_code)


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    name: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, slots=True)
class Qr(BackendEvent):
    name: ClassVar[str] = "qr"
    data: str


@dataclass(frozen=True, slots=True)
class QrTimeout(BackendEvent):
    name: ClassVar[str] = "qr_timeout"


@dataclass(frozen=True, slots=True)
class Paired(BackendEvent):
    name: ClassVar[str] = "paired"
    phone: str | None


@dataclass(frozen=True, slots=True)
class Connected(BackendEvent):
    name: ClassVar[str] = "connected"
    phone: str | None


@dataclass(frozen=True, slots=True)
class Disconnected(BackendEvent):
    name: ClassVar[str] = "disconnected"
    reason: str = "connection_lost"


@dataclass(frozen=True, slots=True)
class LoggedOut(BackendEvent):
    name: ClassVar[str] = "logged_out"
    reason: str


@dataclass(frozen=True, slots=True)
class StreamReplaced(BackendEvent):
    name: ClassVar[str] = "stream_replaced"


@dataclass(frozen=True, slots=True)
class TemporaryBan(BackendEvent):
    name: ClassVar[str] = "temporary_ban"
    code: int
    expire_seconds: int


@dataclass(frozen=True, slots=True)
class ConnectFailure(BackendEvent):
    name: ClassVar[str] = "connect_failure"
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class KeepaliveTimeout(BackendEvent):
    name: ClassVar[str] = "keepalive_timeout"


@dataclass(frozen=True, slots=True)
class KeepaliveRestored(BackendEvent):
    name: ClassVar[str] = "keepalive_restored"


@dataclass(frozen=True, slots=True)
class Receipt(BackendEvent):
    name: ClassVar[str] = "receipt"
    message_ids: tuple[str, ...]
    type: str  # "delivered" | "read" | "played"
    timestamp: float


@dataclass(frozen=True, slots=True)
class Incoming(BackendEvent):
    name: ClassVar[str] = "incoming"
    wa_message_id: str
    chat: str  # the chat's JID: "51987654321@s.whatsapp.net", "...@g.us" for a group
    sender: str  # the sender's JID as WhatsApp gave it, "...@lid" for a hidden one
    phone: str | None  # the sender's number (digits, country code); None: an @lid the store cannot map
    push_name: str
    timestamp: float  # WhatsApp's, whole unix seconds
    type: str  # text, document, image, audio, video, sticker, location, contacts, reaction, other
    text: str = ""  # a text's body (also a reaction's emoji, a location's name)
    caption: str = ""
    file_name: str = ""
    mimetype: str = ""
    size: int | None = None  # the media file's length as WhatsApp declares it
    sha256: str = ""  # hex of the media file's sha256 as WhatsApp declares it
    media_ref: bytes = b""  # what download_media needs to fetch the file; empty: no media
    is_group: bool = False
    seq: int = 0  # the session process's journal number (set by the process, not by the backend)


@dataclass(frozen=True, slots=True)
class Error(BackendEvent):
    name: ClassVar[str] = "error"
    message: str
