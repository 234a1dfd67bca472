"""Webhook events, written into the outbox (WebhookDelivery) in the transaction of the change they
report: a status that was committed has its event committed with it, and one that rolled back has none.

Two events, shaped like WhatsApp Cloud API's status notifications where they fit (`statuses` with
`id`, `status`, `timestamp` as unix seconds in a string, `recipient_id`, `errors`):

    {"object": "whatsapp_service", "event": "message.status", "eventId": "<uuid>", "sessionId": "tienda_lima",
     "statuses": [{"id": "<WhatsApp message id or null>", "messageId": "<our id, as answered by the API>",
                   "status": "sent|delivered|read|failed", "timestamp": "1700000000",
                   "recipient_id": "51987654321", "type": "document|text",
                   "errors": [{"code": "not_on_whatsapp", "title": "...", "message": "..."}]}]}   # failed only

    {"object": "whatsapp_service", "event": "session.status", "eventId": "<uuid>", "sessionId": "tienda_lima",
     "session": {"status": "connected|disconnected|logged_out|qr_timeout", "reason": str | null,
                 "phone": str | null, "timestamp": "1700000000"}}
"""

import json
import uuid
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import WebhookDelivery

OBJECT = "whatsapp_service"
MESSAGE_STATUS = "message.status"
SESSION_STATUS = "session.status"

_MESSAGE_FIELDS = (
    "message_id", "session_id", "to", "kind", "status", "wa_message_id", "wa_timestamp", "error",
    "sent_at", "delivered_at", "read_at", "updated_at", "session__webhook_urls",
)


def enabled() -> bool:
    """Without a secret nothing is written: an unsigned event would be worthless to a receiver that
    checks, and dangerous to one that does not (the service refuses to start with URLs and no secret)."""
    return bool(settings.WEBHOOK_SECRET.strip())


def receiver_urls(session_urls: list | None) -> list[str]:
    urls = [*settings.WEBHOOK_URLS, *(session_urls or [])]
    return list(dict.fromkeys(u.strip() for u in urls if u and u.strip()))


def message_statuses_changed(rows: QuerySet) -> int:
    """Announce the statuses these messages (OutgoingMessage rows) have reached and not yet announced.
    Call it inside the transaction that changed them. Returns the number of deliveries written."""
    _require_transaction()
    if not enabled():
        return 0
    deliveries = []
    for row in rows.values(*_MESSAGE_FIELDS).order_by("id"):
        urls = receiver_urls(row["session__webhook_urls"])
        if not urls:
            continue
        for status, at, key in _reached(row):
            event_id = str(uuid.uuid4())
            item = {
                "id": row["wa_message_id"] or None,
                "messageId": str(row["message_id"]),
                "status": status,
                "timestamp": _unix(at),
                "recipient_id": row["to"],
                "type": row["kind"],
            }
            if status == "failed":
                item["errors"] = [_error(row["error"])]
            body = {"object": OBJECT, "event": MESSAGE_STATUS, "eventId": event_id,
                    "sessionId": row["session_id"], "statuses": [item]}
            deliveries += _for_urls(urls, MESSAGE_STATUS, event_id, row["session_id"],
                                    f"message:{row['message_id']}", key, body)
    return _write(deliveries)


def session_status_changed(session_id: str, status: str, reason: str | None, phone: str,
                           session_urls: list | None) -> int:
    """Announce a session's new status (a SessionStatus value), inside the transaction that saved it."""
    _require_transaction()
    announced = _session_status(status, reason)
    urls = receiver_urls(session_urls)
    if announced is None or not urls or not enabled():
        return 0
    event_id = str(uuid.uuid4())
    state, why = announced
    body = {"object": OBJECT, "event": SESSION_STATUS, "eventId": event_id, "sessionId": session_id,
            "session": {"status": state, "reason": why, "phone": phone or None, "timestamp": _unix(timezone.now())}}
    return _write(_for_urls(urls, SESSION_STATUS, event_id, session_id, f"session:{session_id}", event_id, body))


def _session_status(status: str, reason: str | None) -> tuple[str, str | None] | None:
    """The issue's four session statuses; initializing and qr are not announced."""
    if status == "connected":
        return "connected", None
    if status == "logged_out":
        return "logged_out", reason
    if status == "disconnected" and reason == "qr_timeout":
        return "qr_timeout", None
    if status in ("disconnected", "banned", "stopped"):
        return "disconnected", reason or status
    return None


def _reached(row: dict) -> list[tuple[str, datetime, str]]:
    """Each status the message has passed through, in order, with its time and its once-only key. A
    read receipt that overtook the delivery receipt still yields delivered before read."""
    mid, status = row["message_id"], row["status"]
    if status == "failed":
        at = row["updated_at"]
        return [("failed", at, f"{mid}:failed:{at.isoformat()}")]  # a retried message may fail again
    reached = []
    if status in ("sent", "delivered", "read"):
        reached.append(("sent", row["wa_timestamp"] or row["sent_at"] or row["updated_at"], f"{mid}:sent"))
    if status in ("delivered", "read"):
        reached.append(("delivered", row["delivered_at"] or row["updated_at"], f"{mid}:delivered"))
    if status == "read":
        reached.append(("read", row["read_at"] or row["updated_at"], f"{mid}:read"))
    return reached


def _error(error: str) -> dict:
    code = (error or "send_failed").split(":", 1)[0].strip() or "send_failed"
    titles = {
        "not_on_whatsapp": _("El número no tiene WhatsApp."),
        "session_logged_out": _("La sesión se desvinculó y no se volvió a vincular a tiempo."),
    }
    return {"code": code, "title": titles.get(code, _("No se pudo enviar el mensaje.")), "message": error or code}


def _for_urls(urls, event, event_id, session_id, subject, key, body) -> list[WebhookDelivery]:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    now = timezone.now()
    return [
        WebhookDelivery(event_id=event_id, event=event, session_id=session_id, subject=subject,
                        dedupe_key=key, url=url, body=text, next_attempt_at=now, window_started_at=now)
        for url in urls
    ]


def _write(deliveries: list[WebhookDelivery]) -> int:
    if not deliveries:
        return 0
    # A status already announced to a URL (same dedupe key) is skipped by the database.
    WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    from .delivery import nudge

    transaction.on_commit(nudge)
    return len(deliveries)


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("webhook events must be written in the transaction of the change they report")


def _unix(at: datetime | None) -> str:
    return str(int((at or timezone.now()).timestamp()))
