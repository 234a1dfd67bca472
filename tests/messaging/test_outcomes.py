"""The dispatcher's group-committed outcomes (messaging.outcomes.Recorder) against a database that does
not answer: senders wait for it, and the log says so instead of the queue going quiet."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from messaging import outcomes, send_queue
from messaging.models import MessageStatus, OutgoingMessage
from tests.fault_tools import hold_message_writes
from tests.messaging.test_send_queue import claim_one, queue_messages

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_outcome_waiting_for_the_database_is_logged_then_recorded(configured, monkeypatch, caplog):
    monkeypatch.setattr(outcomes, "STALL_WARNING_SECONDS", 0.3)
    (row,) = queue_messages(1)
    (claimed,) = send_queue.claim_batch("tienda_lima", "w1", 60)
    other = hold_message_writes()

    async def record() -> bool:
        db_thread = ThreadPoolExecutor(1)
        recorder = outcomes.Recorder(db_thread)
        written = recorder.write(send_queue.record_sent, claimed.pk, "w1", "3EB0AAAA", 1_700_000_000.0)
        await asyncio.sleep(1.0)
        assert not written.done()  # the database holds it back
        other.rollback()  # the other client lets go
        result = await asyncio.wait_for(written, 20)
        await recorder.close()
        db_thread.submit(connections.close_all).result()
        return result

    try:
        with caplog.at_level(logging.WARNING, logger="messaging.outcomes"):
            assert asyncio.run(record()) is True
    finally:
        other.close()
    stalls = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
    assert stalls and "recording 1 outcome(s) has waited" in stalls[0] and "for the database" in stalls[0]
    assert OutgoingMessage.objects.get(pk=row.pk).status == MessageStatus.SENT


def test_a_flood_of_receipts_costs_one_query_for_ids_of_no_message(configured, django_assert_max_num_queries):
    """A client repeating receipts (or the phone's own messages'): thousands of them, each with its own
    timestamp, cost one query for the unknown ids and one update per receipt a message still needs."""
    a, b = queue_messages(2)
    for row, wa in ((a, "3EB0A"), (b, "3EB0B")):
        claim_one("w")
        send_queue.record_sent(row.pk, "w", wa, None)
    flood = [(["3EB0BUSY"], "delivered", 1_700_000_000.0 + i / 1000) for i in range(3000)]
    receipts = [(["3EB0A"], "delivered", 1_700_000_001.0), *flood, (["3EB0A"], "delivered", 1_700_000_009.0),
                (["3EB0A", "3EB0B"], "read", 1_700_000_002.0)]
    with django_assert_max_num_queries(8):
        early = outcomes._apply_receipts(receipts, {}, now=100.0, retry_early=False)
    assert early == {"3EB0BUSY": ("delivered", 1_700_000_000.0, 100.0 + outcomes.EARLY_RECEIPT_SECONDS)}
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == (MessageStatus.READ, MessageStatus.READ)
    assert a.delivered_at.timestamp() == 1_700_000_001.0  # the first delivery receipt, not the later one
    assert b.delivered_at.timestamp() == 1_700_000_002.0  # read implies delivered


def test_unmatched_receipts_are_kept_up_to_a_bound_the_newest(configured, monkeypatch):
    """Receipts of the phone's own messages match nothing of ours and were all kept a minute: thousands a
    second filled memory. The newest are kept (an early receipt overtakes its send by milliseconds), and such
    a receipt still reaches its message once the send is recorded."""
    monkeypatch.setattr(outcomes, "EARLY_RECEIPT_LIMIT", 100)
    (row,) = queue_messages(1)
    early: dict = {}
    for group in range(10):
        receipts = [([f"3EB0PHONE{group}-{i}"], "delivered", 1_700_000_000.0) for i in range(50)]
        early = outcomes._apply_receipts(receipts, early, now=100.0 + group, retry_early=False)
        assert len(early) == min(50 * (group + 1), 100)
    assert set(early) == {f"3EB0PHONE{group}-{i}" for group in (8, 9) for i in range(50)}

    early = outcomes._apply_receipts([(["3EB0OURS"], "delivered", 1_700_000_005.0)], early, now=111.0,
                                     retry_early=False)
    assert len(early) == 100 and "3EB0OURS" in early
    claim_one("w")
    send_queue.record_sent(row.pk, "w", "3EB0OURS", None)
    early = outcomes._apply_receipts([], early, now=112.0, retry_early=True)
    row.refresh_from_db()
    assert row.status == MessageStatus.DELIVERED and row.delivered_at.timestamp() == 1_700_000_005.0
    assert "3EB0OURS" not in early
