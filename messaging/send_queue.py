"""The dispatcher's reads and writes of the queue: claim a session's next due message, record what
became of it, apply receipts. Every function is synchronous and short; the network send happens
between a claim and its record, outside any transaction.

Claiming is FIFO per session among the messages that are due, through core.claims (Postgres: FOR
UPDATE SKIP LOCKED; SQLite: a compare-and-swap), so two claimers never both win. A claim is a lease:
a sender that dies leaves a `sending` row whose lease expires, and the next claim takes it back,
marked `resumed` so the dispatcher first asks the session whether it already went out.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from core.claims import claim
from core.retry import backoff
from sessions_app import session_leases
from sessions_app.models import SessionLease
from webhooks.events import message_statuses_changed

from .models import MessagePayload, MessageStatus, OutgoingMessage

ACTIVE = (MessageStatus.QUEUED, MessageStatus.SENDING)


@dataclass(frozen=True)
class Claimed:
    pk: int
    message_id: str
    session_id: str
    to: str
    file_name: str
    caption: str
    mimetype: str
    kind: str  # document, or text (data is then the text in UTF-8)
    attempts: int  # including this one
    resumed: bool  # an earlier attempt's sender vanished: it may have gone out
    data: bytes


def _due(now: datetime, owner: str | None = None) -> Q:
    """Queued and due, or claimed by a sender whose lease expired. Under a session lease (`owner`
    given), a claim by any other sender is abandoned too: it was a former holder's, fenced off."""
    queued = Q(status=MessageStatus.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    gone = Q(lease_expires_at__lt=now) if owner is None else Q(lease_expires_at__lt=now) | ~Q(lease_owner=owner)
    return queued | (Q(status=MessageStatus.SENDING) & gone)


def claim_batch(session_id: str, owner: str, lease_seconds: float, limit: int = 1,
                fence: tuple[str, int] | None = None) -> list[Claimed]:
    """Claim up to `limit` of the session's due messages, oldest first, in one transaction. With a
    `fence` (worker id, epoch), only while that worker holds the session's lease of that epoch."""
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    fields = ("id", "message_id", "session_id", "to", "file_name", "caption", "mimetype", "kind", "attempts",
              "status", "lease_owner")
    with transaction.atomic():
        if fence is not None:
            # Locked, so a takeover of the session waits for this claim to commit, and the new
            # holder's first claim sees what was claimed here (and takes it back).
            session_leases.bound_locks(settings.SESSION_LEASE_SECONDS)
            lease = SessionLease.objects.select_for_update(no_key=True).filter(
                session_id=session_id, owner=fence[0], epoch=fence[1], expires_at__gt=Now())
            if not list(lease.values_list("pk", flat=True)):
                return []
        due = OutgoingMessage.objects.filter(_due(now, fence and owner), session_id=session_id).order_by("id")
        rows = claim(due, limit=limit, fields=fields, take={
            "status": MessageStatus.SENDING, "lease_owner": owner, "lease_expires_at": expires,
            "attempts": F("attempts") + 1, "updated_at": now,
        })
    if not rows:
        return []
    payloads = dict(MessagePayload.objects.filter(message_id__in=[r.pk for r in rows]).values_list("message_id", "data"))
    return [
        Claimed(
            pk=r.pk, message_id=str(r.message_id), session_id=r.session_id, to=r.to, file_name=r.file_name,
            caption=r.caption, mimetype=r.mimetype, kind=r.kind, attempts=r.attempts + 1,
            resumed=r.status == MessageStatus.SENDING, data=bytes(payloads.get(r.pk) or b""),
        )
        for r in rows
    ]


def _mine(pk: int, owner: str):
    return OutgoingMessage.objects.filter(pk=pk, status=MessageStatus.SENDING, lease_owner=owner)


def _release() -> dict:
    return {"lease_owner": "", "lease_expires_at": None, "updated_at": timezone.now()}


def record_sent(pk: int, owner: str, wa_message_id: str, wa_timestamp: float | None) -> bool:
    return record_sent_many(owner, [(pk, wa_message_id, wa_timestamp)]) == 1


def record_sent_many(owner: str, sends: list[tuple[int, str, float | None]]) -> int:
    """Mark (pk, WhatsApp id, server timestamp) sent, where the lease is still `owner`'s. One
    statement for all of them (the dispatcher's busiest write); returns how many rows changed."""
    if not sends:
        return 0
    ops, q = connection.ops, connection.ops.quote_name
    col = {f.name: q(f.column) for f in OutgoingMessage._meta.concrete_fields}
    now = ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"UPDATE {q(OutgoingMessage._meta.db_table)} SET {col['status']} = %s, {col['wa_message_id']} = %s, "
        f"{col['wa_timestamp']} = %s, {col['sent_at']} = %s, {col['updated_at']} = %s, {col['error']} = '', "
        f"{col['next_attempt_at']} = NULL, {col['lease_owner']} = '', {col['lease_expires_at']} = NULL "
        f"WHERE {col['id']} = %s AND {col['status']} = %s AND {col['lease_owner']} = %s"
    )
    params = [
        (MessageStatus.SENT, wa_id, ops.adapt_datetimefield_value(_stamp(ts)), now, now, pk, MessageStatus.SENDING, owner)
        for pk, wa_id, ts in sends
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)
        changed = cursor.rowcount
        if changed:  # a row already announced as sent is not announced again
            message_statuses_changed(
                OutgoingMessage.objects.filter(pk__in=[pk for pk, _, _ in sends], status=MessageStatus.SENT)
            )
    return changed


