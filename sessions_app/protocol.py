"""What crosses the pipe between the supervisor and a session process, and what goes to the channel layer.

Every message is a plain dict (pickled by multiprocessing.Connection), so both sides stay simple and a
message from a crashed or foreign process can be checked with `kind(msg)`.

Supervisor -> session process (commands). Those with `req_id` get exactly one `reply`. The backend's
commands, with their results and error codes, are the contract of sessions_app.backends.base:
    {"cmd": "send_document", "req_id": int, "to": "51987654321", "data": bytes, "file_name": str,
     "mimetype": "application/pdf", "caption": str}
        -> reply result {"wa_message_id": str, "timestamp": float}
    {"cmd": "send_text", "req_id": int, "to": "51987654321", "text": str}  -> reply as send_document
    {"cmd": "check_numbers", "req_id": int, "numbers": ["51987654321", ...]}
        -> reply result {"51987654321": true, ...}
    {"cmd": "pairing_code", "req_id": int, "phone": "51987654321"}  -> reply result {"code": "ABCD-EFGH"}
    {"cmd": "logout", "req_id": int}                                -> reply result {}
    {"cmd": "lookup_sent", "req_id": int, "refs": [str]}            -> reply result {ref: {"wa_message_id", "timestamp"}}
        (send_document and send_text may carry "ref", the caller's own message id; the session journals it once
        WhatsApp acknowledged the send, so after a crash the caller can ask before resending)
    {"cmd": "control", "action": str, "payload": dict}              (no reply; the simulated phone's action,
                                                                     ClientBackend.control)
    {"cmd": "stop"}                                                  (no reply; the process exits)
    {"cmd": "lease", "until": float}                                 (no reply; the session lease holds until then, a
                                                                     time of time.monotonic(), the machine's clock:
                                                                     unrenewed, the process stops itself)

Session process -> supervisor (events):
    {"event": "reply", "req_id": int, "ok": bool, "result": dict | None, "error": str | None,
     "error_code": str | None}      # error_code: the BackendError's code, or "unknown_command", "error"
    {"event": "heartbeat"}                                           # every HEARTBEAT_SECONDS
    every event a backend emits, as it emitted it: qr, qr_timeout, paired, connected, disconnected,
    logged_out, stream_replaced, temporary_ban, connect_failure, keepalive_timeout, keepalive_restored,
    receipt, error (their fields and reasons: sessions_app.backends.base); and connect_failure with the
    BackendError's code as reason when run() could not connect.

Channel layer, group `session.<id>` (see group_name), after the database commit:
    {"type": "session.event", "event": "status" | "qr" | "error", "data": str, "reason": str (optional)}
    The WebSocket consumer forwards {"event": ..., "data": ..., ["reason": ...]} to the browser.
"""

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TIMEOUT_SECONDS = 15.0

COMMANDS = {"send_document", "send_text", "check_numbers", "pairing_code", "logout", "lookup_sent", "control", "stop", "lease"}
EVENTS = {
    "reply", "heartbeat", "qr", "qr_timeout", "paired", "connected", "disconnected", "logged_out",
    "stream_replaced", "temporary_ban", "connect_failure", "keepalive_timeout", "keepalive_restored",
    "receipt", "error",
}


def group_name(session_id: str) -> str:
    return f"session.{session_id}"


def kind(message: object) -> str | None:
    """The command or event name of a well-formed message, else None."""
    if not isinstance(message, dict):
        return None
    name = message.get("cmd") or message.get("event")
    return name if name in COMMANDS or name in EVENTS else None


def reply(req_id: int, result: dict | None = None, error: str | None = None, error_code: str | None = None) -> dict:
    return {
        "event": "reply",
        "req_id": req_id,
        "ok": error is None,
        "result": result if error is None else None,
        "error": error,
        "error_code": error_code,
    }
