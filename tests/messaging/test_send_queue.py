"""Claims, outcomes and receipts on the real database (SQLite here, Postgres in the second run)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging import send_queue
from messaging.models import MessagePayload, MessageStatus, OutgoingMessage
from tests.conftest import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)


def queue_messages(n: int, session_id: str = "tienda_lima") -> list[OutgoingMessage]:
    rows = []
    for i in range(n):
        row = OutgoingMessage.objects.create(
            session_id=session_id, to="51987654321", file_name=f"F{i}.pdf", sha256="0" * 64, caption=str(i)
        )
        MessagePayload.objects.create(message=row, data=make_pdf(500, seed=i))
        rows.append(row)
    return rows


def claim_one(owner: str) -> send_queue.Claimed | None:
    claimed = send_queue.claim_batch("tienda_lima", owner, 60)
    return claimed[0] if claimed else None


def test_claims_are_fifo_and_carry_the_payload(configured):
    rows = queue_messages(3)
    first = claim_one("w1")
    assert first.pk == rows[0].pk and first.attempts == 1 and not first.resumed
    assert first.data == make_pdf(500, seed=0)
    second = claim_one("w1")
    assert second.pk == rows[1].pk
    assert OutgoingMessage.objects.get(pk=rows[0].pk).status == MessageStatus.SENDING


def test_a_batch_claim_takes_the_oldest_due_messages_in_order(configured):
    rows = queue_messages(5)
    OutgoingMessage.objects.filter(pk=rows[1].pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    batch = send_queue.claim_batch("tienda_lima", "w1", 60, limit=3)
    assert [c.pk for c in batch] == [rows[0].pk, rows[2].pk, rows[3].pk]  # the one in backoff waits
    assert [c.data for c in batch] == [make_pdf(500, seed=i) for i in (0, 2, 3)]
    assert [c.pk for c in send_queue.claim_batch("tienda_lima", "w2", 60, limit=3)] == [rows[4].pk]


@pytest.mark.parametrize("limit", [1, 4])
def test_concurrent_claimers_never_take_the_same_message(configured, limit):
    queue_messages(30)
    taken: list[int] = []
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            while batch := send_queue.claim_batch("tienda_lima", name, 60, limit=limit):
                taken.extend(c.pk for c in batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 30


def test_an_abandoned_claim_is_resumed_after_its_lease(configured):
    (row,) = queue_messages(1)
    claimed = claim_one("dead-worker")
    assert claim_one("w2") is None  # leased
    OutgoingMessage.objects.filter(pk=row.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    again = claim_one("w2")
    assert again.pk == claimed.pk and again.resumed and again.attempts == 2
    # the dead worker's late answer no longer counts
    assert send_queue.record_sent(row.pk, "dead-worker", "3EB0LATE", None) is False
    assert send_queue.record_sent(row.pk, "w2", "3EB0OK", 1_700_000_000.0) is True
    row.refresh_from_db()
    assert (row.status, row.wa_message_id) == (MessageStatus.SENT, "3EB0OK")


def test_retries_follow_the_backoff_schedule_then_fail(configured, settings):
    settings.DISPATCH_RETRY_BASE_SECONDS = 10
    settings.DISPATCH_RETRY_MAX_SECONDS = 60
    settings.DISPATCH_MAX_ATTEMPTS = 4
    (row,) = queue_messages(1)
    expected_caps = [10, 20, 40]
    for attempt, cap in enumerate(expected_caps, start=1):
        OutgoingMessage.objects.filter(pk=row.pk).update(next_attempt_at=None)
        claimed = claim_one("w")
        assert claimed.attempts == attempt
        before = timezone.now()
        assert send_queue.record_retry(row.pk, "w", claimed.attempts, "upload_failed: boom") == MessageStatus.QUEUED
        row.refresh_from_db()
        wait = (row.next_attempt_at - before).total_seconds()
        assert cap / 2 - 0.5 <= wait <= cap + 0.5, (attempt, wait)
        assert claim_one("w") is None  # not due yet
    OutgoingMessage.objects.filter(pk=row.pk).update(next_attempt_at=None)
    claimed = claim_one("w")
    assert send_queue.record_retry(row.pk, "w", claimed.attempts, "upload_failed: last") == MessageStatus.FAILED
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == (MessageStatus.FAILED, 4, "upload_failed: last")


def test_receipts_move_status_forward_only(configured):
    a, b = queue_messages(2)
    for row, wa in ((a, "3EB0A"), (b, "3EB0B")):
        claim_one("w")
        send_queue.record_sent(row.pk, "w", wa, None)
    assert send_queue.sent_wa_ids(["3EB0A", "3EB0X"]) == {"3EB0A"}
    send_queue.apply_receipt(["3EB0A", "3EB0X"], "read", 1_700_000_100.0)
    send_queue.apply_receipt(["3EB0A"], "delivered", 1_700_000_200.0)  # late: must not go back
    a.refresh_from_db()
    assert a.status == MessageStatus.READ and a.read_at is not None and a.delivered_at is not None
    send_queue.apply_receipt(["3EB0B"], "delivered", None)
    b.refresh_from_db()
    assert b.status == MessageStatus.DELIVERED


def test_messages_of_a_logged_out_session_fail_after_the_wait(configured):
    old, new = queue_messages(2)
    OutgoingMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert send_queue.fail_waiting_for_unlinked_sessions(["tienda_lima"], 3600) == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, old.error) == (MessageStatus.FAILED, "session_logged_out")
    assert new.status == MessageStatus.QUEUED
