"""Writes to the queue besides intake (which is messaging.queue_writer)."""

from django.db import transaction

from .models import MessageStatus, OutgoingMessage


@transaction.atomic
def message_retry(*, message_ids: list[int]) -> int:
    """Put failed messages back in the queue, due now, with a fresh attempt count."""
    return OutgoingMessage.objects.filter(id__in=message_ids, status=MessageStatus.FAILED).update(
        status=MessageStatus.QUEUED, attempts=0, next_attempt_at=None, error="", lease_owner="",
        lease_expires_at=None,
    )
