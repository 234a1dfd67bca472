"""What each neonize (whatsmeow) event means in the backend contract (sessions_app.backends.base).

Pure functions over the protobuf messages neonize delivers. Enum values are read by name from the
message's own descriptor, so this module imports nothing from neonize and costs the supervisor nothing.
"""

from typing import Any

from sessions_app import protocol

# READ_SELF is this account's own phone reading an incoming message, not a recipient reading ours; and
# neonize 0.5.2 encodes whatsmeow's PLAYED_SELF as SERVER_ERROR. Neither is a receipt of a sent message.
RECEIPT_TYPES = {"DELIVERED": "delivered", "READ": "read", "PLAYED": "played"}
# whatsmeow's logged-out reasons: 401 (the phone removed this device: a stream error `device_removed`, or
# the same refusal on connect), 403 (the main device is gone) and 406 (an unknown logout). Either way the
# device was removed and its credentials are useless.
LOGGED_OUT_REASONS = {"LOGGED_OUT": "device_removed", "MAIN_DEVICE_GONE": "main_device_gone",
                      "UNKNOWN_LOGOUT": "unknown_logout"}
# neonize renumbers whatsmeow's TempBanReason (WhatsApp's own codes) as 1-5; the contract keeps WhatsApp's.
TEMP_BAN_CODES = {"SEND_TO_TOO_MANY_PEOPLE": 101, "BLOCKED_BY_USERS": 102, "CREATED_TOO_MANY_GROUPS": 103,
                  "SENT_TOO_MANY_SAME_MESSAGE": 104, "BROADCAST_LIST": 106}


def enum_name(message: Any, field: str) -> str:
    value = getattr(message, field)
    enum_value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(value)
    return enum_value.name if enum_value is not None else str(value)


def jid_user(jid: Any) -> str | None:
    """The phone (or LID) part of a JID, None when the JID is empty."""
    return (jid.User or None) if jid is not None else None


def paired(event: Any) -> protocol.Paired | protocol.Error:
    if enum_name(event, "Status") == "SUCCESS":
        return protocol.Paired(jid_user(event.ID))
    return protocol.Error(f"pairing failed: {event.Error or enum_name(event, 'Status')}")


def _logged_out_reason(name: str) -> str:
    return LOGGED_OUT_REASONS.get(name, name.lower())


def logged_out(event: Any) -> protocol.LoggedOut:
    return protocol.LoggedOut(_logged_out_reason(enum_name(event, "Reason")))


def temporary_ban(event: Any) -> protocol.TemporaryBan:
    code = TEMP_BAN_CODES.get(enum_name(event, "Code"), int(event.Code))
    return protocol.TemporaryBan(code, int(event.Expire))


def connect_failure(event: Any) -> protocol.LoggedOut | protocol.ConnectFailure:
    reason = enum_name(event, "Reason")
    if reason in LOGGED_OUT_REASONS:
        return protocol.LoggedOut(_logged_out_reason(reason))
    return protocol.ConnectFailure(reason.lower(), event.Message)


def receipt(event: Any) -> protocol.Receipt | None:
    """Delivery, read and played receipts; the other kinds (retry, sender, self, ...) say nothing to users."""
    kind = RECEIPT_TYPES.get(enum_name(event, "Type"))
    if kind is None:
        return None
    return protocol.Receipt(tuple(event.MessageIDs), kind, float(event.Timestamp))
