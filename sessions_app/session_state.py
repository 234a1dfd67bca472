"""A session's live state: its row (status, phone, pending QR, last error), the channel-layer messages
and signals that follow each change once it is committed, and its stored credentials.

Only what a session process reported, or the supervisor's knowledge that the process is gone, changes
the status: the row never says `connected` unless the client said so and is still there.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import credential_store, signals
from .models import SessionStatus, WhatsAppSession
from . import protocol
from .protocol import group_name
from .status_news import ANNOUNCED, status_event

log = logging.getLogger(__name__)

Publisher = Callable[[str, dict], None]
# Statuses only a running session process can justify.
LIVE_STATUSES = [SessionStatus.INITIALIZING, SessionStatus.QR, SessionStatus.CONNECTED]

def publish_to_group(session_id: str, message: dict) -> None:
    """Send to the session's group from synchronous code outside any event loop."""
    async_to_sync(get_channel_layer().group_send)(group_name(session_id), message)


@dataclass(frozen=True)
class Change:
    status: str | None = None
    phone: str | None = None
    qr: str | None = None  # "" clears the pending QR
    last_error: str | None = None
    reason: str | None = None  # carried by the status event
    error: str | None = None  # an "error" event for the session's listeners


def change_for_event(event: protocol.BackendEvent) -> Change | None:
    """The state a session process's event implies; None for events that change no state."""
    match event:
        case protocol.Qr(data=data):
            return Change(status=SessionStatus.QR, phone="", qr=str(data or ""))
        case protocol.QrTimeout():
            return Change(status=SessionStatus.DISCONNECTED, qr="", last_error="qr_timeout", reason="qr_timeout")
        case protocol.Paired(phone=phone):
            return Change(phone=str(phone or ""), qr="")
        case protocol.Connected(phone=phone):
            return Change(status=SessionStatus.CONNECTED, phone=phone or None, qr="", last_error="")
        case protocol.Disconnected(reason=reason):
            return Change(status=SessionStatus.DISCONNECTED, reason=reason or None)
        case protocol.KeepaliveTimeout():
            return Change(status=SessionStatus.DISCONNECTED, reason="keepalive_timeout")
        case protocol.KeepaliveRestored():
            return Change(status=SessionStatus.CONNECTED)
        case protocol.LoggedOut(reason=reason):
            return logged_out(str(reason or "logged_out"))
        case protocol.StreamReplaced():
            return Change(
                status=SessionStatus.DISCONNECTED, last_error="stream_replaced", reason="stream_replaced"
            )
        case protocol.TemporaryBan(code=code, expire_seconds=expire):
            detail = f"temporary_ban: code {code}, expires in {expire} s"
            return Change(status=SessionStatus.BANNED, qr="", last_error=detail)
        case protocol.ConnectFailure(reason=reason, message=message):
            detail = f"connect_failure: {reason}: {message}"
            return Change(status=SessionStatus.DISCONNECTED, last_error=detail, reason="connect_failure")
        case protocol.Error(message=message):
            message = str(message or "error")
            return Change(last_error=message, error=message)
    return None


def logged_out(reason: str) -> Change:
    return Change(status=SessionStatus.LOGGED_OUT, phone="", qr="", last_error=f"logged_out: {reason}")


def process_gone(detail: str) -> Change:
    """The session process ended without being asked to: whatever it said before no longer holds."""
    return Change(status=SessionStatus.DISCONNECTED, qr="", last_error=detail, reason="process_exited")


def apply_event(session_id: str, event: protocol.BackendEvent, publish: Publisher = publish_to_group) -> None:
    """Persist what a session process reported and tell the session's listeners after the commit."""
    if isinstance(event, protocol.Receipt):
        _announce_receipt(session_id, event)
        return
    change = change_for_event(event)
    if change is not None:
        apply_change(session_id, change, publish)


