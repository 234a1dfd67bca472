"""Reads of the queue, shaped as the contract shows them."""

from django.db.models import QuerySet

from .models import OutgoingMessage


def messages_without_payload() -> QuerySet[OutgoingMessage]:
    return OutgoingMessage.objects.all()


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def message_as_json(m: OutgoingMessage) -> dict:
    return {
        "messageId": str(m.message_id),
        "sessionId": m.session_id,
        "to": m.to,
        "type": m.kind,
        "fileName": m.file_name or None,
        "mimeType": m.mimetype,
        "status": m.status,
        "attempts": m.attempts,
        "waMessageId": m.wa_message_id or None,
        "error": m.error or None,
        "createdAt": _iso(m.created_at),
        "sentAt": _iso(m.sent_at),
        "deliveredAt": _iso(m.delivered_at),
        "readAt": _iso(m.read_at),
    }
