"""The deliverer's reads and writes of the outbox: which URLs have due events, claim a URL's next due
events (a lease, so several workers never post the same one at once), record what each attempt gave.

Order: a URL's events are claimed in the order they were written; an event waits while an earlier one
of the same subject (message or session) is not yet delivered or dead, so a receiver never sees a
message's `delivered` before its `sent`, even across retries.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from core.claims import claim as claim_rows

from .models import DeliveryStatus, WebhookDelivery

SCAN_LIMIT = 500


@dataclass(frozen=True)
class Claimed:
    pk: int
    event_id: str
    event: str
    subject: str
    url: str
    body: bytes
    attempts: int  # before this one
    window_started_at: float  # unix seconds


@dataclass(frozen=True)
class Outcome:
    pk: int
    status_code: int | None
    error: str  # "" when delivered
    delivered: bool = False
    retry_in: float = 0.0  # when to try again (the receiver's backoff, at least its Retry-After)
    permanent: bool = False  # no retry (a 4xx other than 408/429)
    attempted: bool = True  # False: not tried (an earlier event of its subject failed in this batch)


def _free(now) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def urls_with_due_events() -> set[str]:
    now = timezone.now()
    return set(
        WebhookDelivery.objects.filter(_free(now), status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .values_list("url", flat=True)
        .distinct()
    )


def urls_backing_off() -> set[str]:
    """URLs whose oldest failed event waits for its next attempt: the receiver is in trouble, and its
    other events wait too (a redelivered event starts afresh: attempts 0, due now)."""
    return set(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, attempts__gt=0, next_attempt_at__gt=timezone.now())
        .values_list("url", flat=True)
        .distinct()
    )


def next_due_in(default: float) -> float:
    """Seconds until the earliest pending event is due (capped at default)."""
    first = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if first is None:
        return default
    return max(0.0, min(default, (first - timezone.now()).total_seconds()))


def claim(url: str, owner: str, limit: int, lease_seconds: float) -> list[Claimed]:
    now = timezone.now()
    pending = (
        WebhookDelivery.objects.filter(url=url, status=DeliveryStatus.PENDING)
        .order_by("id")
        .values_list("id", "subject", "next_attempt_at", "lease_expires_at")[:SCAN_LIMIT]
    )
    waiting: set[str] = set()
    ids: list[int] = []
    for pk, subject, due_at, lease in pending:
        if subject in waiting:
            continue
        if due_at > now or (lease is not None and lease >= now):
            waiting.add(subject)  # later events of this subject wait behind it
            continue
        ids.append(pk)
        if len(ids) >= limit:
            break
    if not ids:
        return []
    free = WebhookDelivery.objects.filter(_free(now), pk__in=ids, status=DeliveryStatus.PENDING).order_by("id")
    rows = claim_rows(free, limit=len(ids), take={
        "lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds),
    }, fields=("id", "event_id", "event", "subject", "url", "body", "attempts", "window_started_at"))
    return [
        Claimed(r.pk, str(r.event_id), r.event, r.subject, r.url, r.body.encode(), r.attempts,
                r.window_started_at.timestamp())
        for r in rows
    ]


def record(claimed: dict[int, Claimed], outcomes: list[Outcome]) -> list[int]:
    """Write the outcomes of a batch in one transaction. Returns the pks that went dead."""
    now = timezone.now()
    dead = []
    with transaction.atomic():
        for o in outcomes:
            c = claimed[o.pk]
            row = WebhookDelivery.objects.filter(pk=o.pk, status=DeliveryStatus.PENDING)
            release = {"lease_owner": "", "lease_expires_at": None}
            if not o.attempted:
                row.update(**release)
                continue
            attempts = c.attempts + 1
            result = {"attempts": attempts, "last_status_code": o.status_code, "last_error": o.error[:2000], **release}
            if o.delivered:
                row.update(status=DeliveryStatus.DELIVERED, delivered_at=now, **result)
                continue
            delay = o.retry_in
            window_ends = c.window_started_at + settings.WEBHOOK_RETRY_WINDOW_SECONDS
            if o.permanent or now.timestamp() + delay > window_ends:
                row.update(status=DeliveryStatus.DEAD, **result)
                dead.append(o.pk)
            else:
                row.update(next_attempt_at=now + timedelta(seconds=delay), **result)
    return dead


def close_windows() -> int:
    """Events whose retry window ended without an attempt that worked (their receiver stayed down)
    are dead. A read first: on SQLite an UPDATE takes the write lock even when it matches nothing."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS)
    expired = WebhookDelivery.objects.filter(_free(timezone.now()), status=DeliveryStatus.PENDING,
                                             window_started_at__lt=cutoff)
    if not expired.exists():
        return 0
    with transaction.atomic():
        return expired.update(
            status=DeliveryStatus.DEAD,
            last_error=Concat(Value("retry window ended; receiver: "), "last_error"),
        )


def redeliver(*, delivery_ids: list[int]) -> int:
    """Dead (or delivered) events go out again, now, with a fresh retry window."""
    now = timezone.now()
    count = WebhookDelivery.objects.filter(
        pk__in=delivery_ids, status__in=[DeliveryStatus.DEAD, DeliveryStatus.DELIVERED]
    ).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, window_started_at=now,
        lease_owner="", lease_expires_at=None, delivered_at=None,
    )
    if count:
        from .delivery import nudge

        transaction.on_commit(nudge)
    return count