def apply_change(session_id: str, change: Change, publish: Publisher = publish_to_group) -> None:
    with transaction.atomic():
        row = WhatsAppSession.objects.select_for_update().filter(pk=session_id).first()
        if row is None:
            return
        old_status = row.status
        reason = None
        if change.status is not None:
            reason = change.reason or ANNOUNCED.get(change.status, (None, None))[1]
        # A Go error may quote the store's URL: its password never reaches the row, the API or a socket.
        wanted = {"status": change.status, "phone": change.phone, "qr": change.qr,
                  "last_error": None if change.last_error is None else credential_store.redacted(change.last_error)}
        if change.status is not None:
            wanted["status_reason"] = reason or ""
        fields = []
        for name, value in wanted.items():
            if value is not None and getattr(row, name) != value:
                setattr(row, name, value)
                fields.append(name)
        if change.status in LIVE_STATUSES and row.next_attempt_at is not None:
            row.next_attempt_at = None  # a process runs: no attempt is waiting to be made
            fields.append("next_attempt_at")
        if "qr" in fields:
            row.qr_updated_at = timezone.now()
            fields.append("qr_updated_at")
        if fields:
            row.save(update_fields=fields + ["updated_at"])
        messages = []
        if change.status is not None and change.status != old_status:
            event = status_event(row)
            if event is not None:
                messages.append({"type": "session.event", **event})
            signals.session_status_recorded.send(
                sender=WhatsAppSession, session_id=session_id, status=change.status, reason=reason,
                phone=row.phone, webhook_urls=row.webhook_urls,
            )
            transaction.on_commit(
                partial(
                    signals.session_status_changed.send,
                    sender=WhatsAppSession,
                    session_id=session_id,
                    status=change.status,
                    reason=reason,
                )
            )
        if change.qr:
            messages.append({"type": "session.event", "event": "qr", "data": change.qr})
        if change.error:
            messages.append({"type": "session.event", "event": "error", "data": credential_store.redacted(change.error)})
        for message in messages:
            transaction.on_commit(partial(_publish_safely, publish, session_id, message))


def _publish_safely(publish: Publisher, session_id: str, message: dict) -> None:
    try:
        publish(session_id, message)
    except Exception:  # the row is the truth; a listener that missed this reads it on (re)connect
        log.exception("session %s: could not publish %s", session_id, message.get("event"))


def _announce_receipt(session_id: str, event: protocol.Receipt) -> None:
    results = signals.message_receipt.send_robust(
        sender=WhatsAppSession,
        session_id=session_id,
        wa_message_ids=[str(i) for i in event.message_ids or []],
        type=str(event.type or ""),
        timestamp=float(event.timestamp or 0.0),
    )
    for receiver, result in results:
        if isinstance(result, Exception):
            log.error("session %s: receipt receiver %r failed: %r", session_id, receiver, result)


def mark_all_stopped(elsewhere: set[str] = frozenset()) -> int:
    """At supervisor start no process of this worker runs yet, so no row may claim one does (a worker
    killed with SIGKILL leaves its last statuses behind), except the sessions other live workers run."""
    return WhatsAppSession.objects.filter(status__in=LIVE_STATUSES).exclude(session_id__in=elsewhere).update(
        status=SessionStatus.STOPPED, qr="", updated_at=timezone.now()
    )


def mark_stopped(session_id: str, publish: Publisher = publish_to_group) -> None:
    """Its process is gone for good (the supervisor stops): a live status becomes `stopped`; a
    logged-out, banned or disconnected one keeps saying why."""
    if WhatsAppSession.objects.filter(pk=session_id, status__in=LIVE_STATUSES).exists():
        apply_change(session_id, Change(status=SessionStatus.STOPPED, qr=""), publish)


def plan_attempt(session_id: str, at: datetime | None) -> None:
    """When the worker will start the session again by itself (None: not before a start request)."""
    WhatsAppSession.objects.filter(pk=session_id).update(next_attempt_at=at)


def waits_for_new_link(row: WhatsAppSession) -> bool:
    """Logged out, or its QR codes ran out: it starts again only when someone asks
    (start_requested_at newer than this state)."""
    return row.status == SessionStatus.LOGGED_OUT or (
        row.status == SessionStatus.DISCONNECTED and row.last_error == "qr_timeout"
    )


def count(session_id: str, counter: str) -> None:
    """Add one to a session's persisted counter ("reconnects" or "process_restarts")."""
    if counter not in ("reconnects", "process_restarts"):
        raise ValueError(counter)
    WhatsAppSession.objects.filter(pk=session_id).update(**{counter: F(counter) + 1})


def forget_credentials(session_id: str) -> None:
    """Delete the stored WhatsApp credentials (files or schema: credential_store); the next start links anew."""
    credential_store.forget(session_id)