def _stamp(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, tz=dt_timezone.utc) if unix else None


def record_failed(pk: int, owner: str, error: str) -> bool:
    with transaction.atomic():
        done = bool(_mine(pk, owner).update(status=MessageStatus.FAILED, error=error, next_attempt_at=None, **_release()))
        if done:
            message_statuses_changed(OutgoingMessage.objects.filter(pk=pk))
    return done


def record_retry(pk: int, owner: str, attempts: int, error: str) -> str:
    """Back off, or fail after the last attempt. Returns the new status."""
    if attempts >= settings.DISPATCH_MAX_ATTEMPTS:
        record_failed(pk, owner, error)
        return MessageStatus.FAILED
    delay = backoff(attempts, settings.DISPATCH_RETRY_BASE_SECONDS, settings.DISPATCH_RETRY_MAX_SECONDS)
    due = timezone.now() + timedelta(seconds=delay)
    _mine(pk, owner).update(status=MessageStatus.QUEUED, error=error, next_attempt_at=due, **_release())
    return MessageStatus.QUEUED


def record_unknown(pk: int, owner: str, error: str) -> None:
    """The send may or may not have gone out (no answer in time): leave it `sending` with an expired
    lease, so the next claim resumes it and asks the session first."""
    _mine(pk, owner).update(error=error, lease_expires_at=timezone.now(), updated_at=timezone.now())


def give_back(pk: int, owner: str) -> None:
    """The session could not take it (not connected): due again at once, the attempt not counted."""
    _mine(pk, owner).update(status=MessageStatus.QUEUED, attempts=F("attempts") - 1, **_release())


def apply_receipt(wa_message_ids: list[str], kind: str, timestamp: float | None) -> None:
    """Move messages forward to delivered or read (never backwards); ids of no message of ours are
    ignored (sent_wa_ids tells them apart)."""
    at = datetime.fromtimestamp(timestamp, tz=dt_timezone.utc) if timestamp else timezone.now()
    rows = OutgoingMessage.objects.filter(wa_message_id__in=wa_message_ids)
    with transaction.atomic():
        if kind == "delivered":
            rows.filter(status=MessageStatus.SENT).update(status=MessageStatus.DELIVERED, delivered_at=at, updated_at=at)
        elif kind in ("read", "played"):
            rows.filter(status__in=[MessageStatus.SENT, MessageStatus.DELIVERED]).update(
                status=MessageStatus.READ, read_at=at, delivered_at=Coalesce("delivered_at", at), updated_at=at
            )
        message_statuses_changed(rows)  # statuses already announced are not announced again


def sent_wa_ids(wa_message_ids) -> set[str]:
    """Which of these WhatsApp message ids belong to messages of ours."""
    ids, known = list(wa_message_ids), set()
    for start in range(0, len(ids), 500):  # under SQLite's limit of query parameters
        known.update(OutgoingMessage.objects.filter(wa_message_id__in=ids[start:start + 500])
                     .values_list("wa_message_id", flat=True))
    return known


def expire_leases_of(owners: list[str]) -> int:
    """Make the claims of senders known to be dead resumable now rather than when their lease ends."""
    now = timezone.now()
    return OutgoingMessage.objects.filter(status=MessageStatus.SENDING, lease_owner__in=owners).update(
        lease_expires_at=now, updated_at=now
    )


def lease_owners() -> set[str]:
    return set(
        OutgoingMessage.objects.filter(status=MessageStatus.SENDING).values_list("lease_owner", flat=True).distinct()
    )


def sessions_with_due_messages() -> set[str]:
    now = timezone.now()
    return set(OutgoingMessage.objects.filter(_due(now)).values_list("session_id", flat=True).distinct())


def next_due_at(session_id: str) -> datetime | None:
    """When the earliest message in backoff becomes due."""
    return (
        OutgoingMessage.objects.filter(session_id=session_id, status=MessageStatus.QUEUED, next_attempt_at__isnull=False)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def fail_waiting_for_unlinked_sessions(session_ids: list[str], older_than_seconds: float) -> int:
    """Messages of sessions that are logged out (or banned) wait for a new link, but not forever."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        rows = OutgoingMessage.objects.filter(session_id__in=session_ids, status=MessageStatus.QUEUED, created_at__lt=cutoff)
        pks = list(rows.values_list("pk", flat=True))
        count = OutgoingMessage.objects.filter(pk__in=pks, status=MessageStatus.QUEUED).update(
            status=MessageStatus.FAILED, error="session_logged_out", next_attempt_at=None, updated_at=timezone.now()
        )
        message_statuses_changed(OutgoingMessage.objects.filter(pk__in=pks, status=MessageStatus.FAILED))
    return count


def sent_in_last_hour(session_id: str) -> list[datetime]:
    since = timezone.now() - timedelta(hours=1)
    return list(
        OutgoingMessage.objects.filter(session_id=session_id, sent_at__gte=since).order_by("sent_at").values_list("sent_at", flat=True)
    )
