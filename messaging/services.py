"""Writes to the queue besides intake (which is messaging.queue_writer)."""

from django.db import transaction
from django.utils import timezone

from webhooks.events import message_statuses_changed

from .models import MessageStatus, OutgoingMessage
from .wakeups import announce_sync

CANCELLED = "cancelled"


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
