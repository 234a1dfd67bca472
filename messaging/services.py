"""Writes to the queue besides intake (which is messaging.queue_writer)."""

from django.db import transaction

from .models import MessageStatus, OutgoingMessage
from .wakeups import announce_sync


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
