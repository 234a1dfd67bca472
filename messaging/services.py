"""Writes to the queue: a new message (every send endpoint goes through message_enqueue), retries and
cancellations (the admin's actions)."""

from typing import Callable

from django.db import transaction
from django.utils import timezone

from webhooks.events import message_statuses_changed

from . import queue_writer
from .models import MessageStatus, OutgoingMessage
from .queue_storage import Enqueued, SendRequest
from .wakeups import announce_soon, announce_sync

CANCELLED = "cancelled"


async def message_enqueue(*, build: Callable[..., SendRequest], idempotency_key: str | None = None,
                          **fields) -> Enqueued:
    """Validate a message with its messaging.intake builder (document_request for a PDF, file_request,
    image_request, text_request: `fields` are its keywords), commit it to the queue (or find the one its
    Idempotency-Key already holds) and wake the dispatcher. Raises messaging.errors.MessageRefused, or
    sessions_app.ids.InvalidSessionId."""
    request = build(idempotency_key=idempotency_key, **fields)
    enqueued = await queue_writer.enqueue(request)
    if enqueued.created:
        announce_soon(request.session_id)
    return enqueued


def message_retry(*, message_ids: list[int]) -> int:
    """Put failed messages back in the queue, due now, with a fresh attempt count."""
    with transaction.atomic():
        rows = OutgoingMessage.objects.filter(id__in=message_ids, status=MessageStatus.FAILED)
        sessions = set(rows.values_list("session_id", flat=True))
        count = rows.update(
            status=MessageStatus.QUEUED, attempts=0, next_attempt_at=None, error="", lease_owner="",
            lease_expires_at=None,
        )
    for session_id in sessions:
        announce_sync(session_id)
    return count


def message_cancel(*, message_ids: list[int]) -> int:
    """Take queued messages out of the queue: `failed` with error "cancelled". A message being sent
    (or already sent) cannot be called back and is left alone."""
    with transaction.atomic():
        pks = list(OutgoingMessage.objects.filter(id__in=message_ids, status=MessageStatus.QUEUED)
                   .values_list("id", flat=True))
        count = OutgoingMessage.objects.filter(id__in=pks, status=MessageStatus.QUEUED).update(
            status=MessageStatus.FAILED, error=CANCELLED, next_attempt_at=None, updated_at=timezone.now()
        )
        message_statuses_changed(OutgoingMessage.objects.filter(id__in=pks, status=MessageStatus.FAILED, error=CANCELLED))
    return count
