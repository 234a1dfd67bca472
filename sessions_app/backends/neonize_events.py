"""What each neonize (whatsmeow) event means in the session protocol (sessions_app.protocol).

Pure functions over the protobuf messages neonize delivers. Enum values are read by name from the
message's own descriptor, so this module imports nothing from neonize and costs the supervisor nothing.
"""

from typing import Any

RECEIPT_TYPES = {"DELIVERED": "delivered", "READ": "read", "READ_SELF": "read", "PLAYED": "played"}
# whatsmeow's connect failures 401 (logged out), 403 (main device gone) and 406 (unknown logout):
# the device was removed and the credentials are useless.
LOGGED_OUT_REASONS = {"LOGGED_OUT", "MAIN_DEVICE_GONE", "UNKNOWN_LOGOUT"}


def enum_name(message: Any, field: str) -> str:
    value = getattr(message, field)
    enum_value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(value)
    return enum_value.name if enum_value is not None else str(value)


def jid_user(jid: Any) -> str | None:
    """The phone (or LID) part of a JID, None when the JID is empty."""
    return (jid.User or None) if jid is not None else None


def paired(event: Any) -> dict:
    if enum_name(event, "Status") == "SUCCESS":
        return {"event": "paired", "phone": jid_user(event.ID)}
    return {"event": "error", "message": f"pairing failed: {event.Error or enum_name(event, 'Status')}"}


def logged_out(event: Any) -> dict:
    return {"event": "logged_out", "reason": enum_name(event, "Reason").lower()}


def temporary_ban(event: Any) -> dict:
    return {"event": "temporary_ban", "code": int(event.Code), "expire_seconds": int(event.Expire)}


def connect_failure(event: Any) -> dict:
    reason = enum_name(event, "Reason")
    if reason in LOGGED_OUT_REASONS:
        return {"event": "logged_out", "reason": reason.lower()}
    return {"event": "connect_failure", "reason": reason.lower(), "message": event.Message}


def receipt(event: Any) -> dict | None:
    """Delivery, read and played receipts; the other kinds (retry, sender, ...) say nothing to users."""
    kind = RECEIPT_TYPES.get(enum_name(event, "Type"))
    if kind is None:
        return None
    return {
        "event": "receipt",
        "message_ids": list(event.MessageIDs),
        "type": kind,
        "timestamp": float(event.Timestamp),
    }
